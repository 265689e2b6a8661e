//! The end-of-run evaluation's files: `evaluation.parquet` (one row of scalars),
//! `latent.parquet` (one row per latent dimension) and the pictures in `evaluation/`.
use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use polars::prelude::*;

use super::{RunDir, StoreError, write_parquet};
use crate::experiment::config::{EvalConfig, Likelihood};

/// The decoder likelihoods the bounds assume, in words for the report.
pub fn likelihood_description(likelihood: Likelihood) -> &'static str {
    match likelihood {
        Likelihood::Fixed => {
            "Gaussian decoder N(x̂, ½·I) on pixels scaled to [0, 1] (the seed's sum-of-squares loss is its negative log-likelihood up to a constant)"
        }
        Likelihood::Learned => {
            "Gaussian decoder N(x̂, σ_c²·I) with σ learned per colour channel (σ-VAE), trained by its full negative log-likelihood"
        }
    }
}

/// How a density on [0, 1] pixels becomes a probability of 8-bit values.
pub const DISCRETISATION: &str = "a density on pixels in [0, 1] becomes a probability of the 8-bit values by the bin width 1/255";

/// The calibrated likelihood, in words for the report.
pub const CALIBRATED_LIKELIHOOD: &str = "the same decoder means with σ_c² set per colour channel to its maximum-likelihood value on the training set (the mean squared error of one posterior sample's decoding, over up to 10,000 training images): the calibrated decoder of σ-VAE, whose bits/dim compare with published VAE results";

/// Active-unit threshold on the variance over the data of the posterior mean (Burda et al.).
pub const ACTIVE_UNIT_THRESHOLD: f64 = 0.01;

const EVALUATION_FILE: &str = "evaluation.parquet";
const LATENT_FILE: &str = "latent.parquet";
const EVALUATION_DIR: &str = "evaluation";

/// How far along an attribute direction the attribute picture walks, in multiples of it:
/// its columns, which the evaluation draws and the report captions.
pub const ATTRIBUTE_STRENGTHS: [f64; 6] = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5];
/// Latent dimensions a traversal shows: those with the highest KL.
pub const TRAVERSED_DIMENSIONS: usize = 8;
/// Offsets from the posterior mean a traversal decodes, in prior standard deviations.
pub const TRAVERSAL_OFFSETS: [f64; 7] = [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0];

/// The pictures of an evaluation, in `runs/<id>/evaluation/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvaluationPicture {
    /// The first evaluation images over their reconstructions from the posterior mean.
    Reconstructions,
    /// Fixed prior noise (drawn from the dataset seed) decoded.
    Prior,
    /// Straight lines between pairs of posterior means, decoded.
    Interpolation,
    /// Faces moved along an attribute's latent direction.
    Attribute,
    /// The highest-KL latent dimensions, each swept around one image's posterior mean.
    Traversal,
}

impl EvaluationPicture {
    pub const ALL: [EvaluationPicture; 5] = [
        Self::Reconstructions,
        Self::Prior,
        Self::Interpolation,
        Self::Attribute,
        Self::Traversal,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            Self::Reconstructions => "reconstructions.png",
            Self::Prior => "prior.png",
            Self::Interpolation => "interpolation.png",
            Self::Attribute => "attribute.png",
            Self::Traversal => "traversal.png",
        }
    }
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
    /// The run's own decoder likelihood, which `elbo_bpd` and `iwae_bpd` assume.
    pub likelihood: Likelihood,
    /// The run's own decoder σ per colour channel (√½ each when fixed).
    pub decoder_sigma: [f64; 3],
    /// σ per colour channel at its maximum-likelihood value on the training set.
    pub calibrated_sigma: [f64; 3],
    /// `elbo_bpd` and `iwae_bpd` under the calibrated σ; NaN in evaluations made before
    /// they were computed (such evaluations are made again).
    pub calibrated_elbo_bpd: f64,
    pub calibrated_iwae_bpd: f64,
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

impl RunDir {
    /// Pictures of the end-of-run evaluation (its numbers sit beside `metrics.parquet`).
    pub fn evaluation_dir(&self) -> PathBuf {
        self.path.join(EVALUATION_DIR)
    }

    pub fn evaluation_picture(&self, picture: EvaluationPicture) -> PathBuf {
        self.evaluation_dir().join(picture.file_name())
    }

    /// The stored evaluation, if any.
    pub fn read_evaluation(&self) -> Result<Option<Evaluation>, StoreError> {
        read_evaluation(&self.path)
    }

    /// The stored per-dimension statistics, if any.
    pub fn read_latent_stats(&self) -> Result<Option<LatentStats>, StoreError> {
        read_latent_stats(&self.path)
    }

    /// Writes both Parquet files of an evaluation; `evaluation.parquet` last, so its
    /// presence marks the evaluation complete.
    pub fn write_evaluation(&self, e: &Evaluation, stats: &LatentStats) -> Result<(), StoreError> {
        write_evaluation(&self.path, e, stats)
    }

    /// Whether the run holds an evaluation of `epoch` made with `settings`.
    pub fn evaluation_is_current(&self, settings: &EvalConfig, epoch: u32) -> bool {
        is_current(&self.path, settings, epoch)
    }
}

/// Whether `run` holds an evaluation of `epoch` made with `settings`, with every number
/// and picture that evaluations make now (older ones are made again).
fn is_current(dir: &Path, settings: &EvalConfig, epoch: u32) -> bool {
    matches!(
        read_evaluation(dir),
        Ok(Some(e)) if e.epoch == epoch
            && e.iwae_samples as usize == settings.iwae_samples
            && e.iwae_images as usize
                == settings.iwae_images.min(e.images as usize)
            && (e.attribute.is_none() || e.attribute.as_deref() == Some(settings.attribute.as_str()))
            && e.calibrated_iwae_bpd.is_finite()
    ) && dir
        .join(EVALUATION_DIR)
        .join(EvaluationPicture::Traversal.file_name())
        .is_file()
}

/// The `likelihood` column's value.
fn likelihood_name(likelihood: Likelihood) -> &'static str {
    match likelihood {
        Likelihood::Fixed => "fixed",
        Likelihood::Learned => "learned",
    }
}

/// One row of `evaluation.parquet`: its columns are defined here only.
pub(crate) fn to_frame(e: &Evaluation) -> PolarsResult<DataFrame> {
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
            Column::new("likelihood".into(), [likelihood_name(e.likelihood)]),
            f("decoder_sigma_r", e.decoder_sigma[0]),
            f("decoder_sigma_g", e.decoder_sigma[1]),
            f("decoder_sigma_b", e.decoder_sigma[2]),
            f("calibrated_sigma_r", e.calibrated_sigma[0]),
            f("calibrated_sigma_g", e.calibrated_sigma[1]),
            f("calibrated_sigma_b", e.calibrated_sigma[2]),
            f("calibrated_elbo_bpd", e.calibrated_elbo_bpd),
            f("calibrated_iwae_bpd", e.calibrated_iwae_bpd),
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
    // Columns added after the first evaluations were written: NaN where absent.
    let added_later = |name: &str| f(name).unwrap_or(f64::NAN);
    let channels =
        |stem: &str| ["r", "g", "b"].map(|channel| added_later(&format!("{stem}_{channel}")));
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
        likelihood: match frame.column("likelihood")?.str()?.get(0) {
            Some("learned") => Likelihood::Learned,
            _ => Likelihood::Fixed,
        },
        decoder_sigma: channels("decoder_sigma"),
        calibrated_sigma: channels("calibrated_sigma"),
        calibrated_elbo_bpd: added_later("calibrated_elbo_bpd"),
        calibrated_iwae_bpd: added_later("calibrated_iwae_bpd"),
        iwae_samples: u("iwae_samples")?,
        iwae_images: u("iwae_images")?,
        attribute: frame.column("attribute")?.str()?.get(0).map(str::to_string),
        evaluated_at: DateTime::from_timestamp_micros(micros).ok_or_else(missing)?,
    })
}

/// Writes an evaluation's two Parquet files into run directory `dir`; the scalar row last.
pub(super) fn write_evaluation(
    dir: &Path,
    e: &Evaluation,
    stats: &LatentStats,
) -> Result<(), StoreError> {
    let corrupt = |path: &Path| {
        let path = path.to_path_buf();
        move |err: PolarsError| StoreError::Corrupt {
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
    super::crash_point(|| "evaluation-partial".to_string());
    // The scalar row last: its presence marks the evaluation complete.
    let path = dir.join(EVALUATION_FILE);
    let mut frame = to_frame(e).map_err(corrupt(&path))?;
    write_parquet(&path, &mut frame)
}

fn read_frame(path: &Path) -> Result<Option<DataFrame>, StoreError> {
    if !path.exists() {
        return Ok(None);
    }
    let file = File::open(path).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    ParquetReader::new(file)
        .finish()
        .map(Some)
        .map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
}

/// The evaluation stored in run directory `dir`, if any.
pub(super) fn read_evaluation(dir: &Path) -> Result<Option<Evaluation>, StoreError> {
    let path = dir.join(EVALUATION_FILE);
    match read_frame(&path)? {
        None => Ok(None),
        Some(frame) => from_frame(&frame)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                path,
                detail: e.to_string(),
            }),
    }
}

/// The per-dimension statistics stored in run directory `dir`, if any.
fn read_latent_stats(dir: &Path) -> Result<Option<LatentStats>, StoreError> {
    let path = dir.join(LATENT_FILE);
    let Some(frame) = read_frame(&path)? else {
        return Ok(None);
    };
    let column = |name: &str| -> PolarsResult<Vec<f64>> {
        Ok(frame.column(name)?.f64()?.into_no_null_iter().collect())
    };
    match (column("kl"), column("mean_variance")) {
        (Ok(kl), Ok(mean_variance)) => Ok(Some(LatentStats { kl, mean_variance })),
        (Err(e), _) | (_, Err(e)) => Err(StoreError::Corrupt {
            path,
            detail: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `latent.parquet` holds one row per dimension: its KL, the variance over the data of
    /// its posterior mean, and whether that variance is above the 0.01 threshold.
    #[test]
    fn latent_statistics_mark_units_active_above_the_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let stats = LatentStats {
            kl: vec![0.5, 0.0, 2.0],
            mean_variance: vec![0.005, ACTIVE_UNIT_THRESHOLD, 0.02],
        };
        let evaluation = Evaluation {
            epoch: 3,
            split: "validation".into(),
            images: 8,
            recon_mse: 0.1,
            psnr: 10.0,
            ssim: 0.5,
            kl: 2.5,
            active_units: 1,
            latent_dim: 3,
            elbo_bpd: 8.9,
            iwae_bpd: 8.8,
            likelihood: Likelihood::Learned,
            decoder_sigma: [0.1, 0.2, 0.3],
            calibrated_sigma: [0.11, 0.21, 0.31],
            calibrated_elbo_bpd: 5.0,
            calibrated_iwae_bpd: 4.9,
            iwae_samples: 4,
            iwae_images: 8,
            attribute: None,
            evaluated_at: DateTime::from_timestamp_micros(1_000_000).unwrap(),
        };
        write_evaluation(dir.path(), &evaluation, &stats).unwrap();
        let frame = read_frame(&dir.path().join(LATENT_FILE)).unwrap().unwrap();
        let column = |name: &str| frame.column(name).unwrap().clone();
        assert_eq!(
            column("dim").u32().unwrap().to_vec(),
            [Some(0), Some(1), Some(2)]
        );
        assert_eq!(
            column("active")
                .bool()
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            [Some(false), Some(false), Some(true)],
            "strictly above {ACTIVE_UNIT_THRESHOLD}"
        );
        assert_eq!(read_latent_stats(dir.path()).unwrap(), Some(stats));
        assert_eq!(read_evaluation(dir.path()).unwrap(), Some(evaluation));
    }
}
