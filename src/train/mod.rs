//! Training one run: the epoch loop, evaluation, samples, checkpoints and resume.
//!
//! Resume is exact: a checkpoint holds the weights, Adam's moments and step, and the epoch;
//! every random draw is a function of (seed, epoch, step), so a run killed at any instant
//! and resumed replays the interrupted epoch and ends where an uninterrupted run ends.
mod draws;
pub mod schedule;
pub mod step;
mod trainer;

use trainer::Trainer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;
use tch::Device;

use crate::data::DataError;
use crate::evaluate::EvalError;
use crate::experiment::plan::PlannedRun;
use crate::model::ModelError;
use crate::optim::adam::OptimError;
use crate::progress::Reporter;
use crate::runtime::device::{device_name, libtorch_version};
use crate::store::{self, RunState, RunStatus, RunStore, SlurmIds, StoreError, Target};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Optim(#[from] OptimError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{}: {source}", run.display())]
    Eval {
        run: PathBuf,
        #[source]
        source: EvalError,
    },
    #[error(
        "{}: loss became {value} in epoch {epoch}; lower train.lr or train.beta",
        run.display()
    )]
    NonFinite {
        run: PathBuf,
        epoch: u32,
        value: f64,
    },
    #[error("{}: {source}", run.display())]
    Torch {
        run: PathBuf,
        #[source]
        source: tch::TchError,
    },
    #[error(
        "{}: checkpoint unreadable ({detail}); remove {} to resume from an earlier one or retrain",
        path.display(),
        path.parent().unwrap_or(path).display()
    )]
    Checkpoint { path: PathBuf, detail: String },
    #[error(
        "{}: stopped on request after a checkpoint at epoch {epoch}, step {step}; run again to resume",
        run.display()
    )]
    Interrupted { run: PathBuf, epoch: u32, step: u32 },
    /// libtorch failed inside an operation (tch panics there), out of memory included.
    #[error("{}: {}", run.display(), aborted_advice(message))]
    Aborted { run: PathBuf, message: String },
}

/// What to do about a failure inside libtorch: out of memory is the usual one.
fn aborted_advice(message: &str) -> String {
    let first_line = message.lines().next().unwrap_or(message);
    if message.to_lowercase().contains("out of memory") {
        format!(
            "out of memory ({first_line}); lower train.batch_size or the image size, or run fewer workers per device"
        )
    } else {
        format!("libtorch failed: {first_line}")
    }
}

/// Runs `train`, turning a panic inside libtorch (how tch reports a failed operation,
/// out-of-memory included) into [`TrainError::Aborted`], so the run is marked failed and
/// the sweep goes on. The default panic message is held back while it runs: the error
/// says it once, in its place.
fn contain_panics<T>(
    run: &Path,
    train: impl FnOnce() -> Result<T, TrainError>,
) -> Result<T, TrainError> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(train));
    std::panic::set_hook(hook);
    result.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "an unknown failure".into());
        Err(TrainError::Aborted {
            run: run.to_path_buf(),
            message,
        })
    })
}

/// Set from a signal handler; training checks it after every step.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    /// The shared flag, for `signal_hook::flag::register`.
    pub fn handle(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }
}

/// Where and how to train: nothing here changes what is learned.
#[derive(Debug, Clone)]
pub struct Placement {
    pub device: Device,
    /// Read losses back from the device every this many steps (a host sync).
    pub log_every: usize,
    pub keep_checkpoints: usize,
    pub stop: StopFlag,
    /// The spec's commit and vaelab's, recorded in `state.json` (never identity).
    pub provenance: store::Provenance,
}

impl Default for Placement {
    fn default() -> Self {
        Self {
            device: Device::cuda_if_available(),
            log_every: 10,
            keep_checkpoints: store::KEPT_CHECKPOINTS,
            stop: StopFlag::new(),
            provenance: store::Provenance::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    AlreadyDone {
        epochs: u32,
    },
    Trained {
        from_epoch: u32,
        to_epoch: u32,
    },
    /// Training was already done; only the evaluation was (re)made.
    Evaluated {
        epochs: u32,
    },
}

/// Trains `config` in its run directory until `config.train.epochs`, resuming or skipping
/// as the store says. Holds the run's lock throughout.
pub fn train_run(
    store: &RunStore,
    planned: &PlannedRun,
    experiment: &str,
    placement: &Placement,
    reporter: &dyn Reporter,
) -> Result<RunOutcome, TrainError> {
    let config = &planned.config;
    let label = planned.label.as_str();
    let run = store.run_dir(&config.id());
    let _lock = run.try_lock()?;
    run.write_or_check_config(config)?;
    let mut state = run.read_state()?.unwrap_or_else(|| {
        RunState::fresh(
            run.id().full(),
            label,
            config.train.epochs,
            libtorch_version(),
            &device_name(placement.device),
        )
    });
    let target = config.train.epochs;
    let standing = run.standing(Target::of(config))?;
    let trained = standing.is_trained();
    if standing.is_complete() {
        return Ok(RunOutcome::AlreadyDone {
            epochs: state.epochs_done,
        });
    }
    state.epochs_target = target;
    state.experiment = experiment.to_string();
    state.label = label.to_string();
    state.host = store::host_name();
    state.pid = std::process::id();
    state.device = device_name(placement.device);
    state.hardware = Some(crate::runtime::device::hardware(placement.device));
    state.vaelab_version = env!("CARGO_PKG_VERSION").to_string();
    state.libtorch_version = libtorch_version().to_string();
    state.error = None;
    state.slurm = SlurmIds::from_env();
    state.data_fingerprint = config.data.fingerprint.clone();
    state.data_root = crate::data::root_of(&config.data);
    state.provenance = placement.provenance.clone();
    state.status = RunStatus::Running;
    state.started_at = Some(Utc::now());
    state.updated_at = Utc::now();
    // Before the state says running: a disk too full for the reserve leaves it as it was.
    run.reserve_space()?;
    run.write_state(&state)?;

    let shown = format!("{experiment}/{label}");
    let result = contain_panics(run.path(), || {
        Trainer::new(&run, config, &shown, placement, reporter)
            .and_then(|mut t| t.train(&mut state))
    });
    match result {
        Ok(from_epoch) => {
            state.status = RunStatus::Done;
            state.finished_at = Some(Utc::now());
            state.updated_at = Utc::now();
            run.write_final_state(&state)?;
            Ok(if trained {
                RunOutcome::Evaluated {
                    epochs: state.epochs_done,
                }
            } else {
                RunOutcome::Trained {
                    from_epoch,
                    to_epoch: state.epochs_done,
                }
            })
        }
        Err(error @ TrainError::Interrupted { .. }) => {
            state.status = RunStatus::Interrupted;
            state.updated_at = Utc::now();
            run.write_final_state(&state)?;
            Err(error)
        }
        Err(error) => {
            if matches!(error, TrainError::Aborted { .. }) {
                // The failure skipped the epoch's own ending of its progress bar.
                reporter.finish();
            }
            state.status = RunStatus::Failed;
            state.error = Some(error.to_string());
            state.updated_at = Utc::now();
            run.write_final_state(&state)?;
            Err(error)
        }
    }
}
