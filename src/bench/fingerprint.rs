//! What a dataset's content fingerprint costs: the first time (every file read and hashed)
//! and memoized (a `stat` per file), and what it adds to planning a spec on that dataset.
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::data::DataError;
use crate::experiment::config::{DataConfig, DataSource};

#[derive(Debug, Clone, Serialize)]
pub struct FingerprintBenchResult {
    pub images: usize,
    pub bytes: u64,
    /// Every file read and hashed (nothing remembered yet).
    pub first_seconds: f64,
    /// Hashes remembered by (path, size, modification time, inode).
    pub memoized_seconds: f64,
    /// `plan` of a one-run spec on the dataset, hashes remembered.
    pub plan_seconds: f64,
}

/// Writes `count` small JPEGs (16×16, a few hundred bytes each) in CelebA's official
/// layout, all in the training partition: a tree the size of CelebA's file list.
pub fn generate_small_celeba_tree(root: &Path, count: usize) -> std::io::Result<()> {
    super::write_celeba_tree(root, count, |i| {
        let shade = (i % 251) as u8;
        image::RgbImage::from_fn(16, 16, |x, y| {
            image::Rgb([shade, (x * 16) as u8, (y * 16) as u8 ^ (i / 251) as u8])
        })
    })
}

fn seconds(work: impl FnOnce() -> Result<(), DataError>) -> Result<f64, DataError> {
    let started = Instant::now();
    work()?;
    Ok(started.elapsed().as_secs_f64())
}

/// Times the fingerprint of the CelebA tree at `root` with a fresh memo in `cache`, again
/// with the memo, and the plan of a spec that reads it.
pub fn fingerprint_speed(root: &Path, cache: &Path) -> Result<FingerprintBenchResult, DataError> {
    let config = DataConfig {
        source: DataSource::Celeba,
        root: Some(root.to_path_buf()),
        ..DataConfig::default()
    };
    let fingerprint = || crate::data::fingerprint::fingerprint(&config, cache).map(|_| ());
    let first_seconds = seconds(fingerprint)?;
    let memoized_seconds = seconds(fingerprint)?;
    let text = format!(
        "name: fingerprint-bench\ndata:\n  source: celeba\n  root: {}\n",
        root.display()
    );
    let loaded = crate::experiment::spec::parse(Path::new("bench.yaml"), &text)
        .expect("the benchmark spec parses");
    let plan_seconds = seconds(|| {
        crate::experiment::plan::plan(&loaded, &|data| {
            crate::data::fingerprint::fingerprint(data, cache).map_err(|e| e.to_string())
        })
        .map(|_| ())
        .map_err(|e| DataError::Malformed {
            path: root.to_path_buf(),
            line: 0,
            detail: e.to_string(),
        })
    })?;
    let names = crate::data::files::image_files(&root.join("img_align_celeba"))?;
    let bytes = names
        .iter()
        .filter_map(|n| std::fs::metadata(root.join("img_align_celeba").join(n)).ok())
        .map(|m| m.len())
        .sum();
    Ok(FingerprintBenchResult {
        images: names.len(),
        bytes,
        first_seconds,
        memoized_seconds,
        plan_seconds,
    })
}
