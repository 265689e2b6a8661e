//! End-of-run evaluation on the held-out split: reconstruction quality (MSE, PSNR, SSIM),
//! KL per latent dimension, active units, the β = 1 ELBO and an importance-weighted bound
//! in bits per dimension, and the fixed visuals that the report lays side by side.
//!
//! Every variant sees the same images, the same interpolation pairs and the same prior
//! noise (drawn from the dataset seed, not the run seed), so their pictures compare.
use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use polars::prelude::*;
use tch::{Device, Kind, Tensor};

use crate::config::{DataSource, EvalConfig, EvalSplit, RunConfig};
use crate::data;
use crate::images;
use crate::model::{self, Vae};
use crate::progress::Reporter;
use crate::rng::{self, Stream};
use crate::store::{RunDir, StoreError, write_atomic_with};

/// The decoder likelihood that the training loss implies and the bounds assume.
pub const LIKELIHOOD: &str = "Gaussian decoder N(x̂, ½·I) on pixels scaled to [0, 1] (the seed's \
sum-of-squares loss is its negative log-likelihood up to a constant), turned into a probability \
of the 8-bit pixel values by the bin width 1/255";

/// Images shown in the reconstruction grid; interpolation uses pairs among them.
pub const SHOWN_IMAGES: i64 = 8;
const INTERPOLATION_STEPS: i64 = 8;
const PRIOR_SAMPLES: i64 = 16;
const ATTRIBUTE_FACES: i64 = 4;
pub const ATTRIBUTE_STRENGTHS: [f64; 6] = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5];
/// Active-unit threshold on the variance over the data of the posterior mean (Burda et al.).
pub const ACTIVE_UNIT_THRESHOLD: f64 = 0.01;

pub const EVALUATION_FILE: &str = "evaluation.parquet";
pub const LATENT_FILE: &str = "latent.parquet";
pub const RECONSTRUCTIONS_PNG: &str = "reconstructions.png";
pub const PRIOR_PNG: &str = "prior.png";
pub const INTERPOLATION_PNG: &str = "interpolation.png";
pub const ATTRIBUTE_PNG: &str = "attribute.png";

/// The 40 attributes of CelebA's `list_attr_celeba.txt`, in file order.
pub const CELEBA_ATTRIBUTES: [&str; 40] = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
];

/// The attribute names a source provides (none for a folder of images).
pub fn attribute_names(source: DataSource) -> &'static [&'static str] {
    match source {
        DataSource::Synthetic => &data::synthetic::ATTRIBUTES,
        DataSource::Celeba => &CELEBA_ATTRIBUTES,
        DataSource::Folder => &[],
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: unreadable evaluation ({detail}); delete it and run again to re-evaluate")]
    Corrupt { path: PathBuf, detail: String },
    #[error("evaluation: {0}")]
    Torch(String),
    #[error("evaluation: the {split} split is empty; raise data.val_images")]
    NoImages { split: String },
}

/// The scalar results of one evaluation: one row of `evaluation.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The epoch whose weights were evaluated.
    pub epoch: u32,
    pub split: String,
    pub images: u32,
    /// Mean squared error per pixel of the reconstruction from the posterior mean.
    pub recon_mse: f64,
    /// Mean over images of 10·log10(1 / per-image MSE), in dB.
    pub psnr: f64,
    /// Mean over images of SSIM (Gaussian window 11, σ 1.5, on each channel).
    pub ssim: f64,
    /// Mean over images of KL(q(z|x) || N(0, I)), summed over dimensions, in nats.
    pub kl: f64,
    pub active_units: u32,
    pub latent_dim: u32,
    /// Negative β = 1 ELBO (one sample of z per image), bits per dimension.
    pub elbo_bpd: f64,
    /// Negative importance-weighted bound, bits per dimension.
    pub iwae_bpd: f64,
    pub iwae_samples: u32,
    pub iwae_images: u32,
    /// The attribute whose direction was drawn, when the dataset has it.
    pub attribute: Option<String>,
    pub evaluated_at: DateTime<Utc>,
}

/// Per latent dimension: mean KL over images and the variance of the posterior mean.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentStats {
    pub kl: Vec<f64>,
    pub mean_variance: Vec<f64>,
}

/// The held-out images (uint8) and, where the dataset has them, their attributes.
pub struct EvalData<'a> {
    pub images: &'a Tensor,
    pub attributes: Option<(&'a Tensor, &'a [String])>,
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

/// Mean squared error per image over all pixels and channels.
pub fn mse_per_image(a: &Tensor, b: &Tensor) -> Tensor {
    (a - b)
        .square()
        .mean_dim(&[1i64, 2, 3][..], false, Kind::Float)
}

/// PSNR in dB for images in [0, 1], one value per image.
pub fn psnr_per_image(recon: &Tensor, target: &Tensor) -> Tensor {
    mse_per_image(recon, target).clamp_min(1e-10).log10() * -10.0
}

/// SSIM (Wang et al. 2004) per image for images in [0, 1]: an 11×11 Gaussian window with
/// σ = 1.5, valid positions only, averaged over channels. Images smaller than 11 pixels
/// use the largest odd window that fits, with σ scaled alike.
pub fn ssim_per_image(a: &Tensor, b: &Tensor) -> Tensor {
    let size = a.size();
    let (channels, side) = (size[1], size[2].min(size[3]));
    let window = if side >= 11 {
        11
    } else {
        side - (1 - side % 2)
    };
    let sigma = 1.5 * window as f64 / 11.0;
    let center = (window - 1) as f64 / 2.0;
    let weights: Vec<f32> = (0..window)
        .map(|i| (-((i as f64 - center).powi(2)) / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let total: f32 = weights.iter().sum();
    let line = Tensor::from_slice(&weights).to_device(a.device()) / total as f64;
    let kernel = line
        .view([window, 1])
        .matmul(&line.view([1, window]))
        .view([1, 1, window, window])
        .expand([channels, 1, window, window], false)
        .contiguous();
    let filter = |t: &Tensor| t.conv2d(&kernel, None::<Tensor>, [1, 1], [0, 0], [1, 1], channels);
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let (mu_a, mu_b) = (filter(a), filter(b));
    let var_a = filter(&(a * a)) - mu_a.square();
    let var_b = filter(&(b * b)) - mu_b.square();
    let cov = filter(&(a * b)) - &mu_a * &mu_b;
    let numerator = (&mu_a * &mu_b * 2.0 + c1) * (cov * 2.0 + c2);
    let denominator = (mu_a.square() + mu_b.square() + c1) * (var_a + var_b + c2);
    (numerator / denominator).mean_dim(&[1i64, 2, 3][..], false, Kind::Float)
}

/// −log p(x | z) in nats per image under [`LIKELIHOOD`] (density on [0, 1]^D).
pub fn gaussian_nll(recon: &Tensor, target: &Tensor) -> Tensor {
    let dims = (target.numel() / target.size()[0] as usize) as f64;
    (recon - target)
        .square()
        .sum_dim_intlist(&[1i64, 2, 3][..], false, Kind::Float)
        + dims * 0.5 * std::f64::consts::PI.ln()
}

/// Converts −log density in nats per image to bits per dimension of the 8-bit pixels.
pub fn bits_per_dim(nats: f64, dims: f64) -> f64 {
    nats / (dims * std::f64::consts::LN_2) + 255f64.log2()
}

/// Importance-weighted bound on log p(x) per image, in nats, from `samples` standard
/// normal draws per image in `eps` (shape (N, K, latent)).
pub fn iwae_log_likelihood(model: &Vae, x: &Tensor, eps: &Tensor) -> Tensor {
    let (n, k, latent) = (eps.size()[0], eps.size()[1], eps.size()[2]);
    let (mu, logvar) = model.encode(x);
    let std = (&logvar * 0.5).exp();
    let z = mu.unsqueeze(1) + std.unsqueeze(1) * eps;
    let recon = model.decode(&z.view([n * k, latent]));
    let repeated = x
        .unsqueeze(1)
        .expand([n, k, x.size()[1], x.size()[2], x.size()[3]], false)
        .reshape([n * k, x.size()[1], x.size()[2], x.size()[3]]);
    let log_px_z = -gaussian_nll(&recon, &repeated).view([n, k]);
    let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let log_pz =
        (z.square() * -0.5 - half_log_2pi).sum_dim_intlist(&[2i64][..], false, Kind::Float);
    let log_qz = (eps.square() * -0.5 - half_log_2pi - logvar.unsqueeze(1) * 0.5).sum_dim_intlist(
        &[2i64][..],
        false,
        Kind::Float,
    );
    (log_px_z + log_pz - log_qz).logsumexp(&[1i64][..], false) - (k as f64).ln()
}

/// Whether `run` holds an evaluation of `epoch` made with `settings`.
pub fn is_current(run: &RunDir, settings: &EvalConfig, epoch: u32) -> bool {
    matches!(
        read_evaluation(run.path()),
        Ok(Some(e)) if e.epoch == epoch
            && e.iwae_samples as usize == settings.iwae_samples
            && e.iwae_images as usize
                == settings.iwae_images.min(e.images as usize)
            && (e.attribute.is_none() || e.attribute.as_deref() == Some(settings.attribute.as_str()))
    )
}

/// Where an evaluation runs and reports.
pub struct EvalContext<'a> {
    pub run: &'a RunDir,
    pub device: Device,
    pub reporter: &'a dyn Reporter,
    pub label: &'a str,
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
        device,
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
    let latent = model.latent_dim();
    let dims = (held_out.images.numel() / n as usize) as f64;
    let iwae_images = (settings.iwae_images as i64).min(n);
    let k = settings.iwae_samples as i64;
    let iwae_batch = (batch * 4 / k).clamp(1, batch);
    reporter.start(
        &format!("{label} evaluation"),
        (n + iwae_images) as u64,
        "img",
    );
    let result = tch::no_grad(|| -> Result<_, EvalError> {
        // Per image: squared error, PSNR, SSIM, KL, −ELBO in nats.
        let mut sums = Tensor::zeros([5], (Kind::Double, device));
        let mut kl_per_dim = Tensor::zeros([latent], (Kind::Double, device));
        let mut means = Vec::with_capacity((n as usize).div_ceil(batch as usize));
        for (i, start) in (0..n).step_by(batch as usize).enumerate() {
            let len = batch.min(n - start);
            let x = data::to_unit_float(&held_out.images.narrow(0, start, len));
            let (mu, logvar) = model.encode(&x);
            let recon = model.decode(&mu);
            tch::manual_seed(rng::torch_seed(
                config.seed,
                Stream::Evaluation,
                &[i as u64],
            ));
            let eps = Tensor::randn([len, latent], (Kind::Float, device));
            let sampled = model.decode(&(&mu + eps * (&logvar * 0.5).exp()));
            let kl_dims = (mu.square() + logvar.exp() - &logvar - 1.0) * 0.5;
            let kl = kl_dims.sum_dim_intlist(&[1i64][..], false, Kind::Float);
            let elbo = gaussian_nll(&sampled, &x) + &kl;
            let per_image = Tensor::stack(
                &[
                    mse_per_image(&recon, &x),
                    psnr_per_image(&recon, &x),
                    ssim_per_image(&recon, &x),
                    kl,
                    elbo,
                ],
                1,
            );
            sums +=
                per_image
                    .to_kind(Kind::Double)
                    .sum_dim_intlist(&[0i64][..], false, Kind::Double);
            kl_per_dim +=
                kl_dims
                    .to_kind(Kind::Double)
                    .sum_dim_intlist(&[0i64][..], false, Kind::Double);
            means.push(mu);
            reporter.advance((start + len) as u64, "");
        }
        let means = Tensor::cat(&means, 0).to_kind(Kind::Double);
        let mean_variance = means.var_dim(&[0i64][..], false, false);

        let mut iwae_sum = 0.0;
        for start in (0..iwae_images).step_by(iwae_batch as usize) {
            let len = iwae_batch.min(iwae_images - start);
            let x = data::to_unit_float(&held_out.images.narrow(0, start, len));
            tch::manual_seed(rng::torch_seed(
                config.seed,
                Stream::Evaluation,
                &[u64::MAX, start as u64],
            ));
            let eps = Tensor::randn([len, k, latent], (Kind::Float, device));
            let log_px = iwae_log_likelihood(model, &x, &eps);
            iwae_sum += host(&log_px.sum(Kind::Double))?[0];
            reporter.advance((n + start + len) as u64, "");
        }

        let sums = host(&sums)?;
        let mean = |j: usize| sums[j] / n as f64;
        let mean_variance = host(&mean_variance)?;
        let stats = LatentStats {
            kl: host(&kl_per_dim)?.iter().map(|v| v / n as f64).collect(),
            mean_variance: if n > 1 {
                mean_variance
            } else {
                vec![0.0; latent as usize]
            },
        };
        let attribute = write_visuals(model, config, held_out, &means, &run.evaluation_dir())?;
        let evaluation = Evaluation {
            epoch,
            split: split.into(),
            images: n as u32,
            recon_mse: mean(0),
            psnr: mean(1),
            ssim: mean(2),
            kl: mean(3),
            active_units: stats
                .mean_variance
                .iter()
                .filter(|&&v| v > ACTIVE_UNIT_THRESHOLD)
                .count() as u32,
            latent_dim: latent as u32,
            elbo_bpd: bits_per_dim(mean(4), dims),
            iwae_bpd: bits_per_dim(-iwae_sum / iwae_images as f64, dims),
            iwae_samples: k as u32,
            iwae_images: iwae_images as u32,
            attribute,
            evaluated_at: Utc::now(),
        };
        Ok((evaluation, stats))
    });
    reporter.finish();
    let (evaluation, stats) = result?;
    store_evaluation(run.path(), &evaluation, &stats)?;
    Ok((evaluation, stats))
}

/// Writes the pictures; returns the attribute drawn, if the dataset has it.
fn write_visuals(
    model: &Vae,
    config: &RunConfig,
    held_out: &EvalData,
    means: &Tensor,
    dir: &Path,
) -> Result<Option<String>, EvalError> {
    let device = means.device();
    let means = means.to_kind(Kind::Float);
    let n = held_out.images.size()[0];
    let shown = SHOWN_IMAGES.min(n);
    let originals = data::to_unit_float(&held_out.images.narrow(0, 0, shown));
    let recon = model.decode(&means.narrow(0, 0, shown));
    images::write_grid(
        &Tensor::cat(&[&originals, &recon], 0),
        shown as usize,
        &dir.join(RECONSTRUCTIONS_PNG),
    )?;

    // The prior noise depends on the dataset seed only, so every run on the same data and
    // latent size decodes the same draws.
    tch::manual_seed(rng::torch_seed(
        config.data.dataset_seed,
        Stream::ReportNoise,
        &[],
    ));
    let noise = Tensor::randn(
        [PRIOR_SAMPLES, model.latent_dim()],
        (Kind::Float, Device::Cpu),
    )
    .to_device(device);
    images::write_grid(&model.decode(&noise), 8, &dir.join(PRIOR_PNG))?;

    if shown >= 2 {
        let pairs = shown / 2;
        let mut rows = Vec::new();
        for p in 0..pairs {
            let (a, b) = (means.get(2 * p), means.get(2 * p + 1));
            let steps: Vec<Tensor> = (0..INTERPOLATION_STEPS)
                .map(|s| {
                    let t = s as f64 / (INTERPOLATION_STEPS - 1) as f64;
                    &a * (1.0 - t) + &b * t
                })
                .collect();
            let decoded = model.decode(&Tensor::stack(&steps, 0));
            rows.push(Tensor::cat(
                &[
                    originals.narrow(0, 2 * p, 1),
                    decoded,
                    originals.narrow(0, 2 * p + 1, 1),
                ],
                0,
            ));
        }
        images::write_grid(
            &Tensor::cat(&rows, 0),
            (INTERPOLATION_STEPS + 2) as usize,
            &dir.join(INTERPOLATION_PNG),
        )?;
    }

    let Some((attributes, names)) = held_out.attributes else {
        return Ok(None);
    };
    let Some(column) = names.iter().position(|n| n == &config.eval.attribute) else {
        return Ok(None);
    };
    let has = attributes.select(1, column as i64).gt(0).to_device(device);
    let with = means.index_select(0, &has.nonzero().squeeze_dim(1));
    let without = means.index_select(0, &has.logical_not().nonzero().squeeze_dim(1));
    if with.size()[0] == 0 || without.size()[0] == 0 {
        return Ok(None);
    }
    let direction = with.mean_dim(&[0i64][..], false, Kind::Float)
        - without.mean_dim(&[0i64][..], false, Kind::Float);
    // Faces without the attribute, so that adding it shows.
    let faces = without.narrow(0, 0, ATTRIBUTE_FACES.min(without.size()[0]));
    let face_images = data::to_unit_float(
        &held_out.images.index_select(
            0,
            &has.logical_not()
                .nonzero()
                .squeeze_dim(1)
                .narrow(0, 0, faces.size()[0])
                .to_device(held_out.images.device()),
        ),
    );
    let mut rows = Vec::new();
    for f in 0..faces.size()[0] {
        let codes: Vec<Tensor> = ATTRIBUTE_STRENGTHS
            .iter()
            .map(|&alpha| faces.get(f) + &direction * alpha)
            .collect();
        rows.push(Tensor::cat(
            &[
                face_images.narrow(0, f, 1).to_device(device),
                model.decode(&Tensor::stack(&codes, 0)),
            ],
            0,
        ));
    }
    images::write_grid(
        &Tensor::cat(&rows, 0),
        ATTRIBUTE_STRENGTHS.len() + 1,
        &dir.join(ATTRIBUTE_PNG),
    )?;
    Ok(Some(config.eval.attribute.clone()))
}

fn to_frame(e: &Evaluation) -> PolarsResult<DataFrame> {
    let f = |name: &str, v: f64| Column::new(name.into(), [v]);
    let u = |name: &str, v: u32| Column::new(name.into(), [v]);
    let evaluated_at =
        Series::new("evaluated_at".into(), [e.evaluated_at.timestamp_micros()]).cast(
            &DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
        )?;
    DataFrame::new(
        1,
        vec![
            u("epoch", e.epoch),
            Column::new("split".into(), [e.split.as_str()]),
            u("images", e.images),
            f("recon_mse", e.recon_mse),
            f("psnr", e.psnr),
            f("ssim", e.ssim),
            f("kl", e.kl),
            u("active_units", e.active_units),
            u("latent_dim", e.latent_dim),
            f("elbo_bpd", e.elbo_bpd),
            f("iwae_bpd", e.iwae_bpd),
            u("iwae_samples", e.iwae_samples),
            u("iwae_images", e.iwae_images),
            Column::new("attribute".into(), [e.attribute.as_deref()]),
            Column::new("likelihood".into(), [LIKELIHOOD]),
            evaluated_at.into(),
        ],
    )
}

fn from_frame(frame: &DataFrame) -> PolarsResult<Evaluation> {
    let missing = || PolarsError::ComputeError("null in evaluation".into());
    let f =
        |name: &str| -> PolarsResult<f64> { frame.column(name)?.f64()?.get(0).ok_or_else(missing) };
    let u =
        |name: &str| -> PolarsResult<u32> { frame.column(name)?.u32()?.get(0).ok_or_else(missing) };
    let micros = frame
        .column("evaluated_at")?
        .cast(&DataType::Int64)?
        .i64()?
        .get(0)
        .ok_or_else(missing)?;
    Ok(Evaluation {
        epoch: u("epoch")?,
        split: frame
            .column("split")?
            .str()?
            .get(0)
            .ok_or_else(missing)?
            .to_string(),
        images: u("images")?,
        recon_mse: f("recon_mse")?,
        psnr: f("psnr")?,
        ssim: f("ssim")?,
        kl: f("kl")?,
        active_units: u("active_units")?,
        latent_dim: u("latent_dim")?,
        elbo_bpd: f("elbo_bpd")?,
        iwae_bpd: f("iwae_bpd")?,
        iwae_samples: u("iwae_samples")?,
        iwae_images: u("iwae_images")?,
        attribute: frame.column("attribute")?.str()?.get(0).map(str::to_string),
        evaluated_at: DateTime::from_timestamp_micros(micros).ok_or_else(missing)?,
    })
}

fn write_parquet(path: &Path, frame: &mut DataFrame) -> Result<(), EvalError> {
    write_atomic_with(path, |file| {
        ParquetWriter::new(file)
            .finish(frame)
            .map(|_| ())
            .map_err(std::io::Error::other)
    })
    .map_err(EvalError::from)
}

/// Writes an evaluation's two Parquet files into run directory `dir`.
pub fn store_evaluation(dir: &Path, e: &Evaluation, stats: &LatentStats) -> Result<(), EvalError> {
    let corrupt = |path: &Path| {
        let path = path.to_path_buf();
        move |err: PolarsError| EvalError::Corrupt {
            path,
            detail: err.to_string(),
        }
    };
    let latent_path = dir.join(LATENT_FILE);
    let mut latent = DataFrame::new(
        stats.kl.len(),
        vec![
            Column::new(
                "dim".into(),
                (0..stats.kl.len() as u32).collect::<Vec<u32>>(),
            ),
            Column::new("kl".into(), stats.kl.clone()),
            Column::new("mean_variance".into(), stats.mean_variance.clone()),
            Column::new(
                "active".into(),
                stats
                    .mean_variance
                    .iter()
                    .map(|&v| v > ACTIVE_UNIT_THRESHOLD)
                    .collect::<Vec<bool>>(),
            ),
        ],
    )
    .map_err(corrupt(&latent_path))?;
    write_parquet(&latent_path, &mut latent)?;
    // The scalar row last: its presence marks the evaluation complete.
    let path = dir.join(EVALUATION_FILE);
    let mut frame = to_frame(e).map_err(corrupt(&path))?;
    write_parquet(&path, &mut frame)
}

fn read_frame(path: &Path) -> Result<Option<DataFrame>, EvalError> {
    if !path.exists() {
        return Ok(None);
    }
    let file = File::open(path).map_err(|e| EvalError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    ParquetReader::new(file)
        .finish()
        .map(Some)
        .map_err(|e| EvalError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
}

/// The evaluation stored in run directory `dir`, if any.
pub fn read_evaluation(dir: &Path) -> Result<Option<Evaluation>, EvalError> {
    let path = dir.join(EVALUATION_FILE);
    match read_frame(&path)? {
        None => Ok(None),
        Some(frame) => from_frame(&frame)
            .map(Some)
            .map_err(|e| EvalError::Corrupt {
                path,
                detail: e.to_string(),
            }),
    }
}

/// The per-dimension statistics stored in run directory `dir`, if any.
pub fn read_latent_stats(dir: &Path) -> Result<Option<LatentStats>, EvalError> {
    let path = dir.join(LATENT_FILE);
    let Some(frame) = read_frame(&path)? else {
        return Ok(None);
    };
    let column = |name: &str| -> PolarsResult<Vec<f64>> {
        Ok(frame.column(name)?.f64()?.into_no_null_iter().collect())
    };
    match (column("kl"), column("mean_variance")) {
        (Ok(kl), Ok(mean_variance)) => Ok(Some(LatentStats { kl, mean_variance })),
        (Err(e), _) | (_, Err(e)) => Err(EvalError::Corrupt {
            path,
            detail: e.to_string(),
        }),
    }
}

/// Loads a model of `config` with the weights in `weights` (for re-evaluating a run).
pub fn load_model(
    config: &RunConfig,
    weights: &Path,
    device: Device,
) -> Result<(tch::nn::VarStore, Vae), model::ModelError> {
    let (mut vs, vae) = model::build(&config.model, config.data.image_size as i64, device, 0);
    model::load_weights(&mut vs, weights)?;
    Ok((vs, vae))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn constant(value: f64) -> Tensor {
        Tensor::full([1, 3, 16, 16], value, (Kind::Float, Device::Cpu))
    }

    #[test]
    fn psnr_matches_its_definition() {
        // MSE 0.01 everywhere: PSNR = 10·log10(1/0.01) = 20 dB.
        let psnr = psnr_per_image(&constant(0.6), &constant(0.5)).double_value(&[0]);
        assert!((psnr - 20.0).abs() < 1e-4, "{psnr}");
    }

    #[test]
    fn ssim_is_one_for_identical_images_and_matches_the_closed_form_for_constants() {
        tch::manual_seed(3);
        let x = Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let same = ssim_per_image(&x, &x);
        assert!((same.double_value(&[0]) - 1.0).abs() < 1e-5);
        let noisy = (&x + Tensor::randn_like(&x) * 0.2).clamp(0.0, 1.0);
        let lower = ssim_per_image(&noisy, &x).double_value(&[0]);
        assert!(lower < 0.9, "{lower}");
        // Constant images: variances vanish and SSIM = (2ab + C1) / (a² + b² + C1).
        let (a, b) = (0.3, 0.7);
        let c1 = 1e-4;
        let expected = (2.0 * a * b + c1) / (a * a + b * b + c1);
        let got = ssim_per_image(&constant(a), &constant(b)).double_value(&[0]);
        assert!((got - expected).abs() < 1e-4, "{got} vs {expected}");
        // Small images use a smaller window rather than failing.
        let small = Tensor::rand([1, 3, 8, 8], (Kind::Float, Device::Cpu));
        assert!((ssim_per_image(&small, &small).double_value(&[0]) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn bits_per_dim_of_a_perfect_fit_is_the_likelihood_constant() {
        let dims = 3.0 * 16.0 * 16.0;
        let nll = gaussian_nll(&constant(0.5), &constant(0.5)).double_value(&[0]);
        assert!((nll - dims * 0.5 * std::f64::consts::PI.ln()).abs() < 1e-2);
        let bpd = bits_per_dim(nll, dims);
        let expected = 0.5 * std::f64::consts::PI.log2() + 255f64.log2();
        assert!((bpd - expected).abs() < 1e-6, "{bpd} vs {expected}");
    }

    #[test]
    fn iwae_bound_agrees_with_a_direct_computation_and_tightens_the_elbo() {
        let config = crate::config::tests::tiny_config();
        let (_vs, model) = model::build(&config.model, 32, Device::Cpu, 5);
        tch::manual_seed(11);
        let x = Tensor::rand([3, 3, 32, 32], (Kind::Float, Device::Cpu));
        let eps = Tensor::randn([3, 4, 8], (Kind::Float, Device::Cpu));
        let bound = tch::no_grad(|| iwae_log_likelihood(&model, &x, &eps));
        // Directly, one sample at a time.
        let (mu, logvar) = tch::no_grad(|| model.encode(&x));
        for i in 0..3 {
            let mut log_weights = Vec::new();
            for k in 0..4 {
                let e = eps.get(i).get(k);
                let z = mu.get(i) + &e * (logvar.get(i) * 0.5).exp();
                let recon = tch::no_grad(|| model.decode(&z.unsqueeze(0)));
                let log_px = -gaussian_nll(&recon, &x.narrow(0, i, 1)).double_value(&[0]);
                let log_pz: f64 = (0..8)
                    .map(|d| {
                        let v = z.double_value(&[d]);
                        -0.5 * v * v - 0.5 * (2.0 * std::f64::consts::PI).ln()
                    })
                    .sum();
                let log_qz: f64 = (0..8)
                    .map(|d| {
                        let v = e.double_value(&[d]);
                        -0.5 * v * v
                            - 0.5 * (2.0 * std::f64::consts::PI).ln()
                            - 0.5 * logvar.double_value(&[i, d])
                    })
                    .sum();
                log_weights.push(log_px + log_pz - log_qz);
            }
            let max = log_weights.iter().cloned().fold(f64::MIN, f64::max);
            let direct =
                max + (log_weights.iter().map(|w| (w - max).exp()).sum::<f64>() / 4.0).ln();
            let got = bound.double_value(&[i]);
            assert!(
                (got - direct).abs() < 1e-2 * direct.abs().max(1.0),
                "{got} vs {direct}"
            );
            // Jensen: the mean of the log weights (an ELBO estimate) is below the bound.
            let elbo = log_weights.iter().sum::<f64>() / 4.0;
            assert!(elbo <= got + 1e-6, "{elbo} > {got}");
        }
    }
}
