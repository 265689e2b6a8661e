//! The end-of-run evaluation's files: `evaluation.parquet` (one row of scalars),
//! `latent.parquet` (one row per latent dimension) and the pictures in `evaluation/`.
//!
//! Over 500 lines because `evaluation.parquet`'s schema is one table here, an entry per
//! column (about 200 lines), and its tests sit beside it.
use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use polars::prelude::*;

use super::{RunDir, StoreError, write_parquet};
use crate::experiment::config::{EvalConfig, FidConfig, Likelihood, choice_name, parse_choice};

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
pub const DISCRETISATION: &str = "each 8-bit value's probability is the decoder Gaussian's mass over that value's bin of width 1/255 (the bins of 0 and 255 open to ±∞), so no pixel's probability exceeds 1 and the bits per dimension are true bounds";

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
    /// The bits per dimension are of the discretized Gaussian (each 8-bit value's bin),
    /// a true bound; evaluations made before, with a density times the bin width, are made
    /// again.
    pub discretized: bool,
    /// Sample quality in the `eval.fid` extractor's feature space, when it was set.
    pub fid: Option<FidScores>,
    /// The attribute whose direction was drawn, when the dataset has it.
    pub attribute: Option<String>,
    pub evaluated_at: DateTime<Utc>,
}

/// FID and its companions, with the protocol that produced them: a number is only worth
/// its protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct FidScores {
    /// Prior samples against the reference images.
    pub fid: f64,
    /// Decoded posterior means of the evaluation images against those images.
    pub reconstruction_fid: f64,
    /// Unbiased MMD² with the cubic kernel: mean and standard deviation over subsets.
    pub kid: f64,
    pub kid_std: f64,
    /// Kynkäänniemi et al.'s k-NN precision and recall (k = 3) of the prior samples.
    pub precision: f64,
    pub recall: f64,
    /// SHA-256 of the extractor file.
    pub extractor_sha256: String,
    pub samples: u32,
    /// `train` or `evaluation`, and how many of those images were compared.
    pub reference: String,
    pub reference_images: u32,
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
            && e.discretized
            && fid_is_current(e.fid.as_ref(), settings.fid.as_ref())
    ) && dir
        .join(EVALUATION_DIR)
        .join(EvaluationPicture::Traversal.file_name())
        .is_file()
}

/// Whether stored FID scores were made under `settings` (any scores do when FID is off):
/// the same sample count, reference and extractor file, by content.
fn fid_is_current(scores: Option<&FidScores>, settings: Option<&FidConfig>) -> bool {
    let Some(settings) = settings else {
        return true;
    };
    scores.is_some_and(|s| {
        s.samples as usize == settings.samples
            && s.reference == choice_name(&settings.reference)
            && extractor_sha256(&settings.extractor).is_ok_and(|hash| hash == s.extractor_sha256)
    })
}

/// The SHA-256 of a feature extractor's file, in hex: recorded with every number it
/// produced. Remembered per (path, size, modification time), so `status` over a sweep
/// reads a 100 MB extractor once, not once per run.
pub fn extractor_sha256(path: &Path) -> Result<String, StoreError> {
    use sha2::{Digest, Sha256};
    type Key = (PathBuf, u64, Option<std::time::SystemTime>);
    static KNOWN: std::sync::Mutex<Vec<(Key, String)>> = std::sync::Mutex::new(Vec::new());
    let metadata = std::fs::metadata(path)
        .map_err(super::io_err(path, "cannot read the feature extractor"))?;
    let key: Key = (path.to_path_buf(), metadata.len(), metadata.modified().ok());
    if let Some((_, hash)) = KNOWN
        .lock()
        .ok()
        .and_then(|k| k.iter().find(|(k, _)| *k == key).cloned())
    {
        return Ok(hash);
    }
    let mut file =
        File::open(path).map_err(super::io_err(path, "cannot read the feature extractor"))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .map_err(super::io_err(path, "cannot read the feature extractor"))?;
    let hash: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if let Ok(mut known) = KNOWN.lock() {
        known.push((key, hash.clone()));
    }
    Ok(hash)
}

/// How one column of `evaluation.parquet` holds its value.
enum Cell {
    /// A float; `added_later` columns are absent from older files and read as NaN.
    Float {
        get: fn(&Evaluation) -> f64,
        set: fn(&mut Evaluation, f64),
        added_later: bool,
    },
    /// A count; `added_later` columns are absent from older files and read as 0.
    Count {
        get: fn(&Evaluation) -> u32,
        set: fn(&mut Evaluation, u32),
        added_later: bool,
    },
    /// Text; `added_later` columns are absent from older files and read as none.
    Text {
        get: fn(&Evaluation) -> Option<String>,
        set: fn(&mut Evaluation, Option<&str>),
        added_later: bool,
    },
}

/// One column of `evaluation.parquet`: its name and its cell.
struct EvaluationColumn {
    name: &'static str,
    cell: Cell,
}

macro_rules! float {
    ($name:literal, $($field:tt)+) => {
        float!(@ $name, false, $($field)+)
    };
    (@ $name:literal, $later:expr, $($field:tt)+) => {
        EvaluationColumn {
            name: $name,
            cell: Cell::Float {
                get: |e| e.$($field)+,
                set: |e, v| e.$($field)+ = v,
                added_later: $later,
            },
        }
    };
}

macro_rules! float_added_later {
    ($name:literal, $($field:tt)+) => {
        float!(@ $name, true, $($field)+)
    };
}

/// A float of [`FidScores`]: NaN without them; a NaN read back makes none.
macro_rules! fid_float {
    ($name:literal, $field:ident) => {
        EvaluationColumn {
            name: $name,
            cell: Cell::Float {
                get: |e| e.fid.as_ref().map_or(f64::NAN, |f| f.$field),
                set: |e, v| {
                    if !v.is_nan() {
                        fid_scores(e).$field = v;
                    }
                },
                added_later: true,
            },
        }
    };
}

macro_rules! count {
    ($field:ident) => {
        EvaluationColumn {
            name: stringify!($field),
            cell: Cell::Count {
                get: |e| e.$field,
                set: |e, v| e.$field = v,
                added_later: false,
            },
        }
    };
}

/// Every column but `evaluated_at` (the last), in file order: the file's schema is
/// declared here only, and writing, reading and `export` follow from it. A new end-of-run
/// metric is one entry here and its field in [`Evaluation`].
const COLUMNS: [EvaluationColumn; 34] = [
    count!(epoch),
    EvaluationColumn {
        name: "split",
        cell: Cell::Text {
            get: |e| Some(e.split.clone()),
            set: |e, v| e.split = v.unwrap_or_default().to_string(),
            added_later: false,
        },
    },
    count!(images),
    float!("recon_mse", recon_mse),
    float!("psnr", psnr),
    float!("ssim", ssim),
    float!("kl", kl),
    count!(active_units),
    count!(latent_dim),
    float!("elbo_bpd", elbo_bpd),
    float!("iwae_bpd", iwae_bpd),
    count!(iwae_samples),
    count!(iwae_images),
    EvaluationColumn {
        name: "attribute",
        cell: Cell::Text {
            get: |e| e.attribute.clone(),
            set: |e, v| e.attribute = v.map(str::to_string),
            added_later: false,
        },
    },
    EvaluationColumn {
        name: "likelihood",
        cell: Cell::Text {
            get: |e| Some(choice_name(&e.likelihood)),
            set: |e, v| e.likelihood = v.and_then(parse_choice).unwrap_or_default(),
            added_later: false,
        },
    },
    float_added_later!("decoder_sigma_r", decoder_sigma[0]),
    float_added_later!("decoder_sigma_g", decoder_sigma[1]),
    float_added_later!("decoder_sigma_b", decoder_sigma[2]),
    float_added_later!("calibrated_sigma_r", calibrated_sigma[0]),
    float_added_later!("calibrated_sigma_g", calibrated_sigma[1]),
    float_added_later!("calibrated_sigma_b", calibrated_sigma[2]),
    float_added_later!("calibrated_elbo_bpd", calibrated_elbo_bpd),
    float_added_later!("calibrated_iwae_bpd", calibrated_iwae_bpd),
    EvaluationColumn {
        name: "discretized",
        cell: Cell::Count {
            get: |e| u32::from(e.discretized),
            set: |e, v| e.discretized = v == 1,
            added_later: true,
        },
    },
    fid_float!("fid", fid),
    fid_float!("reconstruction_fid", reconstruction_fid),
    fid_float!("kid", kid),
    fid_float!("kid_std", kid_std),
    fid_float!("precision", precision),
    fid_float!("recall", recall),
    EvaluationColumn {
        name: "fid_extractor_sha256",
        cell: Cell::Text {
            get: |e| e.fid.as_ref().map(|f| f.extractor_sha256.clone()),
            set: |e, v| {
                if let Some(hash) = v {
                    fid_scores(e).extractor_sha256 = hash.to_string();
                }
            },
            added_later: true,
        },
    },
    EvaluationColumn {
        name: "fid_samples",
        cell: Cell::Count {
            get: |e| e.fid.as_ref().map_or(0, |f| f.samples),
            set: |e, v| {
                if e.fid.is_some() {
                    fid_scores(e).samples = v;
                }
            },
            added_later: true,
        },
    },
    EvaluationColumn {
        name: "fid_reference",
        cell: Cell::Text {
            get: |e| e.fid.as_ref().map(|f| f.reference.clone()),
            set: |e, v| {
                if let Some(reference) = v {
                    fid_scores(e).reference = reference.to_string();
                }
            },
            added_later: true,
        },
    },
    EvaluationColumn {
        name: "fid_reference_images",
        cell: Cell::Count {
            get: |e| e.fid.as_ref().map_or(0, |f| f.reference_images),
            set: |e, v| {
                if e.fid.is_some() {
                    fid_scores(e).reference_images = v;
                }
            },
            added_later: true,
        },
    },
];

/// The evaluation's FID scores, made (all NaN) when the first of their columns is read.
fn fid_scores(e: &mut Evaluation) -> &mut FidScores {
    e.fid.get_or_insert_with(|| FidScores {
        fid: f64::NAN,
        reconstruction_fid: f64::NAN,
        kid: f64::NAN,
        kid_std: f64::NAN,
        precision: f64::NAN,
        recall: f64::NAN,
        extractor_sha256: String::new(),
        samples: 0,
        reference: String::new(),
        reference_images: 0,
    })
}

const EVALUATED_AT: &str = "evaluated_at";

impl Evaluation {
    /// An evaluation with nothing filled in yet, to be read into.
    fn blank(evaluated_at: DateTime<Utc>) -> Self {
        Self {
            epoch: 0,
            split: String::new(),
            images: 0,
            recon_mse: f64::NAN,
            psnr: f64::NAN,
            ssim: f64::NAN,
            kl: f64::NAN,
            active_units: 0,
            latent_dim: 0,
            elbo_bpd: f64::NAN,
            iwae_bpd: f64::NAN,
            likelihood: Likelihood::default(),
            decoder_sigma: [f64::NAN; 3],
            calibrated_sigma: [f64::NAN; 3],
            calibrated_elbo_bpd: f64::NAN,
            calibrated_iwae_bpd: f64::NAN,
            iwae_samples: 0,
            iwae_images: 0,
            discretized: false,
            fid: None,
            attribute: None,
            evaluated_at,
        }
    }
}

/// One row of `evaluation.parquet`, column by column from [`COLUMNS`].
pub(crate) fn to_frame(e: &Evaluation) -> PolarsResult<DataFrame> {
    let evaluated_at = Series::new(EVALUATED_AT.into(), [e.evaluated_at.timestamp_micros()]).cast(
        &DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
    )?;
    let mut columns: Vec<Column> = COLUMNS
        .iter()
        .map(|column| {
            let name = column.name.into();
            match column.cell {
                Cell::Float { get, .. } => Column::new(name, [get(e)]),
                Cell::Count { get, .. } => Column::new(name, [get(e)]),
                Cell::Text { get, .. } => Column::new(name, [get(e)]),
            }
        })
        .collect();
    columns.push(evaluated_at.into());
    DataFrame::new(1, columns)
}

fn from_frame(frame: &DataFrame) -> PolarsResult<Evaluation> {
    let missing = || PolarsError::ComputeError("null in evaluation".into());
    let micros = frame
        .column(EVALUATED_AT)?
        .cast(&DataType::Int64)?
        .i64()?
        .get(0)
        .ok_or_else(missing)?;
    let mut e = Evaluation::blank(DateTime::from_timestamp_micros(micros).ok_or_else(missing)?);
    for column in &COLUMNS {
        let found = frame.column(column.name);
        match column.cell {
            Cell::Float {
                set, added_later, ..
            } => match found {
                Err(_) if added_later => set(&mut e, f64::NAN),
                found => set(&mut e, found?.f64()?.get(0).ok_or_else(missing)?),
            },
            Cell::Count {
                set, added_later, ..
            } => match found {
                Err(_) if added_later => set(&mut e, 0),
                found => set(&mut e, found?.u32()?.get(0).ok_or_else(missing)?),
            },
            Cell::Text {
                set, added_later, ..
            } => match found {
                Err(_) if added_later => set(&mut e, None),
                found => set(&mut e, found?.str()?.get(0)),
            },
        }
    }
    Ok(e)
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
pub(crate) mod tests {
    use super::*;

    pub(crate) fn example() -> Evaluation {
        Evaluation {
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
            discretized: true,
            fid: None,
            attribute: None,
            evaluated_at: DateTime::from_timestamp_micros(1_000_000).unwrap(),
        }
    }

    #[test]
    fn every_column_reads_back_into_its_own_field() {
        let mut written = Evaluation::blank(DateTime::from_timestamp_micros(7).unwrap());
        for (i, column) in COLUMNS.iter().enumerate() {
            match column.cell {
                Cell::Float { set, .. } => set(&mut written, 0.5 + i as f64),
                Cell::Count { set, .. } => set(&mut written, 100 + i as u32),
                Cell::Text { .. } => {}
            }
        }
        written.split = "train".into();
        written.attribute = Some("Smiling".into());
        written.likelihood = Likelihood::Learned;
        written.discretized = true;
        let frame = to_frame(&written).unwrap();
        let names: Vec<&str> = frame
            .get_column_names()
            .iter()
            .map(|n| n.as_str())
            .collect();
        let mut expected: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
        expected.push(EVALUATED_AT);
        assert_eq!(names, expected);
        assert_eq!(
            frame.column("likelihood").unwrap().str().unwrap().get(0),
            Some("learned")
        );
        assert_eq!(from_frame(&frame).unwrap(), written);
    }

    #[test]
    fn evaluations_without_later_columns_read_them_as_nan() {
        let mut frame = to_frame(&example()).unwrap();
        let _ = frame.drop_in_place("calibrated_iwae_bpd").unwrap();
        let read = from_frame(&frame).unwrap();
        assert!(read.calibrated_iwae_bpd.is_nan());
        assert_eq!(read.iwae_bpd, example().iwae_bpd);
        let _ = frame.drop_in_place("psnr").unwrap();
        assert!(
            from_frame(&frame).is_err(),
            "an original column is required"
        );
    }

    /// `latent.parquet` holds one row per dimension: its KL, the variance over the data of
    /// its posterior mean, and whether that variance is above the 0.01 threshold.
    #[test]
    fn latent_statistics_mark_units_active_above_the_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let stats = LatentStats {
            kl: vec![0.5, 0.0, 2.0],
            mean_variance: vec![0.005, ACTIVE_UNIT_THRESHOLD, 0.02],
        };
        let evaluation = example();
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
