//! The blocks a stage of the encoder or decoder may end in, behind one seam: the model
//! asks [`build`] for a stage's block and calls [`Block::forward`], so a new design is a
//! type here and a [`BlockDesign`] variant, and training, evaluation and the report need
//! no change. Today's one design is the seed's residual block.
use tch::Tensor;
use tch::nn;

use super::Compute;
use super::norm::{self, NormLayer};
use crate::experiment::config::Norm;

/// Which block a stage ends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockDesign {
    /// The seed's post-activation residual block: `relu(x + f(x))`.
    Seed,
}

/// A block that keeps its input's shape.
pub(super) trait Block: std::fmt::Debug + Send {
    /// The block's output for `x`; `training` selects batch statistics in norm layers.
    fn forward(&self, x: &Tensor, compute: Compute, training: bool) -> Tensor;
}

/// The block `design` asks for over `channels`, its parameters under `path` (the stage's
/// index in the seed's `nn.Sequential`, so the names stay PyTorch's).
pub(super) fn build(
    design: BlockDesign,
    path: &nn::Path,
    channels: i64,
    norm: Norm,
) -> Box<dyn Block> {
    match design {
        BlockDesign::Seed => Box::new(SeedBlock::new(path, channels, norm)),
    }
}

/// `conv3x3 → [norm] → ReLU → conv3x3 → [norm]`, output `relu(x + block(x))`, as in the
/// seed (which has no norms).
#[derive(Debug)]
struct SeedBlock {
    first: nn::Conv2D,
    first_norm: Option<NormLayer>,
    second: nn::Conv2D,
    second_norm: Option<NormLayer>,
}

impl SeedBlock {
    fn new(path: &nn::Path, channels: i64, norm: Norm) -> Self {
        let conv = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        let block = path / "block";
        // Sequential indices: conv, [norm], ReLU, conv, [norm].
        let has_norm = usize::from(!norm.is_none());
        let second = 2 + has_norm;
        Self {
            first: nn::conv2d(&block / 0, channels, channels, 3, conv),
            first_norm: NormLayer::new(&block / 1, norm, channels),
            second: nn::conv2d(&block / second, channels, channels, 3, conv),
            second_norm: NormLayer::new(&block / (second + 1), norm, channels),
        }
    }
}

impl Block for SeedBlock {
    fn forward(&self, x: &Tensor, compute: Compute, training: bool) -> Tensor {
        let inner = compute.conv(x, &self.first, 1, 1);
        let inner = norm::apply(&self.first_norm, inner, compute, training).relu_();
        let outer = compute.conv(&inner, &self.second, 1, 1);
        (x + norm::apply(&self.second_norm, outer, compute, training)).relu_()
    }
}
