//! The per-run lock: an OS file lock on `runs/<id>/lock`, released by the kernel when its
//! holder exits or dies, so it never goes stale.
use std::fs::{self, File, TryLockError};
use std::path::PathBuf;

use super::{LOCK_FILE, RunDir, StoreError, io_err};

/// Holds the run's exclusive lock until dropped (or until the process dies: the OS
/// releases it, so a lock left by a killed process is never stale).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunDir {
    fn lock_path(&self) -> PathBuf {
        self.path.join(LOCK_FILE)
    }

    /// Takes the run's lock without waiting; `Locked` names the holder from `state.json`.
    pub fn try_lock(&self) -> Result<RunLock, StoreError> {
        fs::create_dir_all(&self.path)
            .map_err(io_err(&self.path, "cannot create run directory"))?;
        let path = self.lock_path();
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path, "cannot open lock file"))?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(TryLockError::WouldBlock) => {
                let holder = match self.read_state() {
                    Ok(Some(state)) => format!("pid {} on {}", state.pid, state.host),
                    _ => "unknown process".to_string(),
                };
                Err(StoreError::Locked {
                    path: self.path.clone(),
                    holder,
                })
            }
            Err(TryLockError::Error(source)) => Err(StoreError::Io {
                path,
                action: "cannot lock",
                source,
            }),
        }
    }

    /// Whether some process holds the run's lock right now.
    pub fn is_locked(&self) -> bool {
        File::options()
            .write(true)
            .open(self.lock_path())
            .is_ok_and(|file| matches!(file.try_lock(), Err(TryLockError::WouldBlock)))
    }
}
