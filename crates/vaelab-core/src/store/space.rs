//! Telling a full disk apart from other write failures, and naming the file system that
//! is full, so the first words of the error say what to do.
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::StoreError;

/// Whether an error's message says the disk is full (ENOSPC, as libtorch and the OS word it).
pub(crate) fn says_disk_full(message: &str) -> bool {
    message.contains("No space left on device") || message.contains("os error 28")
}

/// [`StoreError::NoSpace`] for a write to `path` that failed with `detail`.
pub(crate) fn disk_full(path: &Path, detail: String) -> StoreError {
    StoreError::NoSpace {
        filesystem: mount_point(path),
        path: path.to_path_buf(),
        free: free_bytes(path).unwrap_or(0),
        detail,
    }
}

/// The nearest existing ancestor of `path` (itself included).
fn existing(path: &Path) -> Option<&Path> {
    path.ancestors().find(|p| p.exists())
}

/// The mount point of the file system holding `path`: the highest ancestor on its device.
fn mount_point(path: &Path) -> PathBuf {
    let Some(mut current) = existing(path) else {
        return path.to_path_buf();
    };
    let Ok(device) = current.metadata().map(|m| m.dev()) else {
        return current.to_path_buf();
    };
    while let Some(parent) = current.parent() {
        if parent.metadata().map(|m| m.dev()).ok() != Some(device) {
            break;
        }
        current = parent;
    }
    current.to_path_buf()
}

/// Bytes an unprivileged writer may still use on the file system holding `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let existing = CString::new(existing(path)?.as_os_str().as_bytes()).ok()?;
    // SAFETY: a valid NUL-terminated path and a zeroed statvfs for the kernel to fill.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    let result = unsafe { libc::statvfs(existing.as_ptr(), &mut stats) };
    (result == 0).then(|| stats.f_bavail as u64 * stats.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_named_by_its_mount_point_and_worded_first() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a/b/model.safetensors");
        let error = disk_full(&file, "No space left on device (os error 28)".into());
        let message = error.to_string();
        let mount = mount_point(dir.path());
        assert!(
            message.starts_with(&format!("no space left on {}", mount.display())),
            "{message}"
        );
        assert!(message.contains(&file.display().to_string()));
        assert!(dir.path().starts_with(&mount));
        assert!(says_disk_full("safetensors: No space left on device"));
        assert!(!says_disk_full("permission denied"));
    }
}
