//! The model a run trains ([`Vae`]: the seed's convolutional network, residual or plain,
//! in `conv`, or Kingma & Welling's fully connected one in `mlp`), its loss, and
//! safetensors weights.
//!
//! Parameter names follow the PyTorch `state_dict` of the seed's classes
//! (`encoder.down.0.weight`, `encoder.down.2.block.0.weight`, `decoder.up.12.weight`, ...),
//! so a vaelab checkpoint loads into the seed's model with `strict=True` and back.
//!
//! Over 500 lines with its tests (about 400, beside the code they check); the model itself
//! is about 500, its block designs in `blocks` and its other parts in their own files.
mod blocks;
mod compute;
mod conv;
mod mlp;
mod norm;
mod posterior;

pub use crate::experiment::config::BlockDesign;
pub use compute::Compute;
pub use conv::Architecture;
use conv::{UP_PADDING, UP_STRIDE};
pub use posterior::{Posterior, half_ln_2pi, log_prior};

use std::path::{Path, PathBuf};

use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use crate::experiment::config::{Init, Likelihood, ModelConfig, ModelKind};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{}: cannot read model weights: {source}; delete the checkpoint to retrain from the previous one", path.display())]
    Load {
        path: PathBuf,
        #[source]
        source: tch::TchError,
    },
    #[error("{}: cannot write model weights: {source}", path.display())]
    Save {
        path: PathBuf,
        #[source]
        source: tch::TchError,
    },
}

/// The VAE a run trains, whichever network it has (`model.kind`): the one interface that
/// training, evaluation, checkpoints, the bench and the PyTorch interop go through. The
/// networks differ in how images become a posterior and latents become images; the
/// likelihood (learned or fixed σ), precision and layout, training mode and the loss are
/// the model's, shared by every network.
#[derive(Debug)]
pub struct Vae {
    network: Network,
    /// `decoder.log_sigma`, one per colour channel, when the likelihood is learned.
    log_sigma: Option<Tensor>,
    latent_dim: i64,
    compute: Compute,
    /// Batch norm uses batch statistics and updates its running ones only when training.
    training: bool,
}

/// The networks a model can have: an enum, not a trait object, since the set is closed
/// (each is a `model.kind`), every call site is one `match` here, and nothing outside
/// `model/` names a network.
#[derive(Debug)]
enum Network {
    Conv(conv::ConvNetwork),
    Mlp(mlp::MlpNetwork),
}

/// Per-image loss terms of one batch, each a scalar tensor averaged over the batch.
pub struct LossTerms {
    pub loss: Tensor,
    pub recon: Tensor,
    pub kl: Tensor,
}

impl Vae {
    /// Builds the model `config` describes under `root`, which must be a VarStore's root
    /// path.
    pub fn new(root: &nn::Path, config: &ModelConfig, image_size: i64) -> Self {
        let network = match config.kind {
            ModelKind::Conv => Network::Conv(conv::ConvNetwork::new(
                root,
                &Architecture::of(config),
                image_size,
            )),
            ModelKind::Mlp => Network::Mlp(mlp::MlpNetwork::new(root, config, image_size)),
        };
        Self::with_network(root, network, config.likelihood, config.latent_dim as i64)
    }

    /// Builds `arch` under `root`, which must be a VarStore's root path.
    pub fn from_architecture(root: &nn::Path, arch: &Architecture, image_size: i64) -> Self {
        let network = Network::Conv(conv::ConvNetwork::new(root, arch, image_size));
        Self::with_network(root, network, arch.likelihood, arch.latent_dim)
    }

    fn with_network(
        root: &nn::Path,
        network: Network,
        likelihood: Likelihood,
        latent_dim: i64,
    ) -> Self {
        // Drawn after every weight, so a fixed-likelihood model's weights are the seed's.
        let log_sigma = (likelihood == Likelihood::Learned)
            .then(|| (root / "decoder").zeros("log_sigma", &[3]));
        Self {
            network,
            log_sigma,
            latent_dim,
            compute: Compute::default(),
            training: false,
        }
    }

    /// Training mode (batch statistics, running statistics updated) or evaluation mode.
    pub fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    /// Sets how later forward passes compute; outputs are fp32 either way.
    pub fn set_compute(&mut self, compute: Compute) {
        self.compute = compute;
    }

    pub fn compute(&self) -> Compute {
        self.compute
    }

    pub fn latent_dim(&self) -> i64 {
        self.latent_dim
    }

    /// The posterior q(z|x) of images in [0, 1].
    pub fn encode(&self, x: &Tensor) -> Posterior {
        let (compute, training) = (self.compute, self.training);
        match &self.network {
            Network::Conv(network) => network.encode(x, compute, training),
            Network::Mlp(network) => network.encode(x, compute),
        }
    }

    /// Images in [0, 1] (fp32) from latents.
    pub fn decode(&self, z: &Tensor) -> Tensor {
        let (compute, training) = (self.compute, self.training);
        match &self.network {
            Network::Conv(network) => network.decode(z, compute, training),
            Network::Mlp(network) => network.decode(z, compute),
        }
    }

    fn device(&self) -> Device {
        match &self.network {
            Network::Conv(network) => network.device(),
            Network::Mlp(network) => network.device(),
        }
    }

    /// The decoder's log σ per colour channel: learned, or the seed's fixed σ² = ½.
    pub fn log_sigma(&self) -> Tensor {
        match &self.log_sigma {
            Some(learned) => learned.shallow_clone(),
            None => Tensor::full([3], FIXED_LOG_SIGMA, (Kind::Float, self.device())),
        }
    }

    /// The loss of a batch under the model's likelihood: the seed's sum of squared errors
    /// for `fixed`, the full Gaussian negative log-likelihood with the learned σ otherwise.
    pub fn loss(
        &self,
        recon: &Tensor,
        target: &Tensor,
        posterior: &Posterior,
        objective: Objective,
    ) -> LossTerms {
        match &self.log_sigma {
            None => vae_loss(recon, target, posterior, objective),
            Some(log_sigma) => {
                loss_from(gaussian_nll(recon, target, log_sigma), posterior, objective)
            }
        }
    }

    /// Encodes, draws z with `eps` (standard normal, the caller owns randomness), decodes:
    /// the reconstruction and the posterior it was drawn from.
    pub fn forward_with_noise(&self, x: &Tensor, eps: &Tensor) -> (Tensor, Posterior) {
        let posterior = self.encode(x);
        let z = posterior.sample(eps);
        (self.decode(&z), posterior)
    }
}

/// What a loss weighs beyond the likelihood: β on the KL term, and free bits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    pub beta: f64,
    /// Nats per latent dimension (batch mean) below which KL is not penalised.
    pub free_bits: f64,
}

impl Objective {
    /// β-weighted KL without free bits: the bound the validation loss reports.
    pub fn beta(beta: f64) -> Self {
        Self {
            beta,
            free_bits: 0.0,
        }
    }
}

/// log σ of the seed's fixed decoder variance σ² = ½.
pub const FIXED_LOG_SIGMA: f64 = -0.5 * std::f64::consts::LN_2;

/// Seed loss: per image, sum of squared errors + beta * KL(q(z|x) || N(0, I)), batch mean.
/// With free bits, the penalised KL is Σ_j max(free_bits, mean over the batch of KL_j)
/// (Kingma et al. 2016); the reported `kl` is the plain KL either way.
pub fn vae_loss(
    recon: &Tensor,
    target: &Tensor,
    posterior: &Posterior,
    objective: Objective,
) -> LossTerms {
    let recon_per_image =
        (recon - target)
            .square()
            .sum_dim_intlist(&[1i64, 2, 3][..], false, Kind::Float);
    loss_from(recon_per_image, posterior, objective)
}

/// −log N(target; recon, σ_c²) in nats per image, summed over pixels, with `log_sigma`
/// holding log σ for each of the 3 channels (a density on [0, 1]^D).
pub fn gaussian_nll(recon: &Tensor, target: &Tensor, log_sigma: &Tensor) -> Tensor {
    let log_sigma = log_sigma.view([1, 3, 1, 1]);
    let scaled = (recon - target).square() * (&log_sigma * -2.0).exp() * 0.5;
    (scaled + log_sigma + half_ln_2pi()).sum_dim_intlist(&[1i64, 2, 3][..], false, Kind::Float)
}

/// The batch means of the reconstruction term and the KL, and the loss `objective` makes
/// of them.
fn loss_from(recon_per_image: Tensor, posterior: &Posterior, objective: Objective) -> LossTerms {
    let recon = recon_per_image.mean(Kind::Float);
    let kl = posterior.kl_per_image().mean(Kind::Float);
    let loss = if objective.free_bits > 0.0 {
        &recon + free_bits_kl(posterior, objective.free_bits) * objective.beta
    } else {
        &recon + &kl * objective.beta
    };
    LossTerms { loss, recon, kl }
}

/// Σ_j max(floor, batch mean of KL_j): the KL free bits penalise.
fn free_bits_kl(posterior: &Posterior, floor: f64) -> Tensor {
    let per_dimension = posterior
        .kl_per_dim()
        .mean_dim(&[0i64][..], false, Kind::Float);
    per_dimension.clamp_min(floor).sum(Kind::Float)
}

/// Number of trainable scalars, as PyTorch's `sum(p.numel() for p in model.parameters())`.
pub fn parameter_count(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

/// Builds a VarStore and model with initialisation drawn from `init_seed` on the CPU's
/// generator, then moves it to `device`: libtorch initialises on the device it is given,
/// and CUDA's generator draws other numbers than the CPU's, so building on the device
/// would make a run's weights depend on where it trains.
pub fn build(
    config: &ModelConfig,
    image_size: i64,
    device: Device,
    init_seed: i64,
) -> (nn::VarStore, Vae) {
    tch::manual_seed(init_seed);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let model = Vae::new(&vs.root(), config, image_size);
    if config.init == Init::Pytorch {
        pytorch_init(&vs);
    }
    if device != Device::Cpu {
        vs.set_device(device);
    }
    (vs, model)
}

/// PyTorch's fan-in of a weight: its second dimension times its kernel area, for
/// `Linear` (out, in), `Conv2d` (out, in, k, k) and `ConvTranspose2d` (in, out, k, k) alike.
pub fn fan_in(weight_shape: &[i64]) -> i64 {
    weight_shape[1] * weight_shape[2..].iter().product::<i64>()
}

/// Redraws every convolution's and linear layer's weight and bias as PyTorch's
/// `reset_parameters` would: `kaiming_uniform_(a=√5)` is uniform in ±1/√fan_in, and so is
/// the bias. Norm layers (weight 1, bias 0), batch norm's statistics and log σ (0) keep
/// their values. Drawn in name order from the generator `build` seeded.
fn pytorch_init(vs: &nn::VarStore) {
    let variables = vs.variables();
    let mut names: Vec<&String> = variables.keys().collect();
    names.sort();
    tch::no_grad(|| {
        for name in names {
            let mut tensor = variables[name].shallow_clone();
            let Some(layer) = name
                .strip_suffix(".weight")
                .or_else(|| name.strip_suffix(".bias"))
            else {
                continue;
            };
            let Some(weight) = variables.get(&format!("{layer}.weight")) else {
                continue;
            };
            if weight.dim() < 2 || !tensor.requires_grad() {
                continue;
            }
            let bound = 1.0 / (fan_in(&weight.size()) as f64).sqrt();
            let _ = tensor.uniform_(-bound, bound);
        }
    });
}

pub fn save_weights(vs: &nn::VarStore, path: &Path) -> Result<(), ModelError> {
    vs.save(path).map_err(|source| ModelError::Save {
        path: path.to_path_buf(),
        source,
    })
}

pub fn load_weights(vs: &mut nn::VarStore, path: &Path) -> Result<(), ModelError> {
    vs.load(path).map_err(|source| ModelError::Load {
        path: path.to_path_buf(),
        source,
    })
}

impl Module for Vae {
    /// Deterministic reconstruction through the posterior mean.
    fn forward(&self, x: &Tensor) -> Tensor {
        let mu = self.encode(x).mu;
        self.decode(&mu)
    }
}

#[cfg(test)]
mod tests {
    use std::f64::consts::PI;

    use super::*;
    use crate::experiment::config::{ModelConfig, Precision};

    fn seed_config(residual: bool) -> ModelConfig {
        ModelConfig {
            residual,
            latent_dim: 128,
            channels: vec![32, 64, 128, 256, 512],
            ..Default::default()
        }
    }

    fn count(residual: bool, size: i64) -> i64 {
        let (vs, _) = build(&seed_config(residual), size, Device::Cpu, 0);
        parameter_count(&vs)
    }

    /// Weights come from the CPU generator seeded by the run, whatever device is asked for
    /// and whatever was drawn before: every device this machine has starts a run from the
    /// same bits (`scripts/gpu-check.sh` runs this on a GPU too).
    #[test]
    fn the_model_is_built_on_the_cpu_from_its_seed_whatever_the_device() {
        let config = ModelConfig {
            residual: true,
            latent_dim: 8,
            channels: vec![8, 16],
            ..Default::default()
        };
        let weights = |device: Device| {
            let (vs, _) = build(&config, 16, device, 42);
            let mut named: Vec<(String, Tensor)> = vs
                .variables()
                .into_iter()
                .map(|(name, t)| (name, t.to_device(Device::Cpu)))
                .collect();
            named.sort_by(|a, b| a.0.cmp(&b.0));
            named
        };
        let reference = weights(Device::Cpu);
        let mut devices = vec![Device::Cpu];
        if tch::Cuda::is_available() {
            devices.push(Device::Cuda(0));
        }
        for device in devices {
            // Draw from every generator first: the build must not depend on their state.
            let _ = Tensor::randn([1000], (Kind::Float, device));
            let built = weights(device);
            assert_eq!(built.len(), reference.len());
            for ((name, a), (_, b)) in built.iter().zip(&reference) {
                assert!(a.equal(b), "{name} differs on {device:?}");
            }
        }
    }

    /// max |w| · √fan_in and the biases of every convolution and linear layer: PyTorch's
    /// bound 1 (values uniform, so just under it) and non-zero biases for `pytorch`;
    /// tch's He bound √6 and zero convolution biases for `he`.
    #[test]
    fn initial_weights_follow_the_chosen_initialisation() {
        for init in [Init::Pytorch, Init::He] {
            let config = ModelConfig {
                init,
                ..seed_config(true)
            };
            let (vs, _) = build(&config, 64, Device::Cpu, 3);
            let variables = vs.variables();
            let mut layers = 0;
            for (name, weight) in &variables {
                let Some(layer) = name.strip_suffix(".weight") else {
                    continue;
                };
                if weight.dim() < 2 {
                    continue;
                }
                layers += 1;
                let scale = (fan_in(&weight.size()) as f64).sqrt();
                let bound = weight.abs().max().double_value(&[]) * scale;
                let expected = match init {
                    Init::Pytorch => 1.0,
                    Init::He => 6f64.sqrt(),
                };
                assert!(
                    bound <= expected * (1.0 + 1e-6) && bound > expected * 0.95,
                    "{init:?} {name}: max|w|·√fan_in = {bound}"
                );
                let bias = &variables[&format!("{layer}.bias")];
                let bias_max = bias.abs().max().double_value(&[]) * scale;
                let is_linear = layer.contains("fc");
                match init {
                    Init::Pytorch => assert!(
                        bias_max > 0.0 && bias_max <= 1.0 + 1e-6,
                        "{name}: bias max·√fan_in = {bias_max}"
                    ),
                    Init::He if !is_linear => assert_eq!(bias_max, 0.0, "{layer}.bias"),
                    Init::He => {}
                }
            }
            assert_eq!(
                layers,
                5 + 5 * 2 + 2 + 1 + 4 + 4 * 2 + 1,
                "convs and linears"
            );
        }
    }

    #[test]
    fn parameter_counts_match_the_seed_pytorch_model() {
        assert_eq!(count(true, 128), 16_584_259);
        assert_eq!(count(true, 64), 14_218_819);
        assert_eq!(count(false, 64), 6_363_843);
    }

    #[test]
    fn parameter_names_follow_the_seed_state_dict() {
        let (vs, _) = build(&seed_config(true), 64, Device::Cpu, 0);
        let names = vs.variables();
        for name in [
            "encoder.down.0.weight",
            "encoder.down.2.block.0.weight",
            "encoder.down.2.block.2.bias",
            "encoder.down.12.weight",
            "encoder.down.14.block.2.weight",
            "encoder.fc_mu.weight",
            "encoder.fc_logvar.bias",
            "decoder.fc.weight",
            "decoder.up.0.weight",
            "decoder.up.11.block.0.weight",
            "decoder.up.12.weight",
        ] {
            assert!(names.contains_key(name), "missing {name}");
        }
        assert_eq!(names.len(), 5 * 2 + 5 * 4 + 4 + 2 + 4 * 2 + 4 * 4 + 2);
        let (plain, _) = build(&seed_config(false), 64, Device::Cpu, 0);
        let plain_names = plain.variables();
        assert!(plain_names.contains_key("encoder.down.8.weight"));
        assert!(plain_names.contains_key("decoder.up.8.weight"));
        assert!(!plain_names.keys().any(|n| n.contains("block")));
    }

    /// The seam: a model built from an architecture with a block in the decoder only has
    /// the encoder of the plain model and the decoder of the residual one, name for name
    /// and shape for shape, and runs.
    #[test]
    fn an_architecture_places_blocks_per_side() {
        let config = ModelConfig {
            latent_dim: 8,
            channels: vec![4, 8, 16],
            ..seed_config(true)
        };
        let shapes = |arch: &Architecture| {
            let vs = nn::VarStore::new(Device::Cpu);
            let model = Vae::from_architecture(&vs.root(), arch, 32);
            let x = Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu));
            assert_eq!(model.forward(&x).size(), vec![2, 3, 32, 32]);
            let mut named: Vec<(String, Vec<i64>)> = vs
                .variables()
                .into_iter()
                .map(|(name, t)| (name, t.size()))
                .collect();
            named.sort();
            named
        };
        let side = |all: &[(String, Vec<i64>)], prefix: &str| -> Vec<(String, Vec<i64>)> {
            all.iter()
                .filter(|(n, _)| n.starts_with(prefix))
                .cloned()
                .collect()
        };
        let residual = Architecture::of(&config);
        assert_eq!(residual.encoder_block, Some(BlockDesign::Seed));
        let plain = Architecture {
            encoder_block: None,
            decoder_block: None,
            ..residual.clone()
        };
        let decoder_only = Architecture {
            encoder_block: None,
            ..residual.clone()
        };
        let (residual, plain, mixed) = (shapes(&residual), shapes(&plain), shapes(&decoder_only));
        assert_eq!(side(&mixed, "encoder."), side(&plain, "encoder."));
        assert_eq!(side(&mixed, "decoder."), side(&residual, "decoder."));
        assert!(
            side(&mixed, "decoder.")
                .iter()
                .any(|(n, _)| n.contains(".block."))
        );
    }

    #[test]
    fn shapes_round_trip_and_outputs_are_in_unit_range() {
        let config = ModelConfig {
            residual: true,
            latent_dim: 8,
            channels: vec![4, 8],
            ..Default::default()
        };
        let (_vs, model) = build(&config, 16, Device::Cpu, 1);
        let x = Tensor::rand([2, 3, 16, 16], (Kind::Float, Device::Cpu));
        let eps = Tensor::zeros([2, 8], (Kind::Float, Device::Cpu));
        let (recon, posterior) = model.forward_with_noise(&x, &eps);
        assert_eq!(recon.size(), vec![2, 3, 16, 16]);
        assert_eq!(posterior.mu.size(), vec![2, 8]);
        assert_eq!(posterior.logvar.size(), vec![2, 8]);
        assert!(recon.min().double_value(&[]) >= 0.0 && recon.max().double_value(&[]) <= 1.0);
    }

    #[test]
    fn loss_is_sum_of_squares_plus_beta_kl_averaged_over_batch() {
        let target = Tensor::zeros([2, 3, 2, 2], (Kind::Float, Device::Cpu));
        let recon = Tensor::full([2, 3, 2, 2], 0.5, (Kind::Float, Device::Cpu));
        let posterior = Posterior {
            mu: Tensor::from_slice(&[1.0f32, 0.0, 0.0, 2.0]).view([2, 2]),
            logvar: Tensor::zeros([2, 2], (Kind::Float, Device::Cpu)),
        };
        let terms = vae_loss(&recon, &target, &posterior, Objective::beta(4.0));
        // 12 pixels * 0.25 = 3 per image; KL = 0.5*mu^2 summed: 0.5 and 2.0, mean 1.25.
        assert!((terms.recon.double_value(&[]) - 3.0).abs() < 1e-6);
        assert!((terms.kl.double_value(&[]) - 1.25).abs() < 1e-6);
        assert!((terms.loss.double_value(&[]) - 8.0).abs() < 1e-6);
    }

    #[test]
    fn batch_norm_tracks_statistics_only_in_training_mode() {
        let config = ModelConfig {
            latent_dim: 4,
            channels: vec![4],
            norm: crate::experiment::config::Norm::Batch,
            ..ModelConfig::default()
        };
        let (vs, mut model) = build(&config, 8, Device::Cpu, 1);
        let variables = vs.variables();
        let (mean, count) = (
            &variables["encoder.down.1.running_mean"],
            &variables["encoder.down.1.num_batches_tracked"],
        );
        let x = Tensor::rand([5, 3, 8, 8], (Kind::Float, Device::Cpu));
        let one = x.narrow(0, 0, 1);
        let evaluated = |model: &Vae| tch::no_grad(|| model.encode(&one).mu);
        let before = evaluated(&model);
        model.set_training(true);
        let _ = tch::no_grad(|| model.encode(&x));
        assert_eq!(count.int64_value(&[]), 1);
        assert!(
            mean.abs().sum(Kind::Float).double_value(&[]) > 0.0,
            "stats moved"
        );
        model.set_training(false);
        let after = evaluated(&model);
        assert!(
            !before.equal(&after),
            "evaluation uses the running statistics"
        );
        let frozen = mean.copy();
        // In evaluation mode an image's code does not depend on its batch.
        let batched = tch::no_grad(|| model.encode(&x).mu.narrow(0, 0, 1));
        assert!((batched - &after).abs().max().double_value(&[]) < 1e-6);
        assert!(mean.equal(&frozen) && count.int64_value(&[]) == 1);
    }

    #[test]
    fn the_learned_likelihood_is_the_full_gaussian_nll_and_fixed_is_the_seeds_sse() {
        let target = Tensor::zeros([1, 3, 1, 2], (Kind::Float, Device::Cpu));
        let recon = Tensor::full([1, 3, 1, 2], 0.5, (Kind::Float, Device::Cpu));
        let log_sigma = Tensor::from_slice(&[0.0f32, -1.0, 1.0]);
        // Per pixel: 0.25 / (2σ²) + log σ + ½ ln 2π, two pixels per channel.
        let expected: f64 = [0.0f64, -1.0, 1.0]
            .iter()
            .map(|ls| 2.0 * (0.125 * (-2.0 * ls).exp() + ls + 0.5 * (2.0 * PI).ln()))
            .sum();
        let nll = gaussian_nll(&recon, &target, &log_sigma).double_value(&[0]);
        assert!((nll - expected).abs() < 1e-5, "{nll} vs {expected}");
        // Under the fixed σ² = ½ it is the sum of squares plus D/2 · ln π.
        let fixed = Tensor::full([3], FIXED_LOG_SIGMA, (Kind::Float, Device::Cpu));
        let nll = gaussian_nll(&recon, &target, &fixed).double_value(&[0]);
        assert!((nll - (6.0 * 0.25 + 3.0 * PI.ln())).abs() < 1e-5, "{nll}");
    }

    #[test]
    fn free_bits_penalise_each_dimension_at_least_the_floor() {
        // Two images, three dimensions, logvar 0: KL_ij = mu_ij² / 2.
        let posterior = Posterior {
            mu: Tensor::from_slice(&[0.2f32, 2.0, 0.0, 0.4, 0.0, 1.0]).view([2, 3]),
            logvar: Tensor::zeros([2, 3], (Kind::Float, Device::Cpu)),
        };
        let zeros = Tensor::zeros([2, 3, 1, 1], (Kind::Float, Device::Cpu));
        let terms = vae_loss(
            &zeros,
            &zeros,
            &posterior,
            Objective {
                beta: 3.0,
                free_bits: 0.5,
            },
        );
        // Batch means per dimension: (0.02+0.08)/2 = 0.05, 2/2 = 1, 0.5/2 = 0.25;
        // floored at 0.5: 0.5 + 1 + 0.5 = 2; the loss is 3 · 2, the plain KL 1.3.
        assert!((terms.loss.double_value(&[]) - 6.0).abs() < 1e-6);
        assert!((terms.kl.double_value(&[]) - 1.3).abs() < 1e-6);
    }

    /// Loss and every weight's gradient of one step on fixed inputs, computed as `compute` says.
    fn loss_and_gradients(compute: Compute) -> (f64, Vec<(String, Tensor)>) {
        let config = ModelConfig {
            residual: true,
            latent_dim: 8,
            channels: vec![8, 16],
            ..Default::default()
        };
        let (vs, mut model) = build(&config, 16, Device::Cpu, 3);
        model.set_compute(compute);
        tch::manual_seed(11);
        let x = Tensor::rand([4, 3, 16, 16], (Kind::Float, Device::Cpu));
        let eps = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
        let (recon, posterior) = model.forward_with_noise(&x, &eps);
        for output in [&recon, &posterior.mu, &posterior.logvar] {
            assert_eq!(
                output.kind(),
                Kind::Float,
                "outputs are fp32 under {compute:?}"
            );
        }
        let terms = vae_loss(&recon, &x, &posterior, Objective::beta(1.0));
        terms.loss.backward();
        let mut grads: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .map(|(name, w)| {
                assert_eq!(w.kind(), Kind::Float, "{name}: master weights stay fp32");
                let g = w.grad();
                assert_eq!(g.kind(), Kind::Float, "{name}: gradients arrive in fp32");
                (name, g)
            })
            .collect();
        grads.sort_by(|a, b| a.0.cmp(&b.0));
        (terms.loss.double_value(&[]), grads)
    }

    fn cosine(a: &Tensor, b: &Tensor) -> f64 {
        let dot = (a * b).sum(Kind::Double).double_value(&[]);
        dot / (a.norm().double_value(&[]) * b.norm().double_value(&[]))
    }

    #[test]
    fn bf16_computes_the_fp32_loss_and_gradients_to_bf16_accuracy() {
        let (loss32, grads32) = loss_and_gradients(Compute::default());
        let (loss16, grads16) = loss_and_gradients(Compute {
            precision: Precision::Bf16,
            channels_last: false,
        });
        // bf16 keeps 8 significant bits: about 0.4% per rounding.
        assert!(
            ((loss16 - loss32) / loss32).abs() < 0.01,
            "bf16 loss {loss16} vs fp32 {loss32}"
        );
        assert_ne!(loss16, loss32, "bf16 must actually compute in bf16");
        for ((name, g32), (_, g16)) in grads32.iter().zip(&grads16) {
            let similarity = cosine(g32, g16);
            assert!(similarity > 0.98, "{name}: gradient cosine {similarity}");
        }
    }

    #[test]
    fn channels_last_computes_the_same_model() {
        let (loss, grads) = loss_and_gradients(Compute::default());
        let (loss_nhwc, grads_nhwc) = loss_and_gradients(Compute {
            precision: Precision::Fp32,
            channels_last: true,
        });
        assert!(
            ((loss_nhwc - loss) / loss).abs() < 1e-5,
            "{loss_nhwc} vs {loss}"
        );
        for ((name, a), (_, b)) in grads.iter().zip(&grads_nhwc) {
            let scale = a.abs().max().double_value(&[]).max(1e-12);
            let diff = (a - b).abs().max().double_value(&[]);
            assert!(
                diff <= 1e-4 * scale,
                "{name}: max difference {diff} of {scale}"
            );
        }
    }

    #[test]
    fn same_seed_gives_same_initial_weights() {
        let config = ModelConfig {
            residual: false,
            latent_dim: 4,
            channels: vec![4],
            ..Default::default()
        };
        let (a, _) = build(&config, 8, Device::Cpu, 5);
        let (b, _) = build(&config, 8, Device::Cpu, 5);
        let (c, _) = build(&config, 8, Device::Cpu, 6);
        let w = |vs: &nn::VarStore| vs.variables()["encoder.down.0.weight"].shallow_clone();
        assert!(w(&a).equal(&w(&b)));
        assert!(!w(&a).equal(&w(&c)));
    }
}
