//! Links libtorch so `vaelab-torch` finds it without LD_LIBRARY_PATH and keeps CUDA.
//!
//! tch's build links `libtorch_cuda.so`, but the linker's `--as-needed` drops it because
//! no symbol of it is referenced directly; CUDA then silently stays unavailable at run
//! time. Linking it with `--no-as-needed` and adding an rpath to libtorch's directory
//! fixes both. It also compiles the small C++ shim of what tch does not expose
//! (`src/model/switches.cpp`, `src/model/grad.cpp`).
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    compile_switches(Path::new(&lib_dir));
    if Path::new(&lib_dir).join("libtorch_cuda.so").exists() {
        // Only where libtorch is wanted: `vaelab` itself must load none of it.
        let keep_cuda = "-Wl,--no-as-needed,-ltorch_cuda,--as-needed";
        println!("cargo:rustc-link-arg-bin=vaelab-torch={keep_cuda}");
        println!("cargo:rustc-link-arg-tests={keep_cuda}");
    }
    let version = Path::new(&lib_dir)
        .parent()
        .map(|torch_dir| torch_dir.join("version.py"))
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| {
            text.lines().find_map(|line| {
                line.strip_prefix("__version__ = ")
                    .map(|v| v.trim_matches(['\'', '"']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=VAELAB_LIBTORCH_VERSION={version}");
}

/// Compiles the C++ shim, `src/model/switches.cpp` (libtorch's numerics switches that tch
/// does not expose) and `src/model/grad.cpp` (forgetting a gradient), against the headers
/// of the libtorch that tch links.
fn compile_switches(lib_dir: &Path) {
    println!("cargo:rerun-if-changed=src/model/switches.cpp");
    println!("cargo:rerun-if-changed=src/model/grad.cpp");
    let include = lib_dir.parent().unwrap_or(lib_dir).join("include");
    cc::Build::new()
        .cpp(true)
        .file("src/model/switches.cpp")
        .file("src/model/grad.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        // The torch wheels are built with the C++11 ABI.
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .warnings(false)
        .compile("vaelab_switches");
    // The shim calls into these; listed after it so the linker resolves them.
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
}
