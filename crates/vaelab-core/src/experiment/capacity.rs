//! A model's size and cost, counted from its config alone (no tensor is built, so `plan`
//! shows them at once): trainable parameters, as PyTorch's `sum(p.numel())` counts them,
//! and forward FLOPs per image, as `torch.utils.flop_counter` counts them (2 per
//! multiply-add of every convolution and linear layer; norms, activations and biases
//! free). Also the width scaling that `match_parameters` asks for.
use crate::experiment::config::{BlockDesign, ModelConfig, ModelKind, Norm};

/// Kernel sides of the stage convolutions and of the blocks' convolutions.
const STAGE_KERNEL: u64 = 4;
const BLOCK_KERNEL: u64 = 3;

/// What a model costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Capacity {
    pub parameters: u64,
    /// Forward FLOPs for one image through encoder and decoder (posterior mean decoded).
    pub forward_flops: u64,
}

/// Parameters and FLOPs of a convolution over `spatial` positions.
fn conv(c_in: u64, c_out: u64, kernel: u64, spatial: u64) -> Capacity {
    let weights = c_in * c_out * kernel * kernel;
    Capacity {
        parameters: weights + c_out,
        forward_flops: 2 * weights * spatial,
    }
}

fn linear(inputs: u64, outputs: u64) -> Capacity {
    Capacity {
        parameters: inputs * outputs + outputs,
        forward_flops: 2 * inputs * outputs,
    }
}

/// A norm layer's weight and bias (batch norm's running statistics are buffers).
fn norm(norm: Norm, channels: u64) -> Capacity {
    Capacity {
        parameters: if norm.is_none() { 0 } else { 2 * channels },
        forward_flops: 0,
    }
}

impl std::ops::Add for Capacity {
    type Output = Capacity;
    fn add(self, other: Capacity) -> Capacity {
        Capacity {
            parameters: self.parameters + other.parameters,
            forward_flops: self.forward_flops + other.forward_flops,
        }
    }
}

impl std::iter::Sum for Capacity {
    fn sum<I: Iterator<Item = Capacity>>(iter: I) -> Capacity {
        iter.fold(Capacity::default(), |a, b| a + b)
    }
}

/// One residual block of any design: two 3×3 convolutions, a norm before or after each,
/// and SkipInit's α.
fn block(design: BlockDesign, norm_kind: Norm, channels: u64, spatial: u64) -> Capacity {
    let alpha = Capacity {
        parameters: u64::from(design == BlockDesign::Skipinit),
        forward_flops: 0,
    };
    let convolution = conv(channels, channels, BLOCK_KERNEL, spatial);
    let normalisation = norm(norm_kind, channels);
    convolution + normalisation + convolution + normalisation + alpha
}

/// The blocks after one stage of the encoder (`encoder: true`) or decoder.
fn stage_blocks(model: &ModelConfig, encoder: bool, channels: u64, spatial: u64) -> Capacity {
    let placed = if encoder {
        model.blocks_in.encoder()
    } else {
        model.blocks_in.decoder()
    };
    if !model.residual || !placed {
        return Capacity::default();
    }
    (0..model.blocks_per_stage)
        .map(|_| block(model.block, model.norm, channels, spatial))
        .sum()
}

/// Parameters and forward FLOPs per image of `model` on `image_size`² images.
pub fn capacity(model: &ModelConfig, image_size: usize) -> Capacity {
    let mut total = match model.kind {
        ModelKind::Conv => convolutional(model, image_size),
        ModelKind::Mlp => fully_connected(model, image_size),
    };
    if !model.likelihood.is_fixed() {
        total.parameters += 3;
    }
    total
}

/// The MLP: the flattened image through the hidden layers to `fc_mu` and `fc_logvar`, the
/// latents back through them reversed to every pixel.
fn fully_connected(model: &ModelConfig, image_size: usize) -> Capacity {
    let pixels = 3 * (image_size * image_size) as u64;
    let latent = model.latent_dim as u64;
    let hidden: Vec<u64> = model.hidden.iter().map(|&h| h as u64).collect();
    let chain = |from: u64, widths: &mut dyn Iterator<Item = u64>| {
        let mut previous = from;
        let mut total = Capacity::default();
        for width in widths {
            total = total + linear(previous, width);
            previous = width;
        }
        (total, previous)
    };
    let (encoder, last) = chain(pixels, &mut hidden.iter().copied());
    let (decoder, first) = chain(latent, &mut hidden.iter().rev().copied());
    encoder + linear(last, latent) + linear(last, latent) + decoder + linear(first, pixels)
}

/// The seed's convolutional network.
fn convolutional(model: &ModelConfig, image_size: usize) -> Capacity {
    let widths: Vec<u64> = model.channels.iter().map(|&c| c as u64).collect();
    let side = |stage: usize| (image_size as u64) >> (stage + 1);
    let area = |stage: usize| side(stage) * side(stage);
    let latent = model.latent_dim as u64;
    let mut total = Capacity::default();
    let mut c_in = 3;
    for (i, &c) in widths.iter().enumerate() {
        total = total
            + conv(c_in, c, STAGE_KERNEL, area(i))
            + norm(model.norm, c)
            + stage_blocks(model, true, c, area(i));
        c_in = c;
    }
    let depth = widths.len();
    let flat = c_in * area(depth - 1);
    total = total + linear(flat, latent) + linear(flat, latent) + linear(latent, flat);
    // Decoder stages: from the stage `i + 1` grid up to the stage `i` grid. PyTorch counts
    // a transposed convolution over its input's positions.
    for i in (0..depth - 1).rev() {
        let (c_from, c_to) = (widths[i + 1], widths[i]);
        total = total
            + conv(c_from, c_to, STAGE_KERNEL, area(i + 1))
            + norm(model.norm, c_to)
            + stage_blocks(model, false, c_to, area(i));
    }
    total + conv(widths[0], 3, STAGE_KERNEL, area(0))
}

/// Widths are rounded to multiples of this when scaled.
pub const WIDTH_STEP: usize = 8;

/// The widths of `model` scaled by one multiplier (each rounded to a multiple of
/// [`WIDTH_STEP`], at least one step) to the smallest parameter count at or above
/// `target`; `None` when no multiplier up to 16 reaches it.
pub fn widths_matching(model: &ModelConfig, image_size: usize, target: u64) -> Option<Vec<usize>> {
    let scaled = |multiplier: f64| -> Vec<usize> {
        model
            .channels
            .iter()
            .map(|&c| {
                let steps = (c as f64 * multiplier / WIDTH_STEP as f64).round() as usize;
                steps.max(1) * WIDTH_STEP
            })
            .collect()
    };
    let parameters = |widths: &[usize]| {
        let candidate = ModelConfig {
            channels: widths.to_vec(),
            ..model.clone()
        };
        capacity(&candidate, image_size).parameters
    };
    // Every multiplier from 1/16 to 16 in steps of 1/256: widths change in steps of 8, so
    // this visits every width set a multiplier can give at the quickstart's widths.
    (16..=4096)
        .map(|k| scaled(k as f64 / 256.0))
        .map(|widths| (parameters(&widths), widths))
        .filter(|(count, _)| *count >= target)
        .min_by_key(|(count, _)| *count)
        .map(|(_, widths)| widths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::config::{BlocksIn, Likelihood};

    fn model(residual: bool) -> ModelConfig {
        ModelConfig {
            residual,
            latent_dim: 16,
            channels: vec![8, 16],
            ..Default::default()
        }
    }

    #[test]
    fn the_plain_model_is_counted_layer_by_layer() {
        // 16×16 images, widths [8, 16], latent 16: by hand.
        let convs = (3 * 8 * 16 + 8) + (8 * 16 * 16 + 16) + (16 * 8 * 16 + 8) + (8 * 3 * 16 + 3);
        let flat = 16 * 4 * 4;
        let linears = 2 * (flat * 16 + 16) + (16 * flat + flat);
        let flops = 2 * (3 * 8 * 16 * 64 + 8 * 16 * 16 * 16 + 16 * 8 * 16 * 16 + 8 * 3 * 16 * 64)
            + 2 * 3 * flat * 16;
        assert_eq!(
            capacity(&model(false), 16),
            Capacity {
                parameters: (convs + linears) as u64,
                forward_flops: flops as u64,
            }
        );
    }

    #[test]
    fn blocks_norms_and_sigma_add_what_they_hold() {
        let plain = capacity(&model(false), 16);
        let one_block = |c: u64| 2 * (c * c * 9 + c);
        let residual = capacity(&model(true), 16);
        assert_eq!(
            residual.parameters - plain.parameters,
            one_block(8) + one_block(16) + one_block(8)
        );
        let mut skipinit = model(true);
        skipinit.block = BlockDesign::Skipinit;
        skipinit.blocks_per_stage = 2;
        skipinit.blocks_in = BlocksIn::Decoder;
        skipinit.norm = Norm::Group;
        skipinit.likelihood = Likelihood::Learned;
        let counted = capacity(&skipinit, 16).parameters;
        let decoder_blocks = 2 * (one_block(8) + 2 * 8 + 2 * 8 + 1);
        let norms = 2 * (8 + 16) + 2 * 8;
        assert_eq!(counted - plain.parameters, decoder_blocks + norms + 3);
    }

    #[test]
    fn matched_widths_reach_the_target_with_the_fewest_parameters() {
        let residual = ModelConfig {
            channels: vec![32, 64, 128, 256],
            latent_dim: 64,
            ..Default::default()
        };
        let target = capacity(&residual, 64).parameters;
        let plain = ModelConfig {
            residual: false,
            ..residual.clone()
        };
        let widths = widths_matching(&plain, 64, target).unwrap();
        assert!(widths.iter().all(|w| w % WIDTH_STEP == 0), "{widths:?}");
        let reached = capacity(
            &ModelConfig {
                channels: widths.clone(),
                ..plain.clone()
            },
            64,
        )
        .parameters;
        assert!(reached >= target, "{reached} < {target}");
        assert!(
            (reached as f64) < 1.05 * target as f64,
            "{reached} is more than 5% above {target} ({widths:?})"
        );
        assert_eq!(widths_matching(&plain, 64, u64::MAX), None);
    }
}
