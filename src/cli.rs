//! Command-line types (clap). Parsing only; the work is in `commands/` and the library.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// Only warnings and errors on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train the runs an experiment spec describes, resuming interrupted ones.
    Run(RunArgs),
    /// Versions, devices, CPU threads and bf16 support.
    Info(InfoArgs),
    /// Time train steps (forward, backward, Adam) and print the median images per second.
    Bench(BenchArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// CUDA when a GPU is visible, else the CPU.
    Auto,
    Cpu,
    Cuda,
}

#[derive(Debug, Clone, Args)]
pub struct PlacementArgs {
    /// Where to train.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// CPU threads for libtorch (default: libtorch's choice, one per core).
    #[arg(long)]
    pub threads: Option<i32>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The experiment spec (YAML).
    pub spec: PathBuf,
    #[command(flatten)]
    pub placement: PlacementArgs,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
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
    /// Untimed steps first (allocator, kernel selection).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    #[command(flatten)]
    pub placement: PlacementArgs,
    #[arg(long)]
    pub json: bool,
}
