//! Datasets: sources of face images, decoded once into uint8 tensors (N, 3, S, S).
pub mod disk;
pub mod png;
pub mod synthetic;

use rayon::prelude::*;
use tch::{Kind, Tensor};

use crate::experiment::attributes::SYNTHETIC_ATTRIBUTES;
use crate::experiment::config::{DataConfig, DataSource, EvalSplit};
use crate::progress::Reporter;
pub use vaelab_core::data::{DataError, celeba_root, files, fingerprint, folder_root, root_of};

/// A decoded dataset: uint8 images in [0, 255], attributes in {-1, +1}.
pub struct Dataset {
    pub train: Tensor,
    /// What per-epoch validation and `train.select: best` see: always the validation
    /// images, whatever `data.split` says, so test images never choose anything.
    pub val: Tensor,
    /// What the end-of-run evaluation measures: the validation images, or the test
    /// images under `data.split: test`.
    pub eval: Tensor,
    /// Attributes of the evaluation images, one column per name.
    pub eval_attributes: Tensor,
    pub attribute_names: Vec<String>,
}

impl Dataset {
    pub fn train_len(&self) -> usize {
        self.train.size()[0] as usize
    }
}

fn synthetic_split(
    seed: u64,
    split: synthetic::Split,
    count: usize,
    size: usize,
) -> (Tensor, Tensor) {
    let images: Vec<(Vec<u8>, [i8; SYNTHETIC_ATTRIBUTES.len()])> = (0..count)
        .into_par_iter()
        .map(|i| synthetic::generate(seed, split, i, size))
        .collect();
    let pixels: Vec<u8> = images.iter().flat_map(|(p, _)| p.iter().copied()).collect();
    let attrs: Vec<i8> = images.iter().flat_map(|(_, a)| a.iter().copied()).collect();
    let n = count as i64;
    let s = size as i64;
    (
        Tensor::from_slice(&pixels).view([n, 3, s, s]),
        Tensor::from_slice(&attrs).view([n, SYNTHETIC_ATTRIBUTES.len() as i64]),
    )
}

fn evaluates_test(config: &DataConfig) -> bool {
    config.split == Some(EvalSplit::Test)
}

pub fn load(config: &DataConfig, reporter: &dyn Reporter) -> Result<Dataset, DataError> {
    let train_count = config.effective_train_images();
    if train_count == 0 {
        return Err(DataError::Empty(train_count));
    }
    let size = config.image_size as usize;
    match config.source {
        DataSource::Celeba => {
            let root = celeba_root(config);
            let (_, mut train) = files::celeba_files(&root, files::TRAIN_PARTITION)?;
            let (_, val) = files::celeba_files(&root, files::VALIDATION_PARTITION)?;
            if let Some(limit) = config.limit {
                train.files.truncate(limit);
                train.attributes.truncate(limit);
            }
            let test = evaluates_test(config)
                .then(|| files::celeba_files(&root, files::TEST_PARTITION))
                .transpose()?
                .map(|(_, list)| list);
            from_lists(&train, &val, test.as_ref(), config, reporter)
        }
        DataSource::Folder => {
            if evaluates_test(config) {
                return Err(DataError::NoTestSplit);
            }
            let root = folder_root(config);
            let ratio = config
                .val_ratio
                .unwrap_or(DataConfig::DEFAULT_FOLDER_VAL_RATIO);
            let mut train = files::folder_files(&root, ratio, false)?;
            let val = files::folder_files(&root, ratio, true)?;
            if let Some(limit) = config.limit {
                train.files.truncate(limit);
                train.attributes.truncate(limit);
            }
            from_lists(&train, &val, None, config, reporter)
        }
        DataSource::Synthetic => {
            let generate = |split, count| synthetic_split(config.dataset_seed, split, count, size);
            let (train, _) = generate(synthetic::Split::Train, train_count);
            let (val, val_attributes) = generate(synthetic::Split::Validation, config.val_images);
            let (eval, eval_attributes) = if evaluates_test(config) {
                generate(synthetic::Split::Test, config.val_images)
            } else {
                (val.shallow_clone(), val_attributes)
            };
            Ok(Dataset {
                train,
                val,
                eval,
                eval_attributes,
                attribute_names: SYNTHETIC_ATTRIBUTES.iter().map(|s| s.to_string()).collect(),
            })
        }
    }
}

fn from_lists(
    train: &files::FileList,
    val: &files::FileList,
    test: Option<&files::FileList>,
    config: &DataConfig,
    reporter: &dyn Reporter,
) -> Result<Dataset, DataError> {
    let cache = files::cache_dir();
    let train = disk::decode_cached(&cache, train, config, "training", reporter)?;
    let val = disk::decode_cached(&cache, val, config, "validation", reporter)?;
    let (eval, eval_attributes) = match test {
        Some(test) => {
            let test = disk::decode_cached(&cache, test, config, "test", reporter)?;
            (test.images, test.attributes)
        }
        None => (val.images.shallow_clone(), val.attributes),
    };
    Ok(Dataset {
        train: train.images,
        val: val.images,
        eval,
        eval_attributes,
        attribute_names: train.attribute_names,
    })
}

/// Flips each image of a batch left-right with probability 1/2, a function of
/// (seed, epoch, step) so resumed runs flip exactly the same images.
/// Which of the `n` images of training step `step` are flipped: a function of (seed,
/// epoch, step) only.
pub fn flip_mask(seed: u64, epoch: u64, step: u64, n: usize) -> Vec<bool> {
    let mut rng = crate::rng::SplitMix::new(crate::rng::derive_seed(
        seed,
        crate::rng::Stream::Flip,
        &[epoch, step],
    ));
    (0..n).map(|_| rng.chance(0.5)).collect()
}

/// Flips the images of `batch` (N, C, H, W) left to right where `mask` (N, bool, on the
/// batch's device) is true.
pub fn apply_flips(batch: &Tensor, mask: &Tensor) -> Tensor {
    let n = batch.size()[0];
    batch.flip([3]).where_self(&mask.view([n, 1, 1, 1]), batch)
}

/// uint8 images → float in [0, 1], the range the sigmoid decoder can reach.
pub fn to_unit_float(images: &Tensor) -> Tensor {
    images.to_kind(Kind::Float) / 255.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::config::tiny_config;

    #[test]
    fn limit_takes_a_prefix_of_the_training_images() {
        let mut config = tiny_config().data;
        let full = load(&config, &crate::progress::Silent).unwrap();
        config.limit = Some(5);
        let limited = load(&config, &crate::progress::Silent).unwrap();
        assert_eq!(limited.train_len(), 5);
        assert_eq!(full.train_len(), 64);
        assert!(limited.train.equal(&full.train.narrow(0, 0, 5)));
        assert!(limited.val.equal(&full.val));
    }

    /// The flips of a step are a function of (seed, epoch, step) alone: the same
    /// coordinates give the same mask, any other coordinate another, about half flipped.
    #[test]
    fn flips_are_a_function_of_seed_epoch_and_step() {
        let mask = flip_mask(7, 2, 5, 256);
        assert_eq!(mask, flip_mask(7, 2, 5, 256));
        for other in [
            flip_mask(8, 2, 5, 256),
            flip_mask(7, 3, 5, 256),
            flip_mask(7, 2, 6, 256),
        ] {
            assert_ne!(mask, other);
        }
        let flipped = mask.iter().filter(|&&f| f).count();
        assert!((96..=160).contains(&flipped), "{flipped} of 256 flipped");
        let image = Tensor::arange(12, (Kind::Float, tch::Device::Cpu)).view([1, 1, 3, 4]);
        let batch = Tensor::cat(&[&image, &image], 0);
        let flipped = apply_flips(&batch, &Tensor::from_slice(&[true, false]));
        assert!(flipped.get(0).equal(&image.get(0).flip([2])));
        assert!(flipped.get(1).equal(&image.get(0)));
    }

    #[test]
    fn inputs_are_scaled_to_the_unit_interval() {
        let data = load(&tiny_config().data, &crate::progress::Silent).unwrap();
        let x = to_unit_float(&data.train);
        assert!(x.min().double_value(&[]) >= 0.0);
        assert!(x.max().double_value(&[]) <= 1.0);
        assert!(x.max().double_value(&[]) > 0.5);
    }
}
