//! Atomic file replacement: a temporary file in the same directory, fsynced, then renamed,
//! so a reader (or a crash) sees the old content or the new, never a torn mix.
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{StoreError, io_err};

/// Writes `bytes` to `path` so readers see the old content or the new, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// Writes `frame` as a Parquet file at `path`, atomically. The file is encoded in memory
/// first (these files are small), so a failing disk reports its own OS error (a full disk
/// as one) instead of the encoder's wrapped text.
pub fn write_parquet(
    path: &Path,
    frame: &mut polars::prelude::DataFrame,
) -> Result<(), StoreError> {
    let mut bytes = Vec::new();
    polars::prelude::ParquetWriter::new(&mut bytes)
        .finish(frame)
        .map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("cannot encode Parquet: {e}"),
        })?;
    write_atomic(path, &bytes)
}

/// Like [`write_atomic`], for writers that stream into the file.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    let dir = parent_dir(path);
    fs::create_dir_all(dir).map_err(io_err(dir, "cannot create directory"))?;
    // The mode a plain `File::create` gives (0666 less the umask), not the temporary
    // file's private 0600: colleagues and web servers read a shared runs directory.
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(fs::Permissions::from_mode(0o666))
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

/// The directory holding `path`; a bare file name's is the working directory.
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "cannot sync directory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// umask is process-wide, so both masks are tried in one test, one after the other.
    #[test]
    fn written_files_get_the_mode_the_umask_gives() {
        let dir = tempfile::tempdir().unwrap();
        for (umask, expected) in [(0o022, 0o644), (0o077, 0o600)] {
            let previous = unsafe { libc::umask(umask) };
            let path = dir.path().join(format!("file-{umask:o}"));
            let written = write_atomic(&path, b"x");
            unsafe { libc::umask(previous) };
            written.unwrap();
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, expected, "umask {umask:o}");
        }
    }

    #[test]
    fn a_bare_file_name_is_written_in_the_working_directory() {
        assert_eq!(parent_dir(Path::new("runs.parquet")), Path::new("."));
        assert_eq!(parent_dir(Path::new("out/runs.parquet")), Path::new("out"));
        assert_eq!(parent_dir(Path::new("/runs.parquet")), Path::new("/"));
    }
}
