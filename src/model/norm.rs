//! Normalisation layers after convolutions (`model.norm`): batch norm, whose running
//! statistics live in the VarStore (saved, resumed and loaded with the weights, as PyTorch's
//! `state_dict` holds them), or group norm.
use tch::nn::{self, Module, ModuleT};
use tch::{Kind, Tensor};

use super::Compute;
use crate::experiment::config::Norm;

/// Groups of a group norm over `channels`: the largest divisor that is at most 32.
pub(super) fn groups(channels: i64) -> i64 {
    (1..=channels.min(32))
        .rev()
        .find(|g| channels % g == 0)
        .unwrap_or(1)
}

#[derive(Debug)]
pub(super) enum NormLayer {
    Batch {
        layer: nn::BatchNorm,
        /// PyTorch's `num_batches_tracked`, counted alike so the state dicts agree.
        batches_tracked: Tensor,
    },
    Group(nn::GroupNorm),
}

impl NormLayer {
    /// The layer `norm` asks for under `path`, or none.
    pub(super) fn new(path: nn::Path, norm: Norm, channels: i64) -> Option<Self> {
        match norm {
            Norm::None => None,
            Norm::Batch => {
                // PyTorch's initialisation: weight 1, bias 0 (tch draws the weight).
                let config = nn::BatchNormConfig {
                    ws_init: nn::Init::Const(1.0),
                    ..Default::default()
                };
                let layer = nn::batch_norm2d(&path, channels, config);
                let batches_tracked = path.add(
                    "num_batches_tracked",
                    Tensor::zeros([], (Kind::Int64, path.device())),
                    false,
                );
                Some(Self::Batch {
                    layer,
                    batches_tracked,
                })
            }
            Norm::Group => Some(Self::Group(nn::group_norm(
                &path,
                groups(channels),
                channels,
                Default::default(),
            ))),
        }
    }

    /// Normalises in fp32 (as autocast does), returning the compute kind and layout; batch
    /// norm uses batch statistics and updates its running ones only when `training`.
    pub(super) fn forward(&self, x: &Tensor, compute: Compute, training: bool) -> Tensor {
        let x = x.to_kind(Kind::Float);
        let y = match self {
            Self::Batch {
                layer,
                batches_tracked,
            } => {
                if training {
                    let mut count = batches_tracked.shallow_clone();
                    tch::no_grad(|| count += 1);
                }
                layer.forward_t(&x, training)
            }
            Self::Group(layer) => layer.forward(&x),
        };
        compute.cast(&y)
    }
}

/// Applies `norm` when there is one.
pub(super) fn apply(
    norm: &Option<NormLayer>,
    x: Tensor,
    compute: Compute,
    training: bool,
) -> Tensor {
    match norm {
        Some(layer) => layer.forward(&x, compute, training),
        None => x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_the_largest_divisor_up_to_32() {
        let cases = [
            (3, 3),
            (8, 8),
            (32, 32),
            (48, 24),
            (64, 32),
            (512, 32),
            (36, 18),
        ];
        for (channels, expected) in cases {
            assert_eq!(groups(channels), expected, "{channels} channels");
        }
    }
}
