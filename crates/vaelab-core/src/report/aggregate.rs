//! Gathering a sweep for its report: every planned run's Parquet metrics and evaluation,
//! grouped into variants (grid points with seeds pooled) and paired against a baseline.
use std::collections::HashMap;

use crate::experiment::plan::{Plan, PlannedRun};
use crate::store::{
    self, EpochMetrics, Evaluation, LatentStats, RunDir, RunStore, Standing, Target,
};

use super::stats::{PairedDifference, Summary};

/// Reads one quantity out of an epoch's metrics.
pub type MetricOf = fn(&EpochMetrics) -> f64;

/// What the comparison table reports per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Parameters,
    Epochs,
    SecondsPerEpoch,
    FinalTrainLoss,
    BestValLoss,
    ReconMse,
    Psnr,
    Ssim,
    Kl,
    ActiveUnits,
    ElboBpd,
    IwaeBpd,
    /// −IWAE under the calibrated decoder variance: comparable across likelihoods.
    CalibratedIwaeBpd,
}

impl Metric {
    pub const ALL: [Metric; 13] = [
        Metric::Parameters,
        Metric::Epochs,
        Metric::SecondsPerEpoch,
        Metric::FinalTrainLoss,
        Metric::BestValLoss,
        Metric::ReconMse,
        Metric::Psnr,
        Metric::Ssim,
        Metric::Kl,
        Metric::ActiveUnits,
        Metric::ElboBpd,
        Metric::IwaeBpd,
        Metric::CalibratedIwaeBpd,
    ];

    /// The metrics compared against the baseline (the others describe cost, not quality).
    pub const COMPARED: [Metric; 10] = [
        Metric::FinalTrainLoss,
        Metric::BestValLoss,
        Metric::ReconMse,
        Metric::Psnr,
        Metric::Ssim,
        Metric::Kl,
        Metric::ActiveUnits,
        Metric::ElboBpd,
        Metric::IwaeBpd,
        Metric::CalibratedIwaeBpd,
    ];

    /// Column name in CSV files.
    pub fn key(self) -> &'static str {
        match self {
            Metric::Parameters => "parameters",
            Metric::Epochs => "epochs",
            Metric::SecondsPerEpoch => "seconds_per_epoch",
            Metric::FinalTrainLoss => "final_train_loss",
            Metric::BestValLoss => "best_val_loss",
            Metric::ReconMse => "recon_mse",
            Metric::Psnr => "psnr",
            Metric::Ssim => "ssim",
            Metric::Kl => "kl",
            Metric::ActiveUnits => "active_units",
            Metric::ElboBpd => "elbo_bpd",
            Metric::IwaeBpd => "iwae_bpd",
            Metric::CalibratedIwaeBpd => "calibrated_iwae_bpd",
        }
    }

    /// Column heading in Markdown and HTML.
    pub fn title(self) -> &'static str {
        match self {
            Metric::Parameters => "parameters",
            Metric::Epochs => "epochs",
            Metric::SecondsPerEpoch => "s / epoch",
            Metric::FinalTrainLoss => "final train loss",
            Metric::BestValLoss => "best val loss",
            Metric::ReconMse => "recon MSE",
            Metric::Psnr => "PSNR (dB)",
            Metric::Ssim => "SSIM",
            Metric::Kl => "KL (nats)",
            Metric::ActiveUnits => "active units",
            Metric::ElboBpd => "−ELBO (bits/dim)",
            Metric::IwaeBpd => "−IWAE (bits/dim)",
            Metric::CalibratedIwaeBpd => "−IWAE calibrated (bits/dim)",
        }
    }

    /// How a reading names it.
    pub fn phrase(self) -> &'static str {
        match self {
            Metric::Parameters => "the parameter count",
            Metric::Epochs => "the epochs",
            Metric::SecondsPerEpoch => "the seconds per epoch",
            Metric::FinalTrainLoss => "the final training loss",
            Metric::BestValLoss => "the best validation loss",
            Metric::ReconMse => "the reconstruction MSE",
            Metric::Psnr => "PSNR",
            Metric::Ssim => "SSIM",
            Metric::Kl => "the KL term",
            Metric::ActiveUnits => "the active units",
            Metric::ElboBpd => "the negative ELBO",
            Metric::IwaeBpd => "the negative importance-weighted bound",
            Metric::CalibratedIwaeBpd => {
                "the negative importance-weighted bound under the calibrated decoder"
            }
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Metric::Psnr => " dB",
            Metric::Kl => " nats",
            Metric::ElboBpd | Metric::IwaeBpd | Metric::CalibratedIwaeBpd => " bits/dim",
            Metric::ActiveUnits => " units",
            Metric::SecondsPerEpoch => " s",
            _ => "",
        }
    }

    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::Psnr | Metric::Ssim | Metric::ActiveUnits)
    }
}

/// One planned run with everything its directory holds.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub planned: PlannedRun,
    pub dir: RunDir,
    pub seed: u64,
    pub standing: Standing,
    pub metrics: Vec<EpochMetrics>,
    pub evaluation: Option<Evaluation>,
    pub latent: Option<LatentStats>,
    pub parameters: f64,
    /// The build and hardware that last trained it (`RunState::trained_by`).
    pub trained_by: Option<String>,
    /// Files that could not be read, with why.
    pub problems: Vec<String>,
}

impl RunRecord {
    /// Trained to its target epochs and evaluated there: what the comparison uses.
    pub fn finished(&self) -> bool {
        self.standing.is_complete() && self.evaluation.is_some()
    }

    /// A short word for tables: done, running, failed, ...
    pub fn status(&self) -> String {
        let target = self.planned.config.train.epochs;
        match &self.standing {
            Standing::TrainedNotEvaluated { .. } => "not evaluated".into(),
            Standing::Complete { .. } if !self.finished() => "not evaluated".into(),
            Standing::Failed { .. } => "failed".into(),
            Standing::Running { epochs_done, .. } => {
                format!("running ({epochs_done}/{target})")
            }
            Standing::New => "not started".into(),
            other => other.describe(target),
        }
    }

    pub fn metric(&self, metric: Metric) -> f64 {
        let eval = |f: fn(&Evaluation) -> f64| self.evaluation.as_ref().map_or(f64::NAN, f);
        match metric {
            Metric::Parameters => self.parameters,
            Metric::Epochs => self.metrics.len() as f64,
            Metric::SecondsPerEpoch => {
                Summary::of(
                    &self
                        .metrics
                        .iter()
                        .map(|m| m.epoch_seconds)
                        .collect::<Vec<_>>(),
                )
                .mean
            }
            Metric::FinalTrainLoss => self.metrics.last().map_or(f64::NAN, |m| m.train_loss),
            Metric::BestValLoss => self
                .metrics
                .iter()
                .map(|m| m.val_loss)
                .filter(|v| v.is_finite())
                .fold(f64::NAN, f64::min),
            Metric::ReconMse => eval(|e| e.recon_mse),
            Metric::Psnr => eval(|e| e.psnr),
            Metric::Ssim => eval(|e| e.ssim),
            Metric::Kl => eval(|e| e.kl),
            Metric::ActiveUnits => eval(|e| e.active_units as f64),
            Metric::ElboBpd => eval(|e| e.elbo_bpd),
            Metric::IwaeBpd => eval(|e| e.iwae_bpd),
            Metric::CalibratedIwaeBpd => eval(|e| e.calibrated_iwae_bpd),
        }
    }
}

/// A variant: the runs at one grid point of one named variant, seeds pooled.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub variant: Option<String>,
    /// Grid coordinates without the seed, e.g. `latent_dim=64/beta=4`.
    pub grid: String,
    /// Indices into [`Aggregate::runs`], in plan order.
    pub runs: Vec<usize>,
    /// Index of the group this one is compared against (none for baselines).
    pub baseline: Option<usize>,
}

/// A paired comparison of one group with its baseline on one metric.
#[derive(Debug, Clone)]
pub struct Difference {
    pub group: usize,
    pub baseline: usize,
    pub metric: Metric,
    pub difference: PairedDifference,
}

#[derive(Debug, Clone)]
pub struct Aggregate {
    pub experiment: String,
    pub runs: Vec<RunRecord>,
    pub groups: Vec<Group>,
    /// Directories of the store that cannot be read as runs (they may belong here).
    pub damaged: Vec<String>,
}

fn group_name(planned: &PlannedRun) -> (String, String) {
    let grid: Vec<String> = planned
        .coordinates
        .iter()
        .filter(|(k, _)| k != "seed")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let grid = grid.join("/");
    let name = match (&planned.variant, grid.is_empty()) {
        (Some(v), true) => v.clone(),
        (Some(v), false) => format!("{v}/{grid}"),
        (None, false) => grid.clone(),
        (None, true) => "all runs".into(),
    };
    (name, grid)
}

fn seed_of(planned: &PlannedRun) -> u64 {
    planned.config.seed
}

/// Reads every planned run in `runs` from `store`. Unreadable files are recorded as the
/// run's problems, never fatal: a report on a damaged sweep still shows the rest.
pub fn gather(
    store: &RunStore,
    plan: &Plan,
    runs: &[&PlannedRun],
    baseline: Option<&str>,
) -> Aggregate {
    let mut records = Vec::with_capacity(runs.len());
    for planned in runs {
        let dir = store.run_dir(&planned.id);
        let mut problems = Vec::new();
        let target = Target::of(&planned.config);
        let standing = dir.standing(target).unwrap_or_else(|e| {
            problems.push(e.to_string());
            Standing::New
        });
        // Recorded by the trainer when it built the model; runs from before it was
        // recorded show none.
        let state = dir.read_state().ok().flatten();
        let parameters = state
            .as_ref()
            .and_then(|s| s.parameters)
            .map_or(f64::NAN, |p| p as f64);
        let trained_by = state.as_ref().map(|s| s.trained_by());
        let metrics = if dir.metrics_path().exists() {
            store::read_metrics_file(&dir.metrics_path()).unwrap_or_else(|e| {
                problems.push(e.to_string());
                Vec::new()
            })
        } else {
            Vec::new()
        };
        let evaluation = dir.read_evaluation().unwrap_or_else(|e| {
            problems.push(e.to_string());
            None
        });
        let latent = dir.read_latent_stats().unwrap_or_else(|e| {
            problems.push(e.to_string());
            None
        });
        records.push(RunRecord {
            planned: (*planned).clone(),
            dir: dir.clone(),
            seed: seed_of(planned),
            standing,
            metrics,
            evaluation,
            latent,
            parameters,
            trained_by,
            problems,
        });
    }

    let mut groups: Vec<Group> = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let (name, grid) = group_name(&record.planned);
        match groups.iter_mut().find(|g| g.name == name) {
            Some(group) => group.runs.push(i),
            None => groups.push(Group {
                name,
                variant: record.planned.variant.clone(),
                grid,
                runs: vec![i],
                baseline: None,
            }),
        }
    }
    let baseline_variant = baseline
        .map(str::to_string)
        .or_else(|| plan.runs.first().and_then(|r| r.variant.clone()));
    let first = groups.first().map(|g| g.name.clone());
    for g in 0..groups.len() {
        let partner = match &baseline_variant {
            // Named variants: compare with the baseline variant at the same grid point.
            Some(base) if groups[g].variant.as_deref() != Some(base.as_str()) => {
                groups.iter().position(|b| {
                    b.variant.as_deref() == Some(base.as_str()) && b.grid == groups[g].grid
                })
            }
            Some(_) => None,
            // A grid alone: every point against the first.
            None if Some(&groups[g].name) != first.as_ref() => Some(0),
            None => None,
        };
        groups[g].baseline = partner;
    }
    let damaged = match store.scan() {
        Ok(listing) => listing.damaged.iter().map(|d| d.describe()).collect(),
        Err(e) => vec![e.to_string()],
    };
    Aggregate {
        experiment: plan.experiment.clone(),
        runs: records,
        groups,
        damaged,
    }
}

impl Aggregate {
    /// The finished runs of `group`.
    pub fn finished(&self, group: &Group) -> Vec<&RunRecord> {
        group
            .runs
            .iter()
            .map(|&i| &self.runs[i])
            .filter(|r| r.finished())
            .collect()
    }

    /// Mean ± std over `group`'s finished runs.
    pub fn summary(&self, group: &Group, metric: Metric) -> Summary {
        let values: Vec<f64> = self
            .finished(group)
            .iter()
            .map(|r| r.metric(metric))
            .collect();
        Summary::of(&values)
    }

    /// Every group's paired differences against its baseline, seeds matched, finished runs only.
    pub fn differences(&self) -> Vec<Difference> {
        let mut out = Vec::new();
        for (g, group) in self.groups.iter().enumerate() {
            let Some(b) = group.baseline else { continue };
            let baseline: HashMap<u64, &RunRecord> = self
                .finished(&self.groups[b])
                .into_iter()
                .map(|r| (r.seed, r))
                .collect();
            let pairs: Vec<(&RunRecord, &RunRecord)> = self
                .finished(group)
                .into_iter()
                .filter_map(|r| baseline.get(&r.seed).map(|base| (r, *base)))
                .collect();
            for metric in Metric::COMPARED {
                let values: Vec<(f64, f64)> = pairs
                    .iter()
                    .map(|(t, base)| (t.metric(metric), base.metric(metric)))
                    .collect();
                out.push(Difference {
                    group: g,
                    baseline: b,
                    metric,
                    difference: PairedDifference::of(&values),
                });
            }
        }
        out
    }

    /// Per epoch, over the runs of `group` that reached it: (epoch, summary) of `value`.
    pub fn curve(&self, group: &Group, value: MetricOf) -> Vec<(u32, Summary)> {
        let mut by_epoch: std::collections::BTreeMap<u32, Vec<f64>> = Default::default();
        for &i in &group.runs {
            for m in &self.runs[i].metrics {
                by_epoch.entry(m.epoch).or_default().push(value(m));
            }
        }
        by_epoch
            .into_iter()
            .map(|(epoch, values)| (epoch, Summary::of(&values)))
            .collect()
    }

    /// Runs that the comparison leaves out, with why.
    pub fn left_out(&self) -> Vec<&RunRecord> {
        self.runs.iter().filter(|r| !r.finished()).collect()
    }
}

impl Aggregate {
    /// The run whose pictures stand for a group: its first finished run, else any evaluated one.
    pub fn representative(&self, group: &Group) -> Option<&RunRecord> {
        self.finished(group).into_iter().next().or_else(|| {
            group
                .runs
                .iter()
                .map(|&i| &self.runs[i])
                .find(|r| r.evaluation.is_some())
        })
    }
}
