//! A run's *standing*: the one definition of where a run is (new, partial, running,
//! failed, trained but not evaluated, complete, or damaged beyond reading), used by `run`,
//! `slurm`, `status`, `plan` and the report alike.
use serde::Serialize;

use super::{RunDir, RunStatus, StoreError};
use crate::experiment::config::{EvalConfig, RunConfig, Select};

/// Where a run stands against a target (its epoch budget and evaluation settings). The
/// lock is checked, so a "running" run whose process died reads as partial.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Standing {
    /// Nothing trained yet.
    New,
    /// Trained part of its epochs (interrupted, crashed, or its budget was raised).
    Partial {
        epochs_done: u32,
    },
    /// Some process holds its lock now.
    Running {
        epochs_done: u32,
        host: String,
        pid: u32,
    },
    Failed {
        epochs_done: u32,
        reason: String,
    },
    /// Trained to its epochs, but its evaluation is missing or was made with other
    /// settings: `vaelab run` evaluates it without training.
    #[serde(rename = "not_evaluated")]
    TrainedNotEvaluated {
        epochs_done: u32,
    },
    /// Trained to its epochs and evaluated there with the current settings.
    #[serde(rename = "done")]
    Complete {
        epochs_done: u32,
    },
    /// Its directory cannot be read as a run (see [`super::DamagedRun`]).
    Damaged {
        reason: String,
    },
}

/// What a run is measured against: the epochs it should reach, how it is evaluated and
/// which epoch's weights.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub epochs: u32,
    pub eval: &'a EvalConfig,
    pub select: Select,
}

impl<'a> Target<'a> {
    /// The target a resolved config sets.
    pub fn of(config: &'a RunConfig) -> Self {
        Self {
            epochs: config.train.epochs,
            eval: &config.eval,
            select: config.train.select,
        }
    }
}

impl Standing {
    pub fn epochs_done(&self) -> u32 {
        match self {
            Standing::New | Standing::Damaged { .. } => 0,
            Standing::Partial { epochs_done }
            | Standing::Running { epochs_done, .. }
            | Standing::Failed { epochs_done, .. }
            | Standing::TrainedNotEvaluated { epochs_done }
            | Standing::Complete { epochs_done } => *epochs_done,
        }
    }

    /// Nothing left to do: trained and evaluated.
    pub fn is_complete(&self) -> bool {
        matches!(self, Standing::Complete { .. })
    }

    /// Trained to its epochs, evaluated or not.
    pub fn is_trained(&self) -> bool {
        matches!(
            self,
            Standing::Complete { .. } | Standing::TrainedNotEvaluated { .. }
        )
    }

    /// One phrase for tables, e.g. `partial 3 of 6 epochs`.
    pub fn describe(&self, target_epochs: u32) -> String {
        match self {
            Standing::New => "new".into(),
            Standing::Partial { epochs_done } => {
                format!("partial {epochs_done} of {target_epochs} epochs")
            }
            Standing::Running {
                epochs_done,
                host,
                pid,
            } => format!("running on {host}:{pid} ({epochs_done} of {target_epochs})"),
            Standing::Failed { reason, .. } => format!("failed: {reason}"),
            Standing::TrainedNotEvaluated { .. } => "trained, not evaluated".into(),
            Standing::Complete { .. } => "done".into(),
            Standing::Damaged { reason } => format!("damaged: {reason}"),
        }
    }
}

impl RunDir {
    /// The epoch whose weights the end-of-run evaluation measures, for a run trained to
    /// `trained`: that epoch, or the one with the lowest validation loss.
    pub fn selected_epoch(&self, select: Select, trained: u32) -> Result<u32, StoreError> {
        Ok(match select {
            Select::Last => trained,
            Select::Best => super::best_epoch(&self.read_metrics()?, trained).unwrap_or(trained),
        })
    }

    /// Where this run stands against `target`, from `state.json`, the lock and the stored
    /// evaluation.
    pub fn standing(&self, target: Target) -> Result<Standing, StoreError> {
        let Some(state) = self.read_state()? else {
            return Ok(Standing::New);
        };
        let epochs_done = state.epochs_done;
        Ok(match state.status {
            RunStatus::Done if epochs_done >= target.epochs => {
                let evaluated = self.selected_epoch(target.select, epochs_done)?;
                if self.evaluation_is_current(target.eval, evaluated) {
                    Standing::Complete { epochs_done }
                } else {
                    Standing::TrainedNotEvaluated { epochs_done }
                }
            }
            RunStatus::Failed => Standing::Failed {
                epochs_done,
                reason: state.error.unwrap_or_default(),
            },
            RunStatus::Running if self.is_locked() => Standing::Running {
                epochs_done,
                host: state.host,
                pid: state.pid,
            },
            RunStatus::Done | RunStatus::Pending | RunStatus::Running | RunStatus::Interrupted => {
                Standing::Partial { epochs_done }
            }
        })
    }
}
