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

    /// Every word [`Standing::word`] gives, in the order a run goes through them: the one
    /// status vocabulary of `status`, `runs --status`, `export`'s status column, the report
    /// and the dashboard.
    pub const WORDS: [&'static str; 7] = [
        "new",
        "partial",
        "running",
        "failed",
        "not_evaluated",
        "done",
        "damaged",
    ];

    /// The one-word status every view shows (`done`, `partial`, `not_evaluated`, ...):
    /// the name `status --json` gives it.
    pub fn word(&self) -> &'static str {
        match self {
            Standing::New => "new",
            Standing::Partial { .. } => "partial",
            Standing::Running { .. } => "running",
            Standing::Failed { .. } => "failed",
            Standing::TrainedNotEvaluated { .. } => "not_evaluated",
            Standing::Complete { .. } => "done",
            Standing::Damaged { .. } => "damaged",
        }
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

    /// Where this run stands against its own `config.yaml` (its evaluation settings and
    /// selection) and `epochs_target`: what `status` and the dashboard show.
    pub fn own_standing(&self, epochs_target: u32) -> Result<Standing, StoreError> {
        let (eval, select) = self
            .read_config()?
            .map(|c| (c.eval, c.train.select))
            .unwrap_or_default();
        self.standing(Target {
            epochs: epochs_target,
            eval: &eval,
            select,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `word` is the tag `status --json` writes, so every view speaks one vocabulary.
    #[test]
    fn the_word_is_the_serialized_status() {
        for standing in [
            Standing::New,
            Standing::Partial { epochs_done: 1 },
            Standing::Running {
                epochs_done: 1,
                host: "h".into(),
                pid: 1,
            },
            Standing::Failed {
                epochs_done: 1,
                reason: "r".into(),
            },
            Standing::TrainedNotEvaluated { epochs_done: 1 },
            Standing::Complete { epochs_done: 1 },
            Standing::Damaged { reason: "r".into() },
        ] {
            let json = serde_json::to_value(&standing).unwrap();
            assert_eq!(json["status"], standing.word());
        }
    }
}
