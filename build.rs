//! Links libtorch so `vaelab-torch` finds it without LD_LIBRARY_PATH and keeps CUDA.
//!
//! tch's build links `libtorch_cuda.so`, but the linker's `--as-needed` drops it because
//! no symbol of it is referenced directly; CUDA then silently stays unavailable at run
//! time. Linking it with `--no-as-needed` and adding an rpath to libtorch's directory
//! fixes both. It also compiles the small C++ shim of what tch does not expose
//! (`src/runtime/switches.cpp`, `src/runtime/grad.cpp`).
use std::path::Path;

fn main() {
    emit_build_id();
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

/// `VAELAB_BUILD_ID`: a hash of every source file of both binaries and of the lock file,
/// so `vaelab` and `vaelab-torch` built from the same sources carry the same id, and a
/// `vaelab-torch` left over from an earlier build (`cargo build --bin vaelab` relinks only
/// the launcher) carries another: it refuses to run for that launcher. Cargo reruns this
/// script when anything under the listed folders changes.
fn emit_build_id() {
    let mut files = Vec::new();
    for root in ["src", "crates/vaelab-core/src"] {
        println!("cargo:rerun-if-changed={root}");
        collect_files(Path::new(root), &mut files);
    }
    for file in ["Cargo.toml", "Cargo.lock", "crates/vaelab-core/Cargo.toml"] {
        println!("cargo:rerun-if-changed={file}");
        files.push(file.into());
    }
    files.sort();
    // FNV-1a over names and contents: no dependency, and enough to tell builds apart.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_default();
        for byte in file.to_string_lossy().bytes().chain(bytes) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    println!("cargo:rustc-env=VAELAB_BUILD_ID={hash:016x}");
}

fn collect_files(dir: &Path, into: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, into);
        } else {
            into.push(path);
        }
    }
}

/// Compiles the C++ shim, `src/runtime/switches.cpp` (libtorch's numerics switches that tch
/// does not expose) and `src/runtime/grad.cpp` (forgetting a gradient), against the headers
/// of the libtorch that tch links.
fn compile_switches(lib_dir: &Path) {
    println!("cargo:rerun-if-changed=src/runtime/switches.cpp");
    println!("cargo:rerun-if-changed=src/runtime/grad.cpp");
    let include = lib_dir.parent().unwrap_or(lib_dir).join("include");
    // This script reruns on every source change (the build id); the shim is compiled
    // again only when it is older than its sources.
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    let archive = out_dir.join("libvaelab_switches.a");
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let sources = [
        "src/runtime/switches.cpp",
        "src/runtime/grad.cpp",
        "build.rs",
    ];
    let fresh = modified(&archive).is_some_and(|built| {
        sources
            .iter()
            .all(|source| modified(Path::new(source)).is_some_and(|m| m < built))
    });
    if fresh {
        println!("cargo:rustc-link-search=native={}", out_dir.display());
        println!("cargo:rustc-link-lib=static=vaelab_switches");
        println!("cargo:rustc-link-search=native={}", lib_dir.display());
        println!("cargo:rustc-link-lib=dylib=torch_cpu");
        println!("cargo:rustc-link-lib=dylib=c10");
        return;
    }
    cc::Build::new()
        .cpp(true)
        .file("src/runtime/switches.cpp")
        .file("src/runtime/grad.cpp")
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
