//! Kingma & Welling's fully connected VAE (*Auto-Encoding Variational Bayes*, 2013,
//! appendix C.2, the paper the seed cites): the image flattened, `tanh` hidden layers of
//! `model.hidden` widths, `fc_mu` / `fc_logvar`; the decoder takes the widths in reverse
//! and ends in a sigmoid over every pixel, so it shares the seed's likelihoods.
//!
//! Parameter names: `encoder.hidden.{i}`, `encoder.fc_mu`, `encoder.fc_logvar`,
//! `decoder.hidden.{i}`, `decoder.out` (`tests/fixtures/seed_model.py`'s `MlpVAE`).
use tch::nn;
use tch::{Device, Kind, Tensor};

use super::{Compute, Posterior};
use crate::experiment::config::ModelConfig;

/// The fully connected encoder and decoder.
#[derive(Debug)]
pub(super) struct MlpNetwork {
    encoder: Vec<nn::Linear>,
    fc_mu: nn::Linear,
    fc_logvar: nn::Linear,
    decoder: Vec<nn::Linear>,
    out: nn::Linear,
    image_size: i64,
}

impl MlpNetwork {
    pub(super) fn new(root: &nn::Path, config: &ModelConfig, image_size: i64) -> Self {
        let pixels = 3 * image_size * image_size;
        let hidden: Vec<i64> = config.hidden.iter().map(|&h| h as i64).collect();
        let latent = config.latent_dim as i64;
        let layers = |path: &nn::Path, widths: &[i64], first: i64| {
            let mut previous = first;
            widths
                .iter()
                .enumerate()
                .map(|(i, &width)| {
                    let layer = nn::linear(path / i, previous, width, Default::default());
                    previous = width;
                    layer
                })
                .collect::<Vec<_>>()
        };
        let encoder_path = root / "encoder";
        let encoder = layers(&(&encoder_path / "hidden"), &hidden, pixels);
        let last = *hidden.last().unwrap_or(&pixels);
        let fc_mu = nn::linear(&encoder_path / "fc_mu", last, latent, Default::default());
        let fc_logvar = nn::linear(
            &encoder_path / "fc_logvar",
            last,
            latent,
            Default::default(),
        );
        let decoder_path = root / "decoder";
        let reversed: Vec<i64> = hidden.iter().rev().copied().collect();
        let decoder = layers(&(&decoder_path / "hidden"), &reversed, latent);
        let first = *hidden.first().unwrap_or(&latent);
        let out = nn::linear(&decoder_path / "out", first, pixels, Default::default());
        Self {
            encoder,
            fc_mu,
            fc_logvar,
            decoder,
            out,
            image_size,
        }
    }

    pub(super) fn encode(&self, x: &Tensor, compute: Compute) -> Posterior {
        let mut h = compute.cast(x).flatten(1, -1);
        for layer in &self.encoder {
            h = compute.linear(&h, layer).tanh();
        }
        Posterior {
            mu: compute.linear(&h, &self.fc_mu).to_kind(Kind::Float),
            logvar: compute.linear(&h, &self.fc_logvar).to_kind(Kind::Float),
        }
    }

    pub(super) fn decode(&self, z: &Tensor, compute: Compute) -> Tensor {
        let mut h = compute.cast(z);
        for layer in &self.decoder {
            h = compute.linear(&h, layer).tanh();
        }
        // The sigmoid and the loss after it run in fp32, as autocast would have them.
        compute
            .linear(&h, &self.out)
            .to_kind(Kind::Float)
            .sigmoid()
            .view([-1, 3, self.image_size, self.image_size])
    }

    /// Where its weights are.
    pub(super) fn device(&self) -> Device {
        self.fc_mu.ws.device()
    }
}
