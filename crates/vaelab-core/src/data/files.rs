//! Where a dataset's files are and what they are, without decoding a pixel: the CelebA
//! layouts and their annotation files, image folders and their hash split, the roots a
//! config reads, and the decode cache's catalogue (its entries and their metadata) that
//! `vaelab gc` lists. Planning and fingerprinting need only this.
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::experiment::config::{DataConfig, DataSource};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(
        "{}: no CelebA here (expected {}/img_align_celeba/ and list_eval_partition.txt). Download \"Align&Cropped Images\" and the annotation files from the CelebA site (or the Kaggle copy \"jessicali9530/celeba-dataset\"), unpack them there, or point data.root / $VAELAB_CELEBA_ROOT at your copy",
        root.display(),
        root.display()
    )]
    CelebaMissing { root: PathBuf },
    #[error(
        "{}: no such directory; set data.root to a folder of JPEG, PNG or WebP images",
        root.display()
    )]
    FolderMissing { root: PathBuf },
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(
        "{}: the decoded cache is unreadable right after writing it; check the disk and remove the directory",
        path.display()
    )]
    CacheUnreadable { path: PathBuf },
    #[error("{}:{line}: {detail}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        detail: String,
    },
    #[error(
        "{}: no usable image in the {what} split (all missing or unreadable; see the skipped list in the cache metadata)",
        root.display()
    )]
    NoUsableImages { root: PathBuf, what: String },
    #[error("data.split: test: a folder dataset has no test split; use validation")]
    NoTestSplit,
    #[error(
        "data: the dataset has no training images (data.train_images = {0}); set it to at least 1"
    )]
    Empty(usize),
}

/// Where a dataset on disk is read from, made absolute when it can be (for the record in
/// `state.json`); `None` for synthetic data.
pub fn root_of(config: &DataConfig) -> Option<PathBuf> {
    let root = match config.source {
        DataSource::Synthetic => return None,
        DataSource::Folder => folder_root(config),
        DataSource::Celeba => celeba_root(config),
    };
    Some(std::fs::canonicalize(&root).unwrap_or(root))
}

/// Where an image folder is read from: `data.root`, else `data/images`.
pub fn folder_root(config: &DataConfig) -> PathBuf {
    config.root.clone().unwrap_or_else(|| "data/images".into())
}

/// Where CelebA is read from: `data.root`, else `$VAELAB_CELEBA_ROOT`, else `data/celeba`.
pub fn celeba_root(config: &DataConfig) -> std::path::PathBuf {
    config
        .root
        .clone()
        .or_else(|| std::env::var_os("VAELAB_CELEBA_ROOT").map(Into::into))
        .unwrap_or_else(|| "data/celeba".into())
}

/// Bumped when the cache's byte layout or preprocessing code changes meaning (2: truncated
/// files are skipped; 3: the metadata holds a checksum of the pixels and attributes).
pub const CACHE_VERSION: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CelebaLayout {
    /// `img_align_celeba/*.jpg`, `list_eval_partition.txt`, `list_attr_celeba.txt`.
    Official,
    /// `img_align_celeba/img_align_celeba/*.jpg`, `list_eval_partition.csv`, `list_attr_celeba.csv`.
    Kaggle,
}

/// Images of one split, in a fixed order, with their attributes (if the dataset has any).
#[derive(Debug, Clone, Default)]
pub struct FileList {
    pub root: PathBuf,
    pub files: Vec<String>,
    pub attributes: Vec<Vec<i8>>,
    pub attribute_names: Vec<String>,
}

pub fn detect_celeba(root: &Path) -> Result<CelebaLayout, DataError> {
    let official =
        root.join("img_align_celeba").is_dir() && root.join("list_eval_partition.txt").is_file();
    let kaggle = root.join("img_align_celeba/img_align_celeba").is_dir()
        && root.join("list_eval_partition.csv").is_file();
    match (kaggle, official) {
        (true, _) => Ok(CelebaLayout::Kaggle),
        (false, true) => Ok(CelebaLayout::Official),
        _ => Err(DataError::CelebaMissing {
            root: root.to_path_buf(),
        }),
    }
}

fn read(path: &Path) -> Result<String, DataError> {
    fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn malformed(path: &Path, line: usize, detail: impl Into<String>) -> DataError {
    DataError::Malformed {
        path: path.to_path_buf(),
        line,
        detail: detail.into(),
    }
}

/// `name -> partition` (0 train, 1 valid, 2 test), in file order.
fn read_partition(path: &Path, layout: CelebaLayout) -> Result<Vec<(String, u8)>, DataError> {
    let text = read(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (layout == CelebaLayout::Kaggle && i == 0) {
            continue;
        }
        let mut parts = line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty());
        let (Some(name), Some(split)) = (parts.next(), parts.next()) else {
            return Err(malformed(
                path,
                i + 1,
                format!("expected `image partition`, got {line:?}"),
            ));
        };
        let split: u8 = split.parse().ok().filter(|s| *s <= 2).ok_or_else(|| {
            malformed(
                path,
                i + 1,
                format!("partition must be 0, 1 or 2, got {split:?}"),
            )
        })?;
        out.push((name.to_string(), split));
    }
    Ok(out)
}

/// Attribute names, and each image's ±1 values by file name.
type AttributeTable = (Vec<String>, HashMap<String, Vec<i8>>);

/// Attribute names and `name -> ±1 values`.
fn read_attributes(path: &Path, layout: CelebaLayout) -> Result<AttributeTable, DataError> {
    let text = read(path)?;
    let mut lines = text.lines().enumerate();
    let split = |s: &str| -> Vec<String> {
        s.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    };
    let names: Vec<String> = match layout {
        CelebaLayout::Official => {
            lines.next();
            lines.next().map(|(_, l)| split(l)).unwrap_or_default()
        }
        CelebaLayout::Kaggle => lines
            .next()
            .map(|(_, l)| split(l).into_iter().skip(1).collect())
            .unwrap_or_default(),
    };
    if names.is_empty() {
        return Err(malformed(path, 1, "no attribute names"));
    }
    let mut values = HashMap::new();
    for (i, line) in lines {
        let parts = split(line);
        if parts.is_empty() {
            continue;
        }
        if parts.len() != names.len() + 1 {
            return Err(malformed(
                path,
                i + 1,
                format!("expected {} values, got {}", names.len(), parts.len() - 1),
            ));
        }
        let row: Vec<i8> = parts[1..]
            .iter()
            .map(|v| {
                v.parse::<i8>()
                    .ok()
                    .filter(|v| *v == 1 || *v == -1 || *v == 0)
                    .map(|v| if v == 0 { -1 } else { v })
            })
            .collect::<Option<_>>()
            .ok_or_else(|| malformed(path, i + 1, "attribute values must be 1 or -1"))?;
        values.insert(parts[0].clone(), row);
    }
    Ok((names, values))
}

/// Where a CelebA layout keeps its images and annotation files, relative to its root.
pub struct CelebaFiles {
    pub images: &'static str,
    pub partition: &'static str,
    pub attributes: &'static str,
}

pub fn celeba_file_names(layout: CelebaLayout) -> CelebaFiles {
    match layout {
        CelebaLayout::Official => CelebaFiles {
            images: "img_align_celeba",
            partition: "list_eval_partition.txt",
            attributes: "list_attr_celeba.txt",
        },
        CelebaLayout::Kaggle => CelebaFiles {
            images: "img_align_celeba/img_align_celeba",
            partition: "list_eval_partition.csv",
            attributes: "list_attr_celeba.csv",
        },
    }
}

/// The CelebA files of `partition` (0 train, 1 valid, 2 test) in the official order.
pub fn celeba_files(root: &Path, partition: u8) -> Result<(CelebaLayout, FileList), DataError> {
    let layout = detect_celeba(root)?;
    let CelebaFiles {
        images,
        partition: partition_file,
        attributes: attr_file,
    } = celeba_file_names(layout);
    let entries = read_partition(&root.join(partition_file), layout)?;
    let attr_path = root.join(attr_file);
    let (names, attrs) = if attr_path.is_file() {
        read_attributes(&attr_path, layout)?
    } else {
        (Vec::new(), HashMap::new())
    };
    let mut list = FileList {
        root: root.join(images),
        attribute_names: names.clone(),
        ..Default::default()
    };
    for (name, split) in entries {
        if split != partition {
            continue;
        }
        list.attributes.push(
            attrs
                .get(&name)
                .cloned()
                .unwrap_or_else(|| vec![0; names.len()]),
        );
        list.files.push(name);
    }
    Ok((layout, list))
}

fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) -> Result<(), DataError> {
    let entries = fs::read_dir(dir).map_err(|source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        // The directory entry's own type (no stat per file); a link is followed.
        let is_dir = entry
            .file_type()
            .is_ok_and(|t| t.is_dir() || (t.is_symlink() && path.is_dir()));
        if is_dir {
            walk(&path, base, out)?;
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            ["jpg", "jpeg", "png", "webp"].contains(&e.to_ascii_lowercase().as_str())
        }) && let Ok(rel) = path.strip_prefix(base)
        {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// Every image file under `root` (JPEG, PNG, WebP), relative to it, sorted.
pub fn image_files(root: &Path) -> Result<Vec<String>, DataError> {
    let mut all = Vec::new();
    walk(root, root, &mut all)?;
    all.sort();
    Ok(all)
}

/// A folder's images split by a hash of each relative path: stable when files are added.
pub fn folder_files(root: &Path, val_ratio: f64, validation: bool) -> Result<FileList, DataError> {
    if !root.is_dir() {
        return Err(DataError::FolderMissing {
            root: root.to_path_buf(),
        });
    }
    let files: Vec<String> = image_files(root)?
        .into_iter()
        .filter(|rel| {
            let digest = Sha256::digest(rel.as_bytes());
            let u = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")) as f64
                / u64::MAX as f64;
            (u < val_ratio) == validation
        })
        .collect();
    Ok(FileList {
        root: root.to_path_buf(),
        attributes: vec![Vec::new(); files.len()],
        files,
        attribute_names: Vec::new(),
    })
}

/// What a decode-cache entry says of itself, in `<key>.json` beside its pixels.
#[derive(Debug, Serialize, Deserialize)]
pub struct CacheMeta {
    pub version: u32,
    pub key: String,
    /// The fingerprint of the dataset it was decoded from (none: written before
    /// fingerprints, or from a config without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    pub count: usize,
    pub image_size: u32,
    pub attribute_names: Vec<String>,
    pub skipped: Vec<(String, String)>,
    /// XXH3-64 of the pixel file and of the attribute file, checked every time the cache
    /// is opened: damage that keeps a file's length is caught, not trained on. XXH3 runs
    /// at memory speed, so checking CelebA's 8 GB at 128×128 costs well under a second
    /// beside the read that loading it takes anyway (BENCHMARKS.md).
    pub pixels_xxh3: u64,
    pub attributes_xxh3: u64,
}

pub fn cache_dir() -> PathBuf {
    std::env::var_os("VAELAB_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/vaelab")))
        .unwrap_or_else(|| PathBuf::from(".vaelab-cache"))
        .join("datasets")
}

/// One decoded split in the cache: its files, their size, and the dataset it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheEntry {
    pub key: String,
    pub fingerprint: Option<String>,
    pub bytes: u64,
    pub files: Vec<PathBuf>,
}

/// Every entry of the decode cache in `cache`, by key; files left by an interrupted decode
/// (no metadata, or metadata of another version) are entries without a fingerprint.
pub fn cache_entries(cache: &Path) -> Vec<CacheEntry> {
    let Ok(read) = fs::read_dir(cache) else {
        return Vec::new();
    };
    let mut entries: Vec<CacheEntry> = Vec::new();
    for path in read.flatten().map(|e| e.path()) {
        let (Some(stem), Some(ext)) = (path.file_stem(), path.extension()) else {
            continue;
        };
        if !["u8", "attr", "json"].contains(&ext.to_string_lossy().as_ref()) {
            continue;
        }
        let key = stem.to_string_lossy().into_owned();
        let bytes = fs::metadata(&path).map_or(0, |m| m.len());
        match entries.iter_mut().find(|e| e.key == key) {
            Some(entry) => {
                entry.bytes += bytes;
                entry.files.push(path);
            }
            None => entries.push(CacheEntry {
                key,
                fingerprint: None,
                bytes,
                files: vec![path],
            }),
        }
    }
    for entry in &mut entries {
        entry.fingerprint = fs::read(cache.join(format!("{}.json", entry.key)))
            .ok()
            .and_then(|b| serde_json::from_slice::<CacheMeta>(&b).ok())
            .filter(|m| m.version == CACHE_VERSION)
            .and_then(|m| m.fingerprint);
        entry.files.sort();
    }
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    entries
}

/// CelebA's partitions, as `list_eval_partition.txt` numbers them.
pub const TRAIN_PARTITION: u8 = 0;
pub const VALIDATION_PARTITION: u8 = 1;
pub const TEST_PARTITION: u8 = 2;
