//! End-of-run evaluation on the held-out split: reconstruction quality (MSE, PSNR, SSIM),
//! KL per latent dimension, active units, the β = 1 ELBO and an importance-weighted bound
//! in bits per dimension (under the run's own decoder likelihood and under the calibrated
//! one), and the fixed visuals that the report lays side by side.
//!
//! Every variant sees the same images, the same interpolation pairs and the same prior
//! noise (drawn from the dataset seed, not the run seed), so their pictures compare.
pub mod features;
mod metrics;
mod pictures;
pub mod sample_quality;

pub use metrics::{
    bits_per_dim, discretized_gaussian_nll, iwae_log_likelihood, iwae_log_likelihood_chunked,
    mse_per_image, psnr_per_image, ssim_per_image,
};
use pictures::write_visuals;

use chrono::Utc;
use tch::{Device, Kind, Tensor};

use crate::data;
use crate::experiment::config::{EvalSplit, RunConfig};
use crate::model::Vae;
use crate::progress::Reporter;
use crate::rng::{self, Stream};
use crate::store::{ACTIVE_UNIT_THRESHOLD, Evaluation, LatentStats, RunDir, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("evaluation: {0}")]
    Torch(String),
    #[error("evaluation: the {split} split is empty; raise data.val_images")]
    NoImages { split: String },
    #[error(
        "{}: eval.fid.extractor: {detail} (it must be a TorchScript feature extractor called as forward(uint8 images, return_features=True), such as inception-2015-12-05.pt)",
        path.display()
    )]
    Extractor {
        path: std::path::PathBuf,
        detail: String,
    },
}

/// The held-out images (uint8) and, where the dataset has them, their attributes; and the
/// training images (uint8), on which the decoder variance is calibrated.
pub struct EvalData<'a> {
    pub images: &'a Tensor,
    pub attributes: Option<(&'a Tensor, &'a [String])>,
    pub train_images: &'a Tensor,
}

/// Training images the calibrated decoder variance is fitted on, at most: ten thousand
/// images give each channel's variance from millions of pixels.
pub const CALIBRATION_IMAGES: i64 = 10_000;

/// The decoder likelihoods an evaluation bounds log p(x) under: the run's own, and the
/// calibrated one (σ² per channel at its maximum-likelihood value on the training set).
struct Likelihoods {
    own: Tensor,
    calibrated: Tensor,
}

impl Likelihoods {
    fn both(&self) -> [Tensor; 2] {
        [self.own.shallow_clone(), self.calibrated.shallow_clone()]
    }
}

/// log σ per channel with σ_c² the mean over (up to [`CALIBRATION_IMAGES`]) training
/// images and pixels of channel c of (x − x̂)², x̂ decoded from one posterior sample: the
/// maximum-likelihood decoder variance given the trained encoder and decoder, the
/// calibrated decoder of σ-VAE (Rybkin et al. 2021).
fn calibrated_log_sigma(
    model: &Vae,
    config: &RunConfig,
    images: &Tensor,
    batch: i64,
) -> Result<Tensor, EvalError> {
    let device = images.device();
    let n = images.size()[0].min(CALIBRATION_IMAGES);
    if n == 0 {
        return Ok(model.log_sigma());
    }
    let latent = model.latent_dim();
    let mut squared = Tensor::zeros([3], (Kind::Double, device));
    for start in (0..n).step_by(batch as usize) {
        let len = batch.min(n - start);
        let x = data::to_unit_float(&images.narrow(0, start, len));
        let posterior = model.encode(&x);
        let at = [u64::MAX - 1, start as u64];
        let eps =
            rng::cpu_normal(config.seed, Stream::Evaluation, &at, &[len, latent]).to_device(device);
        let sampled = model.decode(&posterior.sample(&eps));
        squared += (sampled - &x)
            .square()
            .to_kind(Kind::Double)
            .sum_dim_intlist(&[0i64, 2, 3][..], false, Kind::Double);
    }
    let pixels = (n * images.size()[2] * images.size()[3]) as f64;
    // A perfect fit would make σ zero and the density infinite: floor σ at 1/255 / 10.
    let variance = (squared / pixels).clamp_min((0.1f64 / 255.0).powi(2));
    Ok((variance.log() * 0.5).to_kind(Kind::Float))
}

fn torch_err(e: tch::TchError) -> EvalError {
    EvalError::Torch(e.to_string())
}

fn host(tensor: &Tensor) -> Result<Vec<f64>, EvalError> {
    tensor
        .to_device(Device::Cpu)
        .to_kind(Kind::Double)
        .reshape([-1])
        .try_into()
        .map_err(torch_err)
}

/// Where an evaluation runs and reports.
pub struct EvalContext<'a> {
    pub run: &'a RunDir,
    pub reporter: &'a dyn Reporter,
    pub label: &'a str,
}

/// Means over the evaluation images of the per-image metrics of the posterior mean's
/// reconstruction, and what the latent space looked like on them.
struct ReconstructionPass {
    recon_mse: f64,
    psnr: f64,
    ssim: f64,
    kl: f64,
    /// −ELBO in nats per image, one sample of z, under the run's own likelihood.
    neg_elbo: f64,
    /// The same under the calibrated likelihood.
    neg_elbo_calibrated: f64,
    stats: LatentStats,
    /// Posterior means of every image (double precision), for the pictures.
    means: Tensor,
}

fn reconstruction_pass(
    model: &Vae,
    config: &RunConfig,
    images: &Tensor,
    likelihoods: &Likelihoods,
    batch: i64,
    reporter: &dyn Reporter,
) -> Result<ReconstructionPass, EvalError> {
    let device = images.device();
    let n = images.size()[0];
    let latent = model.latent_dim();
    // Per image: squared error, PSNR, SSIM, KL, −ELBO in nats (own, calibrated).
    let mut sums = Tensor::zeros([6], (Kind::Double, device));
    let mut kl_per_dim = Tensor::zeros([latent], (Kind::Double, device));
    let mut means = Vec::with_capacity((n as usize).div_ceil(batch as usize));
    for (i, start) in (0..n).step_by(batch as usize).enumerate() {
        let len = batch.min(n - start);
        let x = data::to_unit_float(&images.narrow(0, start, len));
        let posterior = model.encode(&x);
        let recon = model.decode(&posterior.mu);
        let eps = rng::cpu_normal(config.seed, Stream::Evaluation, &[i as u64], &[len, latent])
            .to_device(device);
        let sampled = model.decode(&posterior.sample(&eps));
        let kl_dims = posterior.kl_per_dim();
        let kl = kl_dims.sum_dim_intlist(&[1i64][..], false, Kind::Float);
        let elbo = discretized_gaussian_nll(&sampled, &x, &likelihoods.own) + &kl;
        let elbo_calibrated = discretized_gaussian_nll(&sampled, &x, &likelihoods.calibrated) + &kl;
        let per_image = Tensor::stack(
            &[
                mse_per_image(&recon, &x),
                psnr_per_image(&recon, &x),
                ssim_per_image(&recon, &x),
                kl,
                elbo,
                elbo_calibrated,
            ],
            1,
        );
        sums += per_image
            .to_kind(Kind::Double)
            .sum_dim_intlist(&[0i64][..], false, Kind::Double);
        kl_per_dim +=
            kl_dims
                .to_kind(Kind::Double)
                .sum_dim_intlist(&[0i64][..], false, Kind::Double);
        means.push(posterior.mu);
        reporter.advance((start + len) as u64, "");
    }
    let means = Tensor::cat(&means, 0).to_kind(Kind::Double);
    let mean_variance = host(&means.var_dim(&[0i64][..], false, false))?;
    let sums = host(&sums)?;
    let mean = |j: usize| sums[j] / n as f64;
    Ok(ReconstructionPass {
        recon_mse: mean(0),
        psnr: mean(1),
        ssim: mean(2),
        kl: mean(3),
        neg_elbo: mean(4),
        neg_elbo_calibrated: mean(5),
        stats: LatentStats {
            kl: host(&kl_per_dim)?.iter().map(|v| v / n as f64).collect(),
            mean_variance: if n > 1 {
                mean_variance
            } else {
                vec![0.0; latent as usize]
            },
        },
        means,
    })
}

/// How the importance-weighted bound is taken: on the first `images` evaluation images,
/// `samples` draws each, `batch` images at a time.
struct IwaeSettings {
    images: i64,
    samples: i64,
    batch: i64,
    /// Images decoded at once: more samples per image than this are split into chunks.
    max_decodes: i64,
    /// Images the progress bar has counted before this pass.
    shown_before: i64,
}

/// The importance-weighted bound, log p(x) in nats summed over the images, under the
/// run's own and the calibrated likelihood.
fn iwae_pass(
    model: &Vae,
    config: &RunConfig,
    images: &Tensor,
    likelihoods: &Likelihoods,
    settings: &IwaeSettings,
    reporter: &dyn Reporter,
) -> Result<[f64; 2], EvalError> {
    let IwaeSettings {
        images: count,
        samples,
        batch,
        max_decodes,
        shown_before,
    } = *settings;
    let device = images.device();
    let latent = model.latent_dim();
    let mut sums = [0.0; 2];
    let both = likelihoods.both();
    for start in (0..count).step_by(batch as usize) {
        let len = batch.min(count - start);
        let x = data::to_unit_float(&images.narrow(0, start, len));
        let at = [u64::MAX, start as u64];
        let eps = rng::cpu_normal(
            config.seed,
            Stream::Evaluation,
            &at,
            &[len, samples, latent],
        )
        .to_device(device);
        let bounds = iwae_log_likelihood_chunked(model, &x, &eps, &both, max_decodes);
        for (sum, log_px) in sums.iter_mut().zip(&bounds) {
            *sum += host(&log_px.sum(Kind::Double))?[0];
        }
        reporter.advance((shown_before + start + len) as u64, "");
    }
    Ok(sums)
}

/// Runs the evaluation of `model` at `epoch` and writes its Parquet files beside the
/// metrics and its pictures into the run's `evaluation/` directory.
pub fn evaluate(
    model: &Vae,
    config: &RunConfig,
    epoch: u32,
    held_out: &EvalData,
    context: &EvalContext,
) -> Result<(Evaluation, LatentStats), EvalError> {
    let EvalContext {
        run,
        reporter,
        label,
    } = *context;
    let split = match config.data.split {
        Some(EvalSplit::Test) => "test",
        _ => "validation",
    };
    let n = held_out.images.size()[0];
    if n == 0 {
        return Err(EvalError::NoImages {
            split: split.into(),
        });
    }
    let settings = &config.eval;
    let batch = config.train.batch_size.max(1) as i64;
    let dims = (held_out.images.numel() / n as usize) as f64;
    let iwae_images = (settings.iwae_images as i64).min(n);
    let k = settings.iwae_samples as i64;
    reporter.start(
        &format!("{label} evaluation"),
        (n + iwae_images) as u64,
        "img",
    );
    let result = tch::no_grad(|| -> Result<_, EvalError> {
        let likelihoods = Likelihoods {
            own: model.log_sigma(),
            calibrated: calibrated_log_sigma(model, config, held_out.train_images, batch)?,
        };
        let pass = reconstruction_pass(
            model,
            config,
            held_out.images,
            &likelihoods,
            batch,
            reporter,
        )?;
        let iwae = IwaeSettings {
            images: iwae_images,
            samples: k,
            batch: (batch * 4 / k).clamp(1, batch),
            // Four training batches of decodes at once: `eval.iwae_samples: 5000` at
            // 128×128 decodes 256 at a time instead of all 5000.
            max_decodes: batch * 4,
            shown_before: n,
        };
        let [iwae_sum, iwae_sum_calibrated] = iwae_pass(
            model,
            config,
            held_out.images,
            &likelihoods,
            &iwae,
            reporter,
        )?;
        let sigma = |log_sigma: &Tensor| -> Result<[f64; 3], EvalError> {
            let values = host(&log_sigma.exp())?;
            Ok([values[0], values[1], values[2]])
        };
        let attribute = write_visuals(model, config, held_out, &pass.means, &pass.stats.kl, run)?;
        let evaluation = Evaluation {
            epoch,
            split: split.into(),
            images: n as u32,
            recon_mse: pass.recon_mse,
            psnr: pass.psnr,
            ssim: pass.ssim,
            kl: pass.kl,
            active_units: pass
                .stats
                .mean_variance
                .iter()
                .filter(|&&v| v > ACTIVE_UNIT_THRESHOLD)
                .count() as u32,
            latent_dim: model.latent_dim() as u32,
            elbo_bpd: bits_per_dim(pass.neg_elbo, dims),
            iwae_bpd: bits_per_dim(-iwae_sum / iwae_images as f64, dims),
            likelihood: config.model.likelihood,
            decoder_sigma: sigma(&likelihoods.own)?,
            calibrated_sigma: sigma(&likelihoods.calibrated)?,
            calibrated_elbo_bpd: bits_per_dim(pass.neg_elbo_calibrated, dims),
            calibrated_iwae_bpd: bits_per_dim(-iwae_sum_calibrated / iwae_images as f64, dims),
            iwae_samples: k as u32,
            iwae_images: iwae_images as u32,
            discretized: true,
            fid: match &settings.fid {
                Some(fid) => {
                    let store_root = run.path().parent().unwrap_or(run.path());
                    Some(sample_quality::score(
                        model, config, held_out, fid, store_root, reporter,
                    )?)
                }
                None => None,
            },
            attribute,
            evaluated_at: Utc::now(),
        };
        Ok((evaluation, pass.stats))
    });
    reporter.finish();
    let (evaluation, stats) = result?;
    run.write_evaluation(&evaluation, &stats)?;
    Ok((evaluation, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::config::tiny_config;
    use crate::model;

    /// σ_c² is the per-channel mean squared error of one posterior sample's decoding, and
    /// as a maximum-likelihood value it beats any other σ on those decodings.
    #[test]
    fn the_calibrated_sigma_is_the_per_channel_mean_squared_error_and_maximises_the_likelihood() {
        let config = tiny_config();
        let (_vs, vae) = model::build(&config.model, 32, Device::Cpu, 5);
        tch::manual_seed(2);
        let images = Tensor::randint(256, [6, 3, 32, 32], (Kind::Uint8, Device::Cpu));
        let log_sigma = tch::no_grad(|| calibrated_log_sigma(&vae, &config, &images, 8)).unwrap();
        // Directly: one batch, the same draws.
        let x = data::to_unit_float(&images);
        // Written out, not through `Posterior::sample`, so the test checks that too.
        let posterior = tch::no_grad(|| vae.encode(&x));
        let (mu, logvar) = (&posterior.mu, &posterior.logvar);
        let eps = rng::cpu_normal(config.seed, Stream::Evaluation, &[u64::MAX - 1, 0], &[6, 8]);
        let sampled = tch::no_grad(|| vae.decode(&(mu + eps * (logvar * 0.5).exp())));
        let squared = (&sampled - &x).square().to_kind(Kind::Double);
        for c in 0..3 {
            let variance = squared.select(1, c).mean(Kind::Double).double_value(&[]);
            let got = (2.0 * log_sigma.double_value(&[c])).exp();
            assert!(
                (got - variance).abs() < 1e-5 * variance,
                "channel {c}: {got} vs {variance}"
            );
        }
        let nll = |log_sigma: &Tensor| {
            crate::model::gaussian_nll(&sampled, &x, log_sigma)
                .sum(Kind::Double)
                .double_value(&[])
        };
        let best = nll(&log_sigma);
        for shift in [-0.05, 0.05] {
            assert!(
                best < nll(&(&log_sigma + shift)),
                "σ·exp({shift}) fits better"
            );
        }
    }
}
