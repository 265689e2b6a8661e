//! Where a run's settings came from: the git commit of the repository that holds its spec
//! (and whether that working tree had uncommitted changes), and the commit vaelab was
//! built from, recorded in `state.json` so a number can be traced to its code and spec.
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The commit vaelab was built from (`git describe --always --dirty`), or `unknown`.
pub const BUILD_COMMIT: &str = env!("VAELAB_BUILD_COMMIT");

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// `HEAD` of the git repository holding the spec, when it is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_commit: Option<String>,
    /// Whether that repository had uncommitted changes (the spec's included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_dirty: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vaelab_commit: Option<String>,
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

impl Provenance {
    /// The provenance of runs planned from `spec`: asks git once, when the spec is read.
    pub fn of_spec(spec: &Path) -> Self {
        let dir = spec
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let spec_commit = git(dir, &["rev-parse", "HEAD"]);
        let spec_dirty = spec_commit
            .as_ref()
            .and_then(|_| git(dir, &["status", "--porcelain"]))
            .map(|status| !status.is_empty());
        Self {
            spec_commit,
            spec_dirty,
            vaelab_commit: Some(BUILD_COMMIT.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git_in(dir: &Path, args: &[&str]) {
        let status = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    #[test]
    fn a_spec_in_a_repository_names_its_commit_and_whether_it_was_dirty() {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("e.yaml");
        std::fs::write(&spec, "name: e\n").unwrap();
        assert_eq!(
            Provenance::of_spec(&spec).spec_commit,
            None,
            "not a repository"
        );
        git_in(dir.path(), &["init", "-q"]);
        git_in(dir.path(), &["add", "e.yaml"]);
        git_in(dir.path(), &["commit", "-q", "-m", "spec"]);
        let head = git(dir.path(), &["rev-parse", "HEAD"]).unwrap();
        let clean = Provenance::of_spec(&spec);
        assert_eq!(clean.spec_commit.as_deref(), Some(head.as_str()));
        assert_eq!(clean.spec_dirty, Some(false));
        std::fs::write(&spec, "name: edited\n").unwrap();
        assert_eq!(Provenance::of_spec(&spec).spec_dirty, Some(true));
        assert_eq!(clean.vaelab_commit.as_deref(), Some(BUILD_COMMIT));
    }
}
