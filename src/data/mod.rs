//! Datasets: sources of face images, decoded once into uint8 tensors (N, 3, S, S).
pub mod synthetic;

use rayon::prelude::*;
use tch::{Kind, Tensor};

use crate::config::{DataConfig, DataSource};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(
        "{root}: no CelebA here (expected {root}/img_align_celeba/ and list_eval_partition.txt). Download \"Align&Cropped Images\" and the annotation files from the CelebA site (or the Kaggle copy \"jessicali9530/celeba-dataset\"), unpack them there, or point data.root / $VAELAB_CELEBA_ROOT at your copy"
    )]
    CelebaMissing { root: String },
    #[error(
        "{root}: reading CelebA is not built into this vaelab yet; use data.source: synthetic until it is"
    )]
    CelebaUnsupported { root: String },
    #[error(
        "data: the dataset has no training images (data.train_images = {0}); set it to at least 1"
    )]
    Empty(usize),
}

/// A decoded dataset: uint8 images in [0, 255], attributes in {-1, +1}.
pub struct Dataset {
    pub train: Tensor,
    pub val: Tensor,
    pub train_attributes: Tensor,
    pub val_attributes: Tensor,
    pub attribute_names: Vec<String>,
}

impl Dataset {
    pub fn train_len(&self) -> usize {
        self.train.size()[0] as usize
    }
    pub fn val_len(&self) -> usize {
        self.val.size()[0] as usize
    }
}

fn synthetic_split(
    seed: u64,
    split: synthetic::Split,
    count: usize,
    size: usize,
) -> (Tensor, Tensor) {
    let images: Vec<(Vec<u8>, [i8; synthetic::ATTRIBUTES.len()])> = (0..count)
        .into_par_iter()
        .map(|i| synthetic::generate(seed, split, i, size))
        .collect();
    let pixels: Vec<u8> = images.iter().flat_map(|(p, _)| p.iter().copied()).collect();
    let attrs: Vec<i8> = images.iter().flat_map(|(_, a)| a.iter().copied()).collect();
    let n = count as i64;
    let s = size as i64;
    (
        Tensor::from_slice(&pixels).view([n, 3, s, s]),
        Tensor::from_slice(&attrs).view([n, synthetic::ATTRIBUTES.len() as i64]),
    )
}

pub fn load(config: &DataConfig) -> Result<Dataset, DataError> {
    let train_count = config.effective_train_images();
    if train_count == 0 {
        return Err(DataError::Empty(train_count));
    }
    let size = config.image_size as usize;
    match config.source {
        DataSource::Celeba => {
            let root = celeba_root(config);
            let shown = root.display().to_string();
            if !root.join("img_align_celeba").is_dir() {
                return Err(DataError::CelebaMissing { root: shown });
            }
            Err(DataError::CelebaUnsupported { root: shown })
        }
        DataSource::Synthetic => {
            let (train, train_attributes) = synthetic_split(
                config.dataset_seed,
                synthetic::Split::Train,
                train_count,
                size,
            );
            let (val, val_attributes) = synthetic_split(
                config.dataset_seed,
                synthetic::Split::Validation,
                config.val_images,
                size,
            );
            Ok(Dataset {
                train,
                val,
                train_attributes,
                val_attributes,
                attribute_names: synthetic::ATTRIBUTES
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            })
        }
    }
}

/// Where CelebA is read from: `data.root`, else `$VAELAB_CELEBA_ROOT`, else `data/celeba`.
pub fn celeba_root(config: &DataConfig) -> std::path::PathBuf {
    config
        .root
        .clone()
        .or_else(|| std::env::var_os("VAELAB_CELEBA_ROOT").map(Into::into))
        .unwrap_or_else(|| "data/celeba".into())
}

/// uint8 images → float in [0, 1], the range the sigmoid decoder can reach.
pub fn to_unit_float(images: &Tensor) -> Tensor {
    images.to_kind(Kind::Float) / 255.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::tiny_config;

    #[test]
    fn limit_takes_a_prefix_of_the_training_images() {
        let mut config = tiny_config().data;
        let full = load(&config).unwrap();
        config.limit = Some(5);
        let limited = load(&config).unwrap();
        assert_eq!(limited.train_len(), 5);
        assert_eq!(full.train_len(), 64);
        assert!(limited.train.equal(&full.train.narrow(0, 0, 5)));
        assert!(limited.val.equal(&full.val));
    }

    #[test]
    fn inputs_are_scaled_to_the_unit_interval() {
        let data = load(&tiny_config().data).unwrap();
        let x = to_unit_float(&data.train);
        assert!(x.min().double_value(&[]) >= 0.0);
        assert!(x.max().double_value(&[]) <= 1.0);
        assert!(x.max().double_value(&[]) > 0.5);
    }
}
