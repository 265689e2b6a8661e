//! The content fingerprint of a dataset on disk: what a run's identity holds in place of
//! the dataset's path, so the same images anywhere share an id and other images never do.
//!
//! A fingerprint covers every image file under the dataset's image folder (its path
//! relative to that folder, its size and the SHA-256 of its bytes, in sorted order) and the
//! annotation files (partition and attributes) byte for byte. Hashing a file's content is
//! done once: the hash is remembered in the cache directory by (path, size, modification
//! time, inode), as git's index and DVC do, so planning again costs one `stat` per file.
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::DataError;
use super::files;
use crate::experiment::config::{DataConfig, DataSource};
use crate::experiment::plan::Plan;
use crate::experiment::spec::{LoadedSpec, SpecError};
use crate::store::write_atomic;

/// Bumped when what a fingerprint covers changes meaning.
const FINGERPRINT_VERSION: u32 = 1;

/// Hex digits of a fingerprint that `plan` shows.
pub const SHORT_FINGERPRINT: usize = 12;

/// A file's content hash, valid while its (size, modification time, inode) are these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Remembered {
    size: u64,
    mtime_ns: i128,
    inode: u64,
    sha256: String,
}

/// The remembered hashes of one dataset folder, by path relative to it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Memo {
    version: u32,
    root: PathBuf,
    files: BTreeMap<String, Remembered>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The fingerprint of the dataset `config` reads, or `None` for synthetic data (whose
/// parameters are its identity already). Hashes are remembered under `cache`.
pub fn fingerprint(config: &DataConfig, cache: &Path) -> Result<Option<String>, DataError> {
    let (images, annotations) = match config.source {
        DataSource::Synthetic => return Ok(None),
        DataSource::Folder => {
            let root = super::folder_root(config);
            if !root.is_dir() {
                return Err(DataError::FolderMissing { root });
            }
            (root, Vec::new())
        }
        DataSource::Celeba => {
            let root = super::celeba_root(config);
            let layout = files::detect_celeba(&root)?;
            let files = files::celeba_file_names(layout);
            // The attribute file is optional (runs then have no attribute directions).
            let mut annotations = vec![root.join(files.partition)];
            annotations.extend(Some(root.join(files.attributes)).filter(|p| p.is_file()));
            (root.join(files.images), annotations)
        }
    };
    let mut hasher = Sha256::new();
    hasher.update(format!("vaelab-data/{FINGERPRINT_VERSION}\n"));
    for path in &annotations {
        let bytes = fs::read(path).map_err(io(path))?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        hasher.update(format!(
            "annotation\t{name}\t{}\n",
            hex(&Sha256::digest(&bytes))
        ));
    }
    for (name, remembered) in hash_images(&images, cache)? {
        hasher.update(format!(
            "image\t{name}\t{}\t{}\n",
            remembered.size, remembered.sha256
        ));
    }
    Ok(Some(hex(&hasher.finalize())))
}

/// Where the remembered hashes of the image folder `root` live.
fn memo_path(cache: &Path, root: &Path) -> PathBuf {
    let absolute = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let key = hex(&Sha256::digest(absolute.to_string_lossy().as_bytes()));
    cache
        .join("fingerprints")
        .join(format!("{}.json", &key[..32]))
}

fn read_memo(path: &Path, root: &Path) -> Memo {
    fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Memo>(&bytes).ok())
        .filter(|memo| memo.version == FINGERPRINT_VERSION && memo.root == root)
        .unwrap_or_default()
}

/// Every image under `root`, sorted, with its size and content hash (read only where the
/// remembered one no longer matches the file's metadata).
fn hash_images(root: &Path, cache: &Path) -> Result<BTreeMap<String, Remembered>, DataError> {
    let names = files::image_files(root)?;
    let memo_file = memo_path(cache, root);
    let absolute = fs::canonicalize(root).map_err(io(root))?;
    let memo = read_memo(&memo_file, &absolute);
    let hashed: Vec<(String, Remembered, bool)> = names
        .into_par_iter()
        .map(|name| {
            let path = root.join(&name);
            let meta = fs::metadata(&path).map_err(io(&path))?;
            let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
            let (size, inode) = (meta.len(), meta.ino());
            if let Some(known) = memo.files.get(&name)
                && (known.size, known.mtime_ns, known.inode) == (size, mtime_ns, inode)
            {
                return Ok((name, known.clone(), false));
            }
            let bytes = fs::read(&path).map_err(io(&path))?;
            let sha256 = hex(&Sha256::digest(&bytes));
            let remembered = Remembered {
                size: bytes.len() as u64,
                mtime_ns,
                inode,
                sha256,
            };
            Ok((name, remembered, true))
        })
        .collect::<Result<_, DataError>>()?;
    let changed = hashed.iter().any(|(_, _, fresh)| *fresh) || hashed.len() != memo.files.len();
    let files: BTreeMap<String, Remembered> =
        hashed.into_iter().map(|(name, r, _)| (name, r)).collect();
    if changed {
        let memo = Memo {
            version: FINGERPRINT_VERSION,
            root: absolute,
            files,
        };
        // Remembering is an optimisation: a cache that cannot be written costs a re-read
        // next time, never a wrong fingerprint.
        let _ = write_atomic(
            &memo_file,
            &serde_json::to_vec(&memo).expect("the memo serializes"),
        );
        return Ok(memo.files);
    }
    Ok(files)
}

/// Every run `loaded` describes, each identified by the content of the data it reads.
pub fn plan(loaded: &LoadedSpec) -> Result<Plan, SpecError> {
    let cache = files::cache_dir();
    crate::experiment::plan::plan(loaded, &|data| {
        fingerprint(data, &cache).map_err(|e| e.to_string())
    })
}

/// The short form `plan` shows.
pub fn short(fingerprint: &str) -> &str {
    &fingerprint[..SHORT_FINGERPRINT.min(fingerprint.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(root: &Path) -> DataConfig {
        DataConfig {
            source: DataSource::Folder,
            root: Some(root.to_path_buf()),
            ..DataConfig::default()
        }
    }

    fn write(root: &Path, name: &str, bytes: &[u8]) {
        let path = root.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn content_decides_and_the_path_does_not() {
        let (a, b, cache) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        for root in [a.path(), b.path()] {
            write(root, "x/one.png", b"first image");
            write(root, "two.jpg", b"second image");
        }
        let of = |root: &Path| fingerprint(&folder(root), cache.path()).unwrap().unwrap();
        assert_eq!(of(a.path()), of(b.path()), "the same images elsewhere");
        write(b.path(), "two.jpg", b"second image, edited");
        let edited = of(b.path());
        assert_ne!(of(a.path()), edited, "an edited image");
        write(b.path(), "three.webp", b"third");
        assert_ne!(edited, of(b.path()), "an added image");
        write(a.path(), "notes.txt", b"not an image");
        assert_eq!(of(a.path()), of(a.path()));
        let synthetic = DataConfig::default();
        assert_eq!(fingerprint(&synthetic, cache.path()).unwrap(), None);
    }

    /// A remembered hash is used while the file's metadata matches, so the second
    /// fingerprint reads no image: proven by a remembered hash that differs from the bytes.
    #[test]
    fn remembered_hashes_are_used_until_the_metadata_changes() {
        let (root, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write(root.path(), "a.png", b"pixels");
        let first = fingerprint(&folder(root.path()), cache.path()).unwrap();
        let memo_file = memo_path(cache.path(), root.path());
        let mut memo: Memo = serde_json::from_slice(&fs::read(&memo_file).unwrap()).unwrap();
        memo.files.get_mut("a.png").unwrap().sha256 = "0".repeat(64);
        fs::write(&memo_file, serde_json::to_vec(&memo).unwrap()).unwrap();
        let remembered = fingerprint(&folder(root.path()), cache.path()).unwrap();
        assert_ne!(
            first, remembered,
            "the remembered hash was used, not the bytes"
        );
        // Another modification time: the file is read and hashed again.
        let file = fs::File::options()
            .write(true)
            .open(root.path().join("a.png"))
            .unwrap();
        file.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        drop(file);
        let rehashed = fingerprint(&folder(root.path()), cache.path()).unwrap();
        assert_eq!(first, rehashed);
    }

    #[test]
    fn a_missing_folder_is_named() {
        let cache = tempfile::tempdir().unwrap();
        let err = fingerprint(&folder(Path::new("/no/such/folder")), cache.path()).unwrap_err();
        assert!(err.to_string().contains("/no/such/folder"), "{err}");
    }
}
