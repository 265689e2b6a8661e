//! Putting a report in place: written into a staging folder beside it, then swapped with
//! the previous report in one atomic exchange (`renameat2` with `RENAME_EXCHANGE` on
//! Linux; two renames elsewhere), so a reader always finds a whole report. Staging and
//! old folders left by a process that died are removed by the next report.
use std::fs;
use std::path::{Path, PathBuf};

use super::{ReportError, ReportFiles, io};
use crate::store::{parent_dir, write_atomic};

/// Writes `files` as directory `dir`, replacing an earlier report there atomically.
pub fn write(dir: &Path, files: &ReportFiles) -> Result<(), ReportError> {
    let parent = parent_dir(dir);
    fs::create_dir_all(parent).map_err(io(parent, "create directory"))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    remove_stale(parent, &name);
    let staging = tempfile::Builder::new()
        .prefix(&staging_prefix(&name, &host(), std::process::id()))
        .tempdir_in(parent)
        .map_err(io(parent, "create a temporary directory"))?;
    for (relative, bytes) in &files.files {
        write_atomic(&staging.path().join(relative), bytes)?;
    }
    let staged = staging.keep();
    // A first report moves in by rename; if another process's first report got there
    // since (the rename then fails on a non-empty folder), it is exchanged like any other.
    if !dir.exists() && fs::rename(&staged, dir).is_ok() {
        return Ok(());
    }
    match exchange(&staged, dir) {
        // `staged` now holds the previous report.
        Ok(()) => fs::remove_dir_all(&staged).map_err(io(&staged, "remove the previous report")),
        Err(_) => two_renames(
            &staged,
            dir,
            &parent.join(old_name(&name, &host(), std::process::id())),
        ),
    }
}

/// This machine's name, as staging folders carry it: on a shared file system a process
/// id means something only on its own host.
fn host() -> String {
    crate::store::host_name().replace(['@', '/'], "_")
}

/// `.report-NAME@HOST@PID-`: a staging folder's prefix, naming the process that owns it.
fn staging_prefix(name: &str, host: &str, pid: u32) -> String {
    format!(".report-{name}@{host}@{pid}-")
}

/// `.old-NAME@HOST@PID`: where the two-rename fallback parks the previous report.
fn old_name(name: &str, host: &str, pid: u32) -> String {
    format!(".old-{name}@{host}@{pid}")
}

/// Swaps two paths in one step, where the file system can.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: two valid NUL-terminated paths, relative to the working directory.
    let result = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// The fallback: the previous report aside to `old`, the new one in, the old one removed;
/// on failure the previous report is moved back, and if even that fails the error says
/// where it is.
fn two_renames(staged: &Path, dir: &Path, old: &Path) -> Result<(), ReportError> {
    fs::rename(dir, old).map_err(io(dir, "move the previous report aside"))?;
    if let Err(source) = fs::rename(staged, dir) {
        let action = match fs::rename(old, dir) {
            Ok(()) => "move the new report into place (the previous report is unchanged)",
            Err(_) => "move the new report into place; the previous report is kept beside it",
        };
        let path = if dir.exists() { dir } else { old };
        return Err(ReportError::Io {
            path: path.to_path_buf(),
            action,
            source,
        });
    }
    fs::remove_dir_all(old).map_err(io(old, "remove the previous report"))
}

/// The host and pid in `.report-NAME@HOST@PID-xxxx` or `.old-NAME@HOST@PID`, for
/// folders of report `name`.
fn owner(entry: &str, name: &str) -> Option<(String, u32)> {
    let rest = entry
        .strip_prefix(&format!(".report-{name}@"))
        .or_else(|| entry.strip_prefix(&format!(".old-{name}@")))?;
    let (host, rest) = rest.split_once('@')?;
    Some((host.to_string(), rest.split('-').next()?.parse().ok()?))
}

/// Whether process `pid` is alive on this machine.
fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let result = unsafe { libc::kill(pid as libc::pid_t, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes staging and old folders of report `name` whose process on this host is gone; a
/// report being written by a live process, or by any process of another host (whose
/// liveness cannot be seen from here), keeps its folder.
fn remove_stale(parent: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    let stale: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            let entry = e.file_name().to_string_lossy().into_owned();
            owner(&entry, name).is_some_and(|(owner_host, pid)| {
                owner_host == host() && pid != std::process::id() && !alive(pid)
            })
        })
        .map(|e| e.path())
        .collect();
    for path in stale {
        // Best effort: a folder that cannot be removed now is tried again next time.
        let _ = fs::remove_dir_all(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(text: &str) -> ReportFiles {
        ReportFiles {
            figures: 0,
            tables: 0,
            files: vec![(PathBuf::from("report.md"), text.as_bytes().to_vec())],
        }
    }

    /// A pid that was alive and is not any more.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn a_report_replaces_the_previous_one_and_leaves_nothing_beside_it() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("exp");
        write(&dir, &files("one")).unwrap();
        write(&dir, &files("two")).unwrap();
        assert_eq!(fs::read_to_string(dir.join("report.md")).unwrap(), "two");
        let names: Vec<String> = fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["exp"]);
    }

    /// Two processes publishing the first report of one experiment at once: both succeed
    /// and the folder holds one whole report.
    #[test]
    fn concurrent_first_reports_both_succeed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("exp");
        let barrier = std::sync::Barrier::new(8);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let (dir, barrier) = (&dir, &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        write(dir, &files(&format!("report {i}")))
                    })
                })
                .collect();
            for handle in handles {
                handle.join().unwrap().unwrap();
            }
        });
        let text = fs::read_to_string(dir.join("report.md")).unwrap();
        assert!(text.starts_with("report "), "{text}");
        let names: Vec<String> = fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["exp"], "nothing left beside it");
    }

    #[test]
    fn the_exchange_swaps_two_folders_in_one_step() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        for (dir, text) in [(&a, "a"), (&b, "b")] {
            fs::create_dir(dir).unwrap();
            fs::write(dir.join("f"), text).unwrap();
        }
        exchange(&a, &b).unwrap();
        assert_eq!(fs::read_to_string(a.join("f")).unwrap(), "b");
        assert_eq!(fs::read_to_string(b.join("f")).unwrap(), "a");
    }

    #[test]
    fn the_two_rename_fallback_replaces_the_report_too() {
        let root = tempfile::tempdir().unwrap();
        let (staged, dir) = (root.path().join("staged"), root.path().join("exp"));
        for (d, text) in [(&staged, "new"), (&dir, "old")] {
            fs::create_dir(d).unwrap();
            fs::write(d.join("report.md"), text).unwrap();
        }
        two_renames(&staged, &dir, &root.path().join(old_name("exp", "h", 1))).unwrap();
        assert_eq!(fs::read_to_string(dir.join("report.md")).unwrap(), "new");
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
    }

    #[test]
    fn folders_left_by_dead_processes_are_removed_and_live_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let dead = dead_pid();
        let live = std::process::id();
        let here = host();
        let leftovers = [
            format!("{}abc123", staging_prefix("exp", &here, dead)),
            old_name("exp", &here, dead),
        ];
        let kept = [
            format!("{}def456", staging_prefix("exp", &here, live)),
            format!("{}ghi789", staging_prefix("other", &here, dead)),
            // Another host's process: its pid says nothing here.
            format!("{}jkl012", staging_prefix("exp", "elsewhere", dead)),
        ];
        for name in leftovers.iter().chain(&kept) {
            fs::create_dir(root.path().join(name)).unwrap();
        }
        write(&root.path().join("exp"), &files("x")).unwrap();
        for name in &leftovers {
            assert!(!root.path().join(name).exists(), "{name} should be gone");
        }
        for name in &kept {
            assert!(root.path().join(name).exists(), "{name} should stay");
        }
    }
}
