//! Datasets on disk: CelebA (official and Kaggle layouts) and any folder of images, decoded
//! once in parallel into a uint8 cache keyed by the data's fingerprint, the file list and the
//! preprocessing, and checksummed so damage is rebuilt, never trained on.
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use image::imageops::FilterType;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor};
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use super::DataError;
use crate::experiment::config::{DataConfig, ResizeFilter};
use crate::progress::Reporter;
use crate::store::write_atomic;

/// Bumped when the cache's byte layout or preprocessing code changes meaning (2: truncated
/// files are skipped; 3: the metadata holds a checksum of the pixels and attributes).
const CACHE_VERSION: u32 = 3;

/// Images decoded in parallel before their pixels are appended to the cache file.
const DECODE_CHUNK: usize = 2048;

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

fn filter(filter: ResizeFilter) -> FilterType {
    match filter {
        ResizeFilter::Nearest => FilterType::Nearest,
        ResizeFilter::Triangle => FilterType::Triangle,
        ResizeFilter::CatmullRom => FilterType::CatmullRom,
        ResizeFilter::Gaussian => FilterType::Gaussian,
        ResizeFilter::Lanczos3 => FilterType::Lanczos3,
    }
}

/// Why `bytes` cannot be a whole image file, for the formats whose ends are marked: a
/// partly downloaded JPEG decodes "successfully" with its missing rows grey, so the end
/// must be checked before the decoder is trusted.
fn truncation(bytes: &[u8]) -> Option<String> {
    const JPEG: &[u8] = &[0xFF, 0xD8];
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    // Trailing padding after the end-of-image marker is tolerated, a missing marker is not.
    const JPEG_TAIL: usize = 64;
    if bytes.starts_with(JPEG) {
        let tail = &bytes[bytes.len().saturating_sub(JPEG_TAIL)..];
        if !tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
            return Some("truncated JPEG: no end-of-image marker (a partial download?)".into());
        }
    } else if bytes.starts_with(PNG) {
        // The last chunk is IEND: length (4), type (4), CRC (4).
        let whole = bytes.len() >= 12 && &bytes[bytes.len() - 8..bytes.len() - 4] == b"IEND";
        if !whole {
            return Some("truncated PNG: no IEND chunk at the end (a partial download?)".into());
        }
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        let declared = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize + 8;
        if bytes.len() < declared {
            return Some(format!(
                "truncated WebP: its header says {declared} bytes, the file has {} (a partial download?)",
                bytes.len()
            ));
        }
    }
    None
}

/// Decodes, centre-crops and resizes one image to CHW uint8. A truncated or otherwise
/// undecodable file is an error naming why, so the caller skips and reports it.
pub fn preprocess(
    path: &Path,
    size: u32,
    crop: Option<u32>,
    resize: ResizeFilter,
) -> Result<Vec<u8>, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    if let Some(reason) = truncation(&bytes) {
        return Err(reason);
    }
    let img = image::load_from_memory(&bytes)
        .map_err(|e| e.to_string())?
        .to_rgb8();
    let (w, h) = img.dimensions();
    let side = crop.unwrap_or(u32::MAX).min(w).min(h);
    let img = match crop {
        Some(_) => {
            image::imageops::crop_imm(&img, (w - side) / 2, (h - side) / 2, side, side).to_image()
        }
        None => img,
    };
    let img = image::imageops::resize(&img, size, size, filter(resize));
    let plane = (size * size) as usize;
    let mut chw = vec![0u8; 3 * plane];
    for (i, pixel) in img.pixels().enumerate() {
        for c in 0..3 {
            chw[c * plane + i] = pixel.0[c];
        }
    }
    Ok(chw)
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheMeta {
    version: u32,
    key: String,
    /// The fingerprint of the dataset it was decoded from (none: written before
    /// fingerprints, or from a config without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
    count: usize,
    image_size: u32,
    attribute_names: Vec<String>,
    skipped: Vec<(String, String)>,
    /// XXH3-64 of the pixel file and of the attribute file, checked every time the cache
    /// is opened: damage that keeps a file's length is caught, not trained on. XXH3 runs
    /// at memory speed, so checking CelebA's 8 GB at 128×128 costs well under a second
    /// beside the read that loading it takes anyway (BENCHMARKS.md).
    pixels_xxh3: u64,
    attributes_xxh3: u64,
}

/// A decoded split: images (N, 3, S, S) uint8, read from the cache; attributes (N, A).
pub struct Decoded {
    pub images: Tensor,
    pub attributes: Tensor,
    pub attribute_names: Vec<String>,
    pub skipped: Vec<(String, String)>,
}

pub fn cache_dir() -> PathBuf {
    std::env::var_os("VAELAB_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/vaelab")))
        .unwrap_or_else(|| PathBuf::from(".vaelab-cache"))
        .join("datasets")
}

/// The cache entry of one split: the dataset's content fingerprint (so a copy that keeps
/// modification times, or damage that keeps a file's length, never serves stale pixels,
/// and the same images moved reuse their entry), the split's file list and the
/// preprocessing. A config without a fingerprint (written before fingerprints) falls back
/// to each file's size and modification time under its root.
fn cache_key(list: &FileList, config: &DataConfig) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("vaelab-cache/{CACHE_VERSION}\n"));
    hasher.update(format!(
        "{} {:?} {:?}\n",
        config.image_size, config.crop, config.resize_filter
    ));
    match &config.fingerprint {
        Some(fingerprint) => {
            hasher.update(format!("fingerprint {fingerprint}\n"));
            for name in &list.files {
                hasher.update(format!("{name}\n"));
            }
        }
        None => {
            hasher.update(format!("{}\n", list.root.display()));
            for name in &list.files {
                let meta = fs::metadata(list.root.join(name)).ok();
                let size = meta.as_ref().map_or(0, |m| m.len());
                let mtime = meta
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                hasher.update(format!("{name}\t{size}\t{mtime}\n"));
            }
        }
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn open_cache(dir: &Path, key: &str, size: u32, attrs: usize) -> Option<Decoded> {
    let meta: CacheMeta =
        serde_json::from_slice(&fs::read(dir.join(format!("{key}.json"))).ok()?).ok()?;
    let pixels = dir.join(format!("{key}.u8"));
    let attr_path = dir.join(format!("{key}.attr"));
    let bytes_per = 3 * (size as u64) * (size as u64);
    let ok = meta.version == CACHE_VERSION
        && meta.key == key
        && meta.count > 0
        && fs::metadata(&pixels).ok()?.len() == meta.count as u64 * bytes_per
        && fs::metadata(&attr_path).ok()?.len() == (meta.count * attrs) as u64;
    if !ok {
        return None;
    }
    let s = size as i64;
    let images = Tensor::f_from_file(
        pixels.to_str()?,
        false,
        Some(meta.count as i64 * 3 * s * s),
        (Kind::Uint8, Device::Cpu),
    )
    .ok()?
    .view([meta.count as i64, 3, s, s]);
    if xxh3_of_bytes(&images) != meta.pixels_xxh3 {
        return None;
    }
    let attribute_bytes = fs::read(&attr_path).ok()?;
    if xxh3_64(&attribute_bytes) != meta.attributes_xxh3 {
        return None;
    }
    let attributes = if attrs == 0 {
        Tensor::zeros([meta.count as i64, 0], (Kind::Int8, Device::Cpu))
    } else {
        Tensor::from_slice(
            &attribute_bytes
                .iter()
                .map(|&b| b as i8)
                .collect::<Vec<i8>>(),
        )
        .view([meta.count as i64, attrs as i64])
    };
    Some(Decoded {
        images,
        attributes,
        attribute_names: meta.attribute_names,
        skipped: meta.skipped,
    })
}

/// XXH3-64 of a contiguous uint8 CPU tensor's bytes, read in place (no copy of a
/// dataset-sized buffer).
fn xxh3_of_bytes(tensor: &Tensor) -> u64 {
    debug_assert!(tensor.kind() == Kind::Uint8 && tensor.is_contiguous());
    let len = tensor.numel();
    if len == 0 {
        return xxh3_64(&[]);
    }
    // SAFETY: a contiguous uint8 tensor on the CPU owns `numel` bytes at its data pointer,
    // and `tensor` is borrowed (so alive and unchanged) for the slice's whole life.
    let bytes = unsafe { std::slice::from_raw_parts(tensor.data_ptr() as *const u8, len) };
    xxh3_64(bytes)
}

/// Returns the decoded split from the cache in `cache` (normally [`cache_dir`]), decoding
/// (in parallel, with progress) first if the cache is missing, stale or damaged.
pub fn decode_cached(
    cache: &Path,
    list: &FileList,
    config: &DataConfig,
    what: &str,
    reporter: &dyn Reporter,
) -> Result<Decoded, DataError> {
    let dir = cache.to_path_buf();
    let key = cache_key(list, config);
    let attrs = list.attribute_names.len();
    if let Some(decoded) = open_cache(&dir, &key, config.image_size, attrs) {
        return Ok(decoded);
    }
    if dir.join(format!("{key}.json")).exists() {
        reporter.warn(&format!(
            "{}: cache damaged or stale; rebuilding",
            dir.join(&key).display()
        ));
    }
    let resize = config
        .resize_filter
        .unwrap_or(DataConfig::DEFAULT_RESIZE_FILTER);
    reporter.start(&format!("decoding {what}"), list.files.len() as u64, "img");
    let done = std::sync::atomic::AtomicU64::new(0);
    let mut attributes = Vec::new();
    let mut skipped = Vec::new();
    let mut count = 0usize;
    let mut pixels_hash = Xxh3::new();
    let io = DataError::Store;
    // Decoded in chunks streamed to the cache file, so the peak memory is one chunk, not
    // the dataset (CelebA at 128×128 is about 8 GB of pixels).
    crate::store::write_atomic_with(&dir.join(format!("{key}.u8")), |file| {
        use std::io::Write;
        let mut writer = std::io::BufWriter::new(file);
        for (names, attrs) in list
            .files
            .chunks(DECODE_CHUNK)
            .zip(list.attributes.chunks(DECODE_CHUNK))
        {
            let results: Vec<Result<Vec<u8>, String>> = names
                .par_iter()
                .map(|name| {
                    let out = preprocess(
                        &list.root.join(name),
                        config.image_size,
                        config.crop,
                        resize,
                    );
                    let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    if n.is_multiple_of(256) {
                        reporter.advance(n, "");
                    }
                    out
                })
                .collect();
            for ((name, result), attr) in names.iter().zip(results).zip(attrs) {
                match result {
                    Ok(chw) => {
                        writer.write_all(&chw)?;
                        pixels_hash.update(&chw);
                        attributes.extend(attr.iter().map(|&a| a as u8));
                        count += 1;
                    }
                    Err(reason) => skipped.push((name.clone(), reason)),
                }
            }
        }
        writer.flush()
    })
    .map_err(io)?;
    reporter.finish();
    if !skipped.is_empty() {
        reporter.warn(&format!(
            "{}: skipped {} unreadable image(s), first {}: {}",
            list.root.display(),
            skipped.len(),
            skipped[0].0,
            skipped[0].1
        ));
    }
    if count == 0 {
        return Err(DataError::NoUsableImages {
            root: list.root.clone(),
            what: what.to_string(),
        });
    }
    write_atomic(&dir.join(format!("{key}.attr")), &attributes).map_err(io)?;
    let meta = CacheMeta {
        version: CACHE_VERSION,
        key: key.clone(),
        fingerprint: config.fingerprint.clone(),
        count,
        image_size: config.image_size,
        attribute_names: list.attribute_names.clone(),
        skipped,
        pixels_xxh3: pixels_hash.digest(),
        attributes_xxh3: xxh3_64(&attributes),
    };
    // The metadata is the commit point: written last, so a crash leaves no usable-looking cache.
    write_atomic(
        &dir.join(format!("{key}.json")),
        &serde_json::to_vec_pretty(&meta).expect("serializes"),
    )
    .map_err(io)?;
    open_cache(&dir, &key, config.image_size, attrs).ok_or_else(|| DataError::CacheUnreadable {
        path: dir.join(&key),
    })
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
