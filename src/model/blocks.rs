//! The blocks a stage of the encoder or decoder may end in, behind one seam: the model
//! asks [`build`] for a stage's block and calls [`Block::forward`], so a new design is a
//! type here and a [`BlockDesign`] variant, and training, evaluation and the report need
//! no change. Each design keeps the parameter names of its PyTorch twin in
//! `tests/fixtures/seed_model.py`, so checkpoints load both ways with `strict=True`.
use tch::Tensor;
use tch::nn;

use super::Compute;
use super::norm::{self, NormLayer};
use crate::experiment::config::{BlockDesign, Norm};

/// A block that keeps its input's shape.
pub(super) trait Block: std::fmt::Debug + Send {
    /// The block's output for `x`; `training` selects batch statistics in norm layers.
    fn forward(&self, x: &Tensor, compute: Compute, training: bool) -> Tensor;
}

/// The block `design` asks for over `channels`, its parameters under `path` (its index in
/// the stage's `nn.Sequential`, so the names stay PyTorch's).
pub(super) fn build(
    design: BlockDesign,
    path: &nn::Path,
    channels: i64,
    norm: Norm,
) -> Box<dyn Block> {
    match design {
        BlockDesign::Seed => Box::new(SeedBlock::new(path, channels, norm)),
        BlockDesign::Preact => Box::new(PreactBlock::new(path, channels, norm)),
        BlockDesign::Skipinit => Box::new(SkipInitBlock::new(path, channels, norm)),
    }
}

fn conv3x3(path: nn::Path, channels: i64) -> nn::Conv2D {
    let config = nn::ConvConfig {
        padding: 1,
        ..Default::default()
    };
    nn::conv2d(path, channels, channels, 3, config)
}

/// `conv3x3 → [norm] → ReLU → conv3x3 → [norm]`: the residual branch of the seed's block
/// (which has no norms), in `block`'s `nn.Sequential`.
#[derive(Debug)]
struct PostActivationBranch {
    first: nn::Conv2D,
    first_norm: Option<NormLayer>,
    second: nn::Conv2D,
    second_norm: Option<NormLayer>,
}

impl PostActivationBranch {
    fn new(block: nn::Path, channels: i64, norm: Norm) -> Self {
        // Sequential indices: conv, [norm], ReLU, conv, [norm].
        let second = 2 + usize::from(!norm.is_none());
        Self {
            first: conv3x3(&block / 0, channels),
            first_norm: NormLayer::new(&block / 1, norm, channels),
            second: conv3x3(&block / second, channels),
            second_norm: NormLayer::new(&block / (second + 1), norm, channels),
        }
    }

    fn forward(&self, x: &Tensor, compute: Compute, training: bool) -> Tensor {
        let inner = compute.conv(x, &self.first, 1, 1);
        let inner = norm::apply(&self.first_norm, inner, compute, training).relu_();
        let outer = compute.conv(&inner, &self.second, 1, 1);
        norm::apply(&self.second_norm, outer, compute, training)
    }
}

/// The seed's block: `relu(x + f(x))` with the post-activation branch.
#[derive(Debug)]
struct SeedBlock {
    branch: PostActivationBranch,
}

impl SeedBlock {
    fn new(path: &nn::Path, channels: i64, norm: Norm) -> Self {
        Self {
            branch: PostActivationBranch::new(path / "block", channels, norm),
        }
    }
}

impl Block for SeedBlock {
    fn forward(&self, x: &Tensor, compute: Compute, training: bool) -> Tensor {
        (x + self.branch.forward(x, compute, training)).relu_()
    }
}

/// He et al. (2016)'s pre-activation block: `x + f(x)` with
/// `f = [norm] → ReLU → conv3x3 → [norm] → ReLU → conv3x3`, nothing after the sum.
#[derive(Debug)]
struct PreactBlock {
    first_norm: Option<NormLayer>,
    first: nn::Conv2D,
    second_norm: Option<NormLayer>,
    second: nn::Conv2D,
}

impl PreactBlock {
    fn new(path: &nn::Path, channels: i64, norm: Norm) -> Self {
        let block = path / "block";
        // Sequential indices: [norm], ReLU, conv, [norm], ReLU, conv.
        let has_norm = usize::from(!norm.is_none());
        Self {
            first_norm: NormLayer::new(&block / 0, norm, channels),
            first: conv3x3(&block / (has_norm + 1), channels),
            second_norm: NormLayer::new(&block / (has_norm + 2), norm, channels),
            second: conv3x3(&block / (2 * has_norm + 3), channels),
        }
    }
}

impl Block for PreactBlock {
    fn forward(&self, x: &Tensor, compute: Compute, training: bool) -> Tensor {
        // Not in place: `x` is the skip path.
        let h = norm::apply(&self.first_norm, x.shallow_clone(), compute, training).relu();
        let h = compute.conv(&h, &self.first, 1, 1);
        let h = norm::apply(&self.second_norm, h, compute, training).relu_();
        x + compute.conv(&h, &self.second, 1, 1)
    }
}

/// SkipInit (De & Smith 2020), as ReZero: `x + α·f(x)` with the seed's branch and a
/// learned scalar `alpha` per block that starts at 0, so each block starts as the identity
/// whatever the initialisation of its convolutions.
#[derive(Debug)]
struct SkipInitBlock {
    branch: PostActivationBranch,
    alpha: Tensor,
}

impl SkipInitBlock {
    fn new(path: &nn::Path, channels: i64, norm: Norm) -> Self {
        Self {
            branch: PostActivationBranch::new(path / "block", channels, norm),
            alpha: path.zeros("alpha", &[1]),
        }
    }
}

impl Block for SkipInitBlock {
    fn forward(&self, x: &Tensor, compute: Compute, training: bool) -> Tensor {
        // α cast to the compute kind: a one-element fp32 tensor would promote a bf16
        // activation to fp32.
        let alpha = self.alpha.to_kind(x.kind());
        x + self.branch.forward(x, compute, training) * alpha
    }
}
