//! `vaelab bench --data-dir`: a CelebA tree's decode rate and an epoch on its cache against
//! the same epoch in memory; the generated trees the disk tests read.
use std::time::Instant;

use serde::Serialize;
use tch::Tensor;

use super::{BenchConfig, bench_model, train_step};
use crate::train::step;

/// Writes `count` synthetic faces as 178×218 JPEGs in CelebA's official layout (all in the
/// training partition), for benchmarks and tests of the disk pipeline.
pub fn generate_celeba_tree(root: &std::path::Path, count: usize) -> std::io::Result<()> {
    write_celeba_tree(root, count, |i| {
        let (chw, _) =
            crate::data::synthetic::generate(7, crate::data::synthetic::Split::Train, i, 218);
        let plane = 218 * 218;
        image::RgbImage::from_fn(178, 218, |x, y| {
            let at = (y * 218 + x + 20) as usize;
            image::Rgb([chw[at], chw[plane + at], chw[2 * plane + at]])
        })
    })
}

/// Writes `image(i)` for i in 0..count as `img_align_celeba/NNNNNN.jpg`, in parallel, and a
/// `list_eval_partition.txt` that puts them all in the training partition.
pub fn write_celeba_tree(
    root: &std::path::Path,
    count: usize,
    image: impl Fn(usize) -> image::RgbImage + Sync,
) -> std::io::Result<()> {
    use rayon::prelude::*;
    let images = root.join("img_align_celeba");
    std::fs::create_dir_all(&images)?;
    (0..count).into_par_iter().try_for_each(|i| {
        image(i)
            .save(images.join(format!("{:06}.jpg", i + 1)))
            .map_err(std::io::Error::other)
    })?;
    let partition: String = (0..count)
        .map(|i| format!("{:06}.jpg 0\n", i + 1))
        .collect();
    std::fs::write(root.join("list_eval_partition.txt"), partition)
}

#[derive(Debug, Clone, Serialize)]
pub struct DataBenchResult {
    pub images: usize,
    pub decode_seconds: f64,
    pub decode_images_per_second: f64,
    pub epoch_seconds_cached: f64,
    pub epoch_seconds_in_memory: f64,
    pub cached_overhead_percent: f64,
}

/// One timed epoch, and the untimed warm-up of its last, smaller batch.
pub(super) struct EpochTiming {
    pub seconds: f64,
    /// When the images are not a multiple of the batch: the seconds the first step at the
    /// last batch's shape took, before the timed epoch (on CUDA, cuDNN's benchmark mode
    /// times its algorithms for each new shape once, which would otherwise land inside
    /// the epoch).
    pub last_batch_warmup_seconds: Option<f64>,
}

/// Seconds for one epoch over `images` (uint8, NCHW) after `config.warmup` untimed steps
/// at each batch shape the epoch has, ending with a host read of the last loss so that
/// device work is inside the timing.
pub(super) fn epoch_seconds(images: &Tensor, config: &BenchConfig) -> EpochTiming {
    let device = config.device;
    let (_vs, vae, mut optimizer) = bench_model(config);
    let n = images.size()[0];
    let order =
        Tensor::from_slice(&crate::rng::epoch_permutation(0, 1, n as usize)).to_device(device);
    let images = images.to_device(device);
    let batch =
        |start: i64| step::gather_batch(&images, &order, start, config.batch_size.min(n - start));
    for _ in 0..config.warmup {
        train_step(&vae, &mut optimizer, &batch(0)).double_value(&[]);
    }
    let last_start = (n - 1).max(0) / config.batch_size * config.batch_size;
    let last_batch_warmup_seconds =
        (n > config.batch_size && n % config.batch_size != 0).then(|| {
            let started = Instant::now();
            train_step(&vae, &mut optimizer, &batch(last_start)).double_value(&[]);
            started.elapsed().as_secs_f64()
        });
    let started = Instant::now();
    let mut last = None;
    for start in (0..n).step_by(config.batch_size as usize) {
        last = Some(train_step(&vae, &mut optimizer, &batch(start)));
    }
    if let Some(loss) = last {
        loss.double_value(&[]);
    }
    EpochTiming {
        seconds: started.elapsed().as_secs_f64(),
        last_batch_warmup_seconds,
    }
}

/// Decode rate of a CelebA tree, then one training epoch on the tensor its cache loads
/// into against the same epoch on a fresh copy of it.
pub fn data_speed(
    root: &std::path::Path,
    config: &BenchConfig,
    crop: Option<u32>,
    reporter: &dyn crate::progress::Reporter,
) -> Result<DataBenchResult, crate::data::DataError> {
    use rayon::prelude::*;
    let (_, list) = crate::data::files::celeba_files(root, 0)?;
    let filter = crate::experiment::config::ResizeFilter::Triangle;
    let started = Instant::now();
    let decoded = list
        .files
        .par_iter()
        .filter(|f| {
            crate::data::disk::preprocess(
                &list.root.join(f),
                config.image_size as u32,
                crop,
                filter,
            )
            .is_ok()
        })
        .count();
    let decode_seconds = started.elapsed().as_secs_f64();
    let decode_rate = decoded as f64 / decode_seconds;
    let data_config = crate::experiment::config::DataConfig {
        source: crate::experiment::config::DataSource::Celeba,
        image_size: config.image_size as u32,
        dataset_seed: 0,
        train_images: list.files.len(),
        val_images: 0,
        limit: None,
        root: Some(root.to_path_buf()),
        fingerprint: None,
        crop,
        resize_filter: Some(filter),
        val_ratio: None,
        split: None,
        hflip: false,
    };
    let cache = crate::data::files::cache_dir();
    let cached =
        crate::data::disk::decode_cached(&cache, &list, &data_config, "training", reporter)?.images;
    let in_memory = cached.copy();
    // Warm both once (page cache, allocator), then time.
    let cached_seconds = epoch_seconds(&cached, config).seconds;
    let memory_seconds = epoch_seconds(&in_memory, config).seconds;
    Ok(DataBenchResult {
        images: decoded,
        decode_seconds,
        decode_images_per_second: decode_rate,
        epoch_seconds_cached: cached_seconds,
        epoch_seconds_in_memory: memory_seconds,
        cached_overhead_percent: 100.0 * (cached_seconds / memory_seconds - 1.0),
    })
}
