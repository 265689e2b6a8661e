//! Atomic file replacement: a temporary file in the same directory, fsynced, then renamed,
//! so a reader (or a crash) sees the old content or the new, never a torn mix.
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use super::{StoreError, io_err};

/// Writes `bytes` to `path` so readers see the old content or the new, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// Like [`write_atomic`], for writers that stream into the file.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir).map_err(io_err(dir, "cannot create directory"))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err(dir, "cannot create temporary file"))?;
    write(temp.as_file_mut()).map_err(io_err(path, "cannot write"))?;
    temp.as_file()
        .sync_all()
        .map_err(io_err(path, "cannot sync"))?;
    temp.persist(path).map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        action: "cannot rename into place",
        source: e.error,
    })?;
    sync_dir(dir)
}

pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "cannot sync directory"))
}
