//! Records the commit vaelab is built from, for the provenance a run's `state.json` holds.
use std::path::Path;

/// `VAELAB_BUILD_COMMIT`: `git describe --always --dirty` of the repository this crate sits
/// in; `unknown` outside git.
fn main() {
    for path in ["../../.git/HEAD", "../../.git/index"] {
        if Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=40"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=VAELAB_BUILD_COMMIT={commit}");
}
