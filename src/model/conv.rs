//! The seed's convolutional network: strided convolutions (k=4, s=2, p=1) [+ norm] + ReLU
//! (+ residual blocks) per width, then `fc_mu` / `fc_logvar`; the decoder mirrors it and
//! ends in a sigmoid. Parameter names follow the seed's PyTorch `state_dict`.
use tch::nn;
use tch::{Device, Kind, Tensor};

use super::blocks::{self, Block};
use super::norm::{self, NormLayer};
use super::{BlockDesign, Compute, Posterior};
use crate::experiment::config::{Likelihood, ModelConfig, Norm};

const DOWN_STRIDE: i64 = 2;
const DOWN_PADDING: i64 = 1;
pub(super) const UP_STRIDE: i64 = 2;
pub(super) const UP_PADDING: i64 = 1;

/// What the model is built from: the stage widths, which block ends each stage of the
/// encoder and of the decoder (none: the plain model) and how many, the norm after every
/// convolution, the latent size and the decoder's likelihood. [`ConvNetwork::new`] reads
/// nothing else.
#[derive(Debug, Clone, PartialEq)]
pub struct Architecture {
    pub widths: Vec<i64>,
    pub encoder_block: Option<BlockDesign>,
    pub decoder_block: Option<BlockDesign>,
    pub blocks_per_stage: usize,
    pub norm: Norm,
    pub latent_dim: i64,
    pub likelihood: Likelihood,
}

impl Architecture {
    /// The architecture a run's model config describes.
    pub fn of(config: &ModelConfig) -> Self {
        let block = config.residual.then_some(config.block);
        Self {
            widths: config.channels.iter().map(|&c| c as i64).collect(),
            encoder_block: block.filter(|_| config.blocks_in.encoder()),
            decoder_block: block.filter(|_| config.blocks_in.decoder()),
            blocks_per_stage: config.blocks_per_stage as usize,
            norm: config.norm,
            latent_dim: config.latent_dim as i64,
            likelihood: config.likelihood,
        }
    }
}

#[derive(Debug)]
struct DownStage {
    conv: nn::Conv2D,
    norm: Option<NormLayer>,
    blocks: Vec<Box<dyn Block>>,
}

#[derive(Debug)]
struct UpStage {
    deconv: nn::ConvTranspose2D,
    norm: Option<NormLayer>,
    blocks: Vec<Box<dyn Block>>,
}

/// Where the layers of one stage sit in the seed's `nn.Sequential`: the (transposed)
/// convolution, then its norm, the ReLU and the blocks.
#[derive(Debug, Clone, Copy)]
struct StageLayout {
    has_norm: usize,
    blocks: usize,
    len: usize,
}

impl StageLayout {
    fn of(norm: Norm, block: Option<BlockDesign>, per_stage: usize) -> Self {
        let has_norm = usize::from(!norm.is_none());
        let blocks = if block.is_some() { per_stage } else { 0 };
        Self {
            has_norm,
            blocks,
            len: 2 + has_norm + blocks,
        }
    }

    fn norm(self, stage: usize) -> usize {
        stage * self.len + 1
    }

    /// The indices of the stage's blocks, in order.
    fn blocks(self, stage: usize) -> std::ops::Range<usize> {
        let first = stage * self.len + 2 + self.has_norm;
        first..first + self.blocks
    }
}

/// The convolutional encoder and decoder.
#[derive(Debug)]
pub(super) struct ConvNetwork {
    down: Vec<DownStage>,
    fc_mu: nn::Linear,
    fc_logvar: nn::Linear,
    decoder_fc: nn::Linear,
    up: Vec<UpStage>,
    to_rgb: nn::ConvTranspose2D,
    bottleneck_channels: i64,
    bottleneck_size: i64,
}

impl ConvNetwork {
    /// Builds `arch` under `root`, which must be a VarStore's root path.
    pub(super) fn new(root: &nn::Path, arch: &Architecture, image_size: i64) -> Self {
        let channels = &arch.widths;
        let down_layout = StageLayout::of(arch.norm, arch.encoder_block, arch.blocks_per_stage);
        let up_layout = StageLayout::of(arch.norm, arch.decoder_block, arch.blocks_per_stage);
        let down_config = nn::ConvConfig {
            stride: DOWN_STRIDE,
            padding: DOWN_PADDING,
            ..Default::default()
        };
        let up_config = nn::ConvTransposeConfig {
            stride: UP_STRIDE,
            padding: UP_PADDING,
            ..Default::default()
        };
        let stage_blocks = |design: Option<BlockDesign>,
                            path: &nn::Path,
                            indices: std::ops::Range<usize>,
                            width: i64| {
            design.map_or_else(Vec::new, |design| {
                indices
                    .map(|i| blocks::build(design, &(path / i), width, arch.norm))
                    .collect()
            })
        };

        let encoder = root / "encoder";
        let down_path = &encoder / "down";
        let mut down = Vec::with_capacity(channels.len());
        let mut in_channels = 3;
        for (i, &out) in channels.iter().enumerate() {
            down.push(DownStage {
                conv: nn::conv2d(
                    &down_path / (i * down_layout.len),
                    in_channels,
                    out,
                    4,
                    down_config,
                ),
                norm: NormLayer::new(&down_path / down_layout.norm(i), arch.norm, out),
                blocks: stage_blocks(arch.encoder_block, &down_path, down_layout.blocks(i), out),
            });
            in_channels = out;
        }
        let bottleneck_channels = *channels.last().expect("validated: channels is non-empty");
        let bottleneck_size = image_size >> channels.len();
        let flat = bottleneck_channels * bottleneck_size * bottleneck_size;
        let latent = arch.latent_dim;
        let fc_mu = nn::linear(&encoder / "fc_mu", flat, latent, Default::default());
        let fc_logvar = nn::linear(&encoder / "fc_logvar", flat, latent, Default::default());

        let decoder = root / "decoder";
        let decoder_fc = nn::linear(&decoder / "fc", latent, flat, Default::default());
        let up_path = &decoder / "up";
        let mut up = Vec::with_capacity(channels.len() - 1);
        for (i, pair) in channels.windows(2).rev().enumerate() {
            let (out, inp) = (pair[0], pair[1]);
            up.push(UpStage {
                deconv: nn::conv_transpose2d(
                    &up_path / (i * up_layout.len),
                    inp,
                    out,
                    4,
                    up_config,
                ),
                norm: NormLayer::new(&up_path / up_layout.norm(i), arch.norm, out),
                blocks: stage_blocks(arch.decoder_block, &up_path, up_layout.blocks(i), out),
            });
        }
        let last = (channels.len() - 1) * up_layout.len;
        let to_rgb = nn::conv_transpose2d(&up_path / last, channels[0], 3, 4, up_config);
        Self {
            down,
            fc_mu,
            fc_logvar,
            decoder_fc,
            up,
            to_rgb,
            bottleneck_channels,
            bottleneck_size,
        }
    }

    /// The posterior q(z|x) of images in [0, 1].
    pub(super) fn encode(&self, x: &Tensor, compute: Compute, training: bool) -> Posterior {
        let mut h = compute.cast(x);
        for stage in &self.down {
            h = compute.conv(&h, &stage.conv, DOWN_STRIDE, DOWN_PADDING);
            h = norm::apply(&stage.norm, h, compute, training).relu_();
            for block in &stage.blocks {
                h = block.forward(&h, compute, training);
            }
        }
        let h = h.flatten(1, -1);
        let mu = compute.linear(&h, &self.fc_mu);
        let logvar = compute.linear(&h, &self.fc_logvar);
        Posterior {
            mu: mu.to_kind(Kind::Float),
            logvar: logvar.to_kind(Kind::Float),
        }
    }

    pub(super) fn decode(&self, z: &Tensor, compute: Compute, training: bool) -> Tensor {
        let z = compute.cast(z);
        let mut h = compute.linear(&z, &self.decoder_fc).view([
            -1,
            self.bottleneck_channels,
            self.bottleneck_size,
            self.bottleneck_size,
        ]);
        if compute.channels_last {
            h = compute.cast(&h);
        }
        for stage in &self.up {
            h = compute.conv_transpose(&h, &stage.deconv);
            h = norm::apply(&stage.norm, h, compute, training).relu_();
            for block in &stage.blocks {
                h = block.forward(&h, compute, training);
            }
        }
        // The sigmoid and the loss after it run in fp32, as autocast would have them.
        compute
            .conv_transpose(&h, &self.to_rgb)
            .to_kind(Kind::Float)
            .sigmoid()
    }

    /// Where its weights are.
    pub(super) fn device(&self) -> Device {
        self.fc_mu.ws.device()
    }
}
