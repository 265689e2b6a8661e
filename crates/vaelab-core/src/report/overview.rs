//! Where runs stand: status of planned runs and of everything in the store, for `plan` and
//! `status`. Reads only; safe while a sweep is training.
use serde::Serialize;

use crate::experiment::capacity::{Capacity, capacity};
use crate::experiment::config::DataSource;
use crate::experiment::plan::Plan;
use crate::store::{EpochMetrics, RunStore, Standing, StoreError, Target};

#[derive(Debug, Clone, Serialize)]
pub struct PlannedRunView {
    pub id: String,
    pub short_id: String,
    pub label: String,
    pub parameters: Vec<(String, String)>,
    pub epochs: u32,
    /// Known before decoding only for synthetic data or a `data.limit`.
    pub train_images: Option<usize>,
    /// Trainable parameters and forward FLOPs per image, counted from the config.
    pub capacity: Capacity,
    pub standing: Standing,
    pub description: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrphanView {
    pub short_id: String,
    pub label: String,
    pub path: String,
    pub description: String,
    /// The spec still asks for this run, but the dataset's content has changed since it
    /// trained (its id holds the old fingerprint).
    pub data_changed: bool,
}

/// One dataset on disk that the plan's runs read, as identified by its content.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetView {
    pub source: DataSource,
    pub root: Option<String>,
    pub fingerprint: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanView {
    pub experiment: String,
    pub runs: Vec<PlannedRunView>,
    pub remaining_image_epochs: u64,
    /// Some runs read datasets on disk whose size is known only once decoded.
    pub dataset_size_unknown: bool,
    /// Median training throughput measured by this experiment's runs so far.
    pub measured_images_per_second: Option<f64>,
    pub estimated_seconds: Option<f64>,
    pub orphans: Vec<OrphanView>,
    /// The datasets on disk the runs read, each once.
    pub datasets: Vec<DatasetView>,
    pub warnings: Vec<String>,
}

/// Whether `config` is a planned run but for the dataset's fingerprint: its data changed.
fn trained_on_changed_data(
    config: &crate::experiment::config::RunConfig,
    plan: &Plan,
    planned: &std::collections::HashSet<&str>,
) -> bool {
    config.data.fingerprint.is_some()
        && plan.runs.iter().any(|run| {
            let mut now = config.clone();
            now.data.fingerprint = run.config.data.fingerprint.clone();
            now.data.fingerprint != config.data.fingerprint && planned.contains(now.id().full())
        })
}

fn datasets(plan: &Plan) -> Vec<DatasetView> {
    let mut out: Vec<DatasetView> = Vec::new();
    for run in &plan.runs {
        let data = &run.config.data;
        let Some(fingerprint) = &data.fingerprint else {
            continue;
        };
        let view = DatasetView {
            source: data.source,
            root: data.root.as_ref().map(|r| r.display().to_string()),
            fingerprint: fingerprint.clone(),
        };
        if !out.contains(&view) {
            out.push(view);
        }
    }
    out
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite() && *v > 0.0);
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

pub fn plan_view(plan: &Plan, store: &RunStore) -> Result<PlanView, StoreError> {
    let mut runs = Vec::new();
    let mut remaining = 0u64;
    let mut throughputs = Vec::new();
    let mut unknown_sizes = false;
    let mut unreadable = Vec::new();
    for run in &plan.runs {
        let dir = store.run_dir(&run.id);
        let epochs = run.config.train.epochs;
        let standing = dir.standing(Target::of(&run.config))?;
        let images = match run.config.data.source {
            DataSource::Synthetic => Some(run.config.data.effective_train_images()),
            _ => run.config.data.limit,
        };
        if let Some(images) = images {
            remaining += u64::from(epochs.saturating_sub(standing.epochs_done())) * images as u64;
        } else {
            unknown_sizes = true;
        }
        if standing != Standing::New {
            match dir.read_metrics() {
                Ok(rows) => throughputs.extend(rows.iter().map(|m| m.images_per_second)),
                Err(e) => unreadable.push(format!("{e} (its speed is left out of the estimate)")),
            }
        }
        runs.push(PlannedRunView {
            id: run.id.full().to_string(),
            short_id: run.id.short().to_string(),
            label: run.label.clone(),
            parameters: run.coordinates.clone(),
            epochs,
            train_images: images,
            capacity: capacity(&run.config.model, run.config.data.image_size as usize),
            description: standing.describe(epochs),
            standing,
        });
    }
    let planned: std::collections::HashSet<&str> = plan.runs.iter().map(|r| r.id.full()).collect();
    let mut orphans = Vec::new();
    let listing = store.scan()?;
    let mut warnings = plan.warnings.clone();
    warnings.extend(unreadable);
    warnings.extend(listing.damaged.iter().map(|d| {
        format!(
            "{} (which experiment it belongs to cannot be told)",
            d.describe()
        )
    }));
    for dir in listing.runs {
        if planned.contains(dir.id().full()) {
            continue;
        }
        let Ok(Some(state)) = dir.read_state() else {
            continue;
        };
        if state.experiment != plan.experiment {
            continue;
        }
        let standing = dir.own_standing(state.epochs_target)?;
        let data_changed = dir
            .read_config()?
            .is_some_and(|config| trained_on_changed_data(&config, plan, &planned));
        orphans.push(OrphanView {
            short_id: dir.id().short().to_string(),
            label: state.label,
            path: dir.path().display().to_string(),
            description: standing.describe(state.epochs_target),
            data_changed,
        });
    }
    let measured = median(throughputs);
    Ok(PlanView {
        experiment: plan.experiment.clone(),
        runs,
        remaining_image_epochs: remaining,
        dataset_size_unknown: unknown_sizes,
        measured_images_per_second: measured,
        estimated_seconds: measured.map(|rate| remaining as f64 / rate),
        orphans,
        datasets: datasets(plan),
        warnings,
    })
}

/// One line of `vaelab status`.
#[derive(Debug, Clone, Serialize)]
pub struct StoreRunView {
    pub short_id: String,
    pub experiment: String,
    pub label: String,
    pub epochs_target: u32,
    pub standing: Standing,
    pub description: String,
    pub last: Option<LastEpoch>,
    pub eta_seconds: Option<f64>,
    pub path: String,
    /// The Slurm job that last trained it (`1234_5`), if any.
    pub slurm: Option<crate::store::SlurmIds>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastEpoch {
    pub epoch: u32,
    pub train_loss: f64,
    pub val_loss: f64,
    /// Training images per second over the epoch's steps.
    pub images_per_second: f64,
}

pub fn store_view(store: &RunStore) -> Result<Vec<StoreRunView>, StoreError> {
    let mut out = Vec::new();
    let listing = store.scan()?;
    for damaged in &listing.damaged {
        let name = damaged
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let standing = damaged.standing();
        out.push(StoreRunView {
            short_id: name.chars().take(8).collect(),
            experiment: "?".into(),
            label: "?".into(),
            epochs_target: 0,
            description: damaged.describe(),
            standing,
            last: None,
            eta_seconds: None,
            path: damaged.path.display().to_string(),
            slurm: None,
        });
    }
    for dir in listing.runs {
        let Some(state) = dir.read_state()? else {
            continue;
        };
        let standing = dir.own_standing(state.epochs_target)?;
        // A run being written can be read mid-rename only as old or new, never torn; a
        // missing file is normal for a new run, a damaged one is said.
        let (metrics, unreadable): (Vec<EpochMetrics>, Option<String>) = match dir.read_metrics() {
            Ok(rows) => (rows, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        let last = metrics.last().map(|m| LastEpoch {
            epoch: m.epoch,
            train_loss: m.train_loss,
            val_loss: m.val_loss,
            images_per_second: m.images_per_second,
        });
        let mean_epoch = median(metrics.iter().map(|m| m.epoch_seconds).collect());
        let left = state.epochs_target.saturating_sub(state.epochs_done);
        let eta_seconds = match standing {
            Standing::Complete { .. }
            | Standing::TrainedNotEvaluated { .. }
            | Standing::Failed { .. } => None,
            _ => mean_epoch.map(|s| s * f64::from(left)),
        };
        out.push(StoreRunView {
            short_id: dir.id().short().to_string(),
            experiment: state.experiment,
            label: state.label,
            epochs_target: state.epochs_target,
            description: match unreadable {
                Some(problem) => format!("{}; {problem}", standing.describe(state.epochs_target)),
                None => standing.describe(state.epochs_target),
            },
            standing,
            last,
            eta_seconds,
            path: dir.path().display().to_string(),
            slurm: state.slurm,
        });
    }
    Ok(out)
}

/// "1h 02m", "3m 05s", "12s".
/// A count with an SI suffix and three significant digits: `1.23M`, `412k`, `950`.
pub fn human_count(count: u64) -> String {
    let value = count as f64;
    let (scaled, suffix) = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
        .into_iter()
        .find(|(unit, _)| value >= *unit)
        .map_or((value, ""), |(unit, suffix)| (value / unit, suffix));
    let digits = match scaled {
        s if s >= 100.0 || suffix.is_empty() => 0,
        s if s >= 10.0 => 1,
        _ => 2,
    };
    format!("{scaled:.digits$}{suffix}")
}

pub fn human_duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_with_three_significant_digits() {
        assert_eq!(human_count(950), "950");
        assert_eq!(human_count(1_234), "1.23k");
        assert_eq!(human_count(412_345), "412k");
        assert_eq!(human_count(23_456_789), "23.5M");
        assert_eq!(human_count(1_500_000_000), "1.50G");
    }
}
