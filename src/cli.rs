//! Command-line types (clap). Parsing only; the work is in `commands/` and the library.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

#[derive(Debug, Parser)]
#[command(
    name = "vaelab",
    version,
    about = "Experiment harness for convolutional VAEs on faces"
)]
pub struct Cli {
    /// Directory that holds one sub-directory per run.
    #[arg(long, global = true, default_value = "runs", env = "VAELAB_RUNS_DIR")]
    pub runs_dir: PathBuf,
    /// Directory that holds one report sub-directory per experiment.
    #[arg(
        long,
        global = true,
        default_value = "report",
        env = "VAELAB_REPORT_DIR"
    )]
    pub report_dir: PathBuf,
    /// Only warnings and errors on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show every run a spec expands to, where each stands and what is left, before training.
    Plan(PlanArgs),
    /// Train the runs an experiment spec describes, resuming interrupted ones.
    Run(RunArgs),
    /// Figures, comparison tables and visuals of an experiment into report/<experiment>/.
    Report(ReportArgs),
    /// Write (and with --submit, submit) a Slurm job array over the runs not yet done.
    Slurm(SlurmArgs),
    /// Every run in the store with progress, last losses and ETA.
    Status(StatusArgs),
    /// A live, read-only web dashboard over the run store.
    Serve(ServeArgs),
    /// Every run ever trained, found by its settings and results.
    Runs(RunsArgs),
    /// One row per run (flattened config, state, final metrics, evaluation) to Parquet or CSV.
    Export(ExportArgs),
    /// List what can go from the store (with --apply, remove it): runs no spec produces,
    /// failed runs, old checkpoints.
    Gc(GcArgs),
    /// Versions, devices, CPU threads and bf16 support.
    Info(InfoArgs),
    /// Time train steps (forward, backward, Adam) and print the median images per second.
    Bench(BenchArgs),
}

/// `--device`: `auto` (CUDA when a GPU is visible, else the CPU), `cpu`, `cuda` (the
/// first GPU) or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda(usize),
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => text
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("expected auto, cpu, cuda or cuda:N, got {text:?}")),
        }
    }
}

/// Written as on the command line (`cuda:1`), so a worker's arguments read as typed.
impl Serialize for DeviceChoice {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceChoice {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(index) => write!(f, "cuda:{index}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
pub struct PlacementArgs {
    /// Where to train: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// CPU threads for libtorch (default: libtorch's choice, one per core).
    #[arg(long)]
    pub threads: Option<i32>,
}

#[derive(Debug, Args)]
pub struct SlurmArgs {
    /// The experiment spec (YAML).
    pub spec: PathBuf,
    /// Only these runs: id prefixes or label globs (`plain/*`), comma-separated or repeated.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit per array task, as sbatch takes it (`02:00:00`, `1-00:00:00`).
    #[arg(long)]
    pub time: Option<String>,
    #[arg(long)]
    pub gpus_per_task: Option<u32>,
    /// Also passed to each task as `--threads`.
    #[arg(long)]
    pub cpus_per_task: Option<u32>,
    /// Memory per node, as sbatch takes it (`32G`).
    #[arg(long)]
    pub mem: Option<String>,
    /// At most this many array tasks at once (`--array=0-N%K`).
    #[arg(long)]
    pub max_parallel: Option<usize>,
    /// An extra `#SBATCH` line (`--account=lab`); repeat for more.
    #[arg(long = "sbatch", value_name = "OPTION")]
    pub extra: Vec<String>,
    /// Seconds before the time limit at which tasks checkpoint and requeue themselves.
    #[arg(long, default_value_t = 300)]
    pub warning_seconds: u32,
    /// Submit with sbatch and print the job id (otherwise only write the script).
    #[arg(long)]
    pub submit: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The experiment spec (YAML).
    pub spec: PathBuf,
    /// Only these runs: id prefixes or label globs (`plain/*`), comma-separated or repeated.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
pub struct RunArgs {
    /// The experiment spec (YAML).
    pub spec: PathBuf,
    /// Only these runs: id prefixes or label globs (`plain/*`), comma-separated or repeated.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Train at most this many runs in this process, then stop.
    #[arg(long)]
    pub max_runs: Option<usize>,
    /// Under Slurm: on SIGUSR1 (the time-limit warning `vaelab slurm` asks for), checkpoint
    /// and requeue this job so that it resumes later.
    #[arg(long)]
    pub slurm_requeue: bool,
    /// Under Slurm: the job's manifest; an array task refuses to train if the spec changed
    /// since the job was submitted (`vaelab slurm` writes this into its script).
    #[arg(long, value_name = "PATH")]
    pub manifest: Option<PathBuf>,
    /// Train with this many worker processes at once, under the run locks, spread over
    /// `--devices` (or sharing the CPU's threads). Several workers may share one GPU.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// The devices the workers take in turn, e.g. `cuda:0,cuda:1` (default: `--device`).
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<DeviceChoice>,
    #[command(flatten)]
    pub placement: PlacementArgs,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The experiment spec (YAML).
    pub spec: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The port to listen on (0: any free port).
    #[arg(long, default_value_t = 6006)]
    pub port: u16,
    /// The address to listen on; anything but a loopback address lets others read it.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// `FIELD=VALUE`, `FIELD<VALUE` or `FIELD>VALUE`, repeatable (all must hold): a dotted
    /// config path (`model.residual`, `train.beta`), a metric (`val_loss`, `psnr`,
    /// `calibrated_iwae_bpd`) or a column as `vaelab export` writes it.
    #[arg(long = "where", value_name = "CONDITION")]
    pub conditions: Vec<String>,
    /// Only runs trained for this experiment (the spec's `name`).
    #[arg(long)]
    pub experiment: Option<String>,
    /// Only runs with this status, as `vaelab status` names it.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(vaelab_core::store::Standing::WORDS))]
    pub status: Option<String>,
    /// Sort by this field, smallest first (runs without it last).
    #[arg(long)]
    pub sort: Option<String>,
    /// Every column of every listed run as JSON.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Every column of every listed run as CSV.
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// The specs whose runs stay (default: every `experiments/*.yaml` here).
    pub specs: Vec<PathBuf>,
    /// Remove what is listed; without it nothing is touched.
    #[arg(long)]
    pub apply: bool,
    /// With --apply, also remove failed runs that can resume from a checkpoint.
    #[arg(long)]
    pub resumable: bool,
    /// With --apply, also remove this failed, resumable run (an id prefix; repeatable).
    #[arg(long = "run", value_name = "ID")]
    pub runs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only the runs this spec produces (default: every run in the store).
    pub spec: Option<PathBuf>,
    /// The file to write: `.parquet` or `.csv`.
    #[arg(long)]
    pub to: PathBuf,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecisionChoice {
    Fp32,
    Bf16,
}

/// A switch given as `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelChoice {
    Residual,
    Plain,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value_t = ModelChoice::Residual)]
    pub model: ModelChoice,
    #[arg(long, default_value_t = 64)]
    pub image_size: i64,
    #[arg(long, default_value_t = 64)]
    pub batch_size: i64,
    #[arg(long, default_value_t = 128)]
    pub latent_dim: usize,
    /// Arithmetic of the forward and backward passes (weights and Adam stay fp32).
    #[arg(long, value_enum, default_value_t = PrecisionChoice::Fp32)]
    pub precision: PrecisionChoice,
    /// Activations and convolution weights in NHWC memory layout.
    #[arg(long)]
    pub channels_last: bool,
    /// On CUDA, keep cuDNN's default algorithm choice instead of timing them (training times them).
    #[arg(long)]
    pub no_cudnn_benchmark: bool,
    /// fp32 convolutions and matmuls as TF32 on Ampere and later GPUs (libtorch's default
    /// for convolutions, and training's `train.tf32`); `off` for true fp32 rows. The state
    /// libtorch reports is in every result.
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    pub tf32: OnOff,
    /// Also time one full epoch over this many images held on the device as uint8, as
    /// training holds a decoded dataset (CelebA's training split is 162770).
    #[arg(long)]
    pub epoch_images: Option<usize>,
    /// Also time each step's forward pass (with the loss), backward pass and optimizer
    /// update apart, over another --steps steps.
    #[arg(long)]
    pub phases: bool,
    /// Untimed steps first (allocator, kernel selection).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    #[command(flatten)]
    pub placement: PlacementArgs,
    /// Instead: decode rate of this CelebA tree, and an epoch on its cache vs in memory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// With --data-dir: first write this many generated 178×218 JPEGs there (CelebA layout);
    /// with --fingerprint-dir: this many 16×16 ones, unless the tree is there already.
    #[arg(long)]
    pub generate: Option<usize>,
    /// Instead: the content fingerprint of this CelebA tree, first with nothing remembered,
    /// then memoized, and the `plan` of a spec that reads it.
    #[arg(long)]
    pub fingerprint_dir: Option<PathBuf>,
    /// With --data-dir: centre crop before resizing.
    #[arg(long)]
    pub crop: Option<u32>,
    /// Instead of training, time the expansion and hashing of a grid of this many runs.
    #[arg(long)]
    pub plan_runs: Option<usize>,
    /// Instead of training, time `vaelab report` on this many made-up finished runs.
    #[arg(long)]
    pub report_runs: Option<usize>,
    /// With --report-runs: epochs per run.
    #[arg(long, default_value_t = 100)]
    pub report_epochs: u32,
    /// Instead of training, time the dashboard's experiment page over this many made-up
    /// runs (of --report-epochs epochs each), cold and with its metrics cache warm.
    #[arg(long)]
    pub serve_runs: Option<usize>,
    /// Instead of training, time `eval.fid` for this many samples: the metric math (FID,
    /// KID, precision/recall) and, with --fid-extractor, the feature extraction.
    #[arg(long)]
    pub fid_samples: Option<i64>,
    /// With --fid-samples: the TorchScript extractor to time (else random 2048-wide features).
    #[arg(long)]
    pub fid_extractor: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}
