//! Decoding datasets on disk (whose files `files` finds) once, in parallel, into a uint8
//! cache keyed by the data's fingerprint, the file list and the preprocessing, and
//! checksummed so damage is rebuilt, never trained on.
use std::fs;
use std::path::Path;
use std::time::UNIX_EPOCH;

use image::imageops::FilterType;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor};
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use super::DataError;
use super::files::{CACHE_VERSION, CacheMeta, FileList};
use crate::experiment::config::{DataConfig, ResizeFilter};
use crate::progress::Reporter;
use crate::store::write_atomic;

/// Images decoded in parallel before their pixels are appended to the cache file.
const DECODE_CHUNK: usize = 2048;

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

/// A decoded split: images (N, 3, S, S) uint8, read from the cache; attributes (N, A).
pub struct Decoded {
    pub images: Tensor,
    pub attributes: Tensor,
    pub attribute_names: Vec<String>,
    pub skipped: Vec<(String, String)>,
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
