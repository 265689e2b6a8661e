//! What the dashboard shows, as JSON-ready views read from the run store: experiments
//! with status counts, an experiment's runs with their curves, one run in full. A run's
//! metrics are read from Parquet only when the file changed (modification time and size),
//! so a page over a large store costs little more than listing it.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use crate::store::{
    EpochMetrics, EvaluationPicture, METRICS_COLUMNS, RunDir, RunState, RunStore, SampleKind,
    Standing, StoreError, metric_curves, read_metrics_file,
};

/// Parquet metrics by path, kept until the file's modification time or size changes.
#[derive(Default)]
pub struct MetricsCache {
    entries: Mutex<HashMap<PathBuf, CachedMetrics>>,
}

struct CachedMetrics {
    modified: SystemTime,
    size: u64,
    rows: Arc<Vec<EpochMetrics>>,
}

impl MetricsCache {
    /// The metrics of `run`, read again only when its file changed; empty before the
    /// first epoch.
    pub fn metrics(&self, run: &RunDir) -> Result<Arc<Vec<EpochMetrics>>, StoreError> {
        let path = run.metrics_path();
        let Ok(meta) = std::fs::metadata(&path) else {
            return Ok(Arc::new(Vec::new()));
        };
        let (modified, size) = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cached) = entries.get(&path)
            && cached.modified == modified
            && cached.size == size
        {
            return Ok(cached.rows.clone());
        }
        let rows = Arc::new(read_metrics_file(&path)?);
        entries.insert(
            path,
            CachedMetrics {
                modified,
                size,
                rows: rows.clone(),
            },
        );
        Ok(rows)
    }

    /// How many files it holds (for the benchmark and tests).
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One experiment on the front page.
#[derive(Debug, Serialize)]
pub struct ExperimentView {
    pub name: String,
    pub runs: usize,
    /// Runs per status (`done`, `running`, ...).
    pub statuses: BTreeMap<String, usize>,
}

/// The curves of one run: one value per epoch for each column of `metrics.parquet`,
/// by the column's name (`curves.val_loss`), so a new column reaches the page unasked.
#[derive(Debug, Serialize)]
pub struct Curves {
    pub epoch: Vec<u32>,
    #[serde(flatten)]
    pub columns: BTreeMap<&'static str, Vec<f64>>,
}

impl Curves {
    fn of(rows: &[EpochMetrics]) -> Self {
        Self {
            epoch: rows.iter().map(|m| m.epoch).collect(),
            columns: METRICS_COLUMNS
                .iter()
                .map(|c| (c.name, rows.iter().map(c.get).collect()))
                .collect(),
        }
    }
}

/// One chart on an experiment's page, as [`metric_curves`] declares it: the columns of
/// `Curves` it draws.
#[derive(Debug, Serialize)]
pub struct ChartView {
    pub title: &'static str,
    pub train: Option<&'static str>,
    pub validation: &'static str,
}

/// The charts every experiment page draws, in order.
pub fn charts() -> Vec<ChartView> {
    metric_curves()
        .iter()
        .map(|c| ChartView {
            title: c.quantity.title,
            train: c.train.map(|t| t.name),
            validation: c.validation.name,
        })
        .collect()
}

/// One run on an experiment's page.
#[derive(Debug, Serialize)]
pub struct RunView {
    /// The run directory's name (16 hex digits): the run's address in the dashboard.
    pub id: String,
    pub label: String,
    /// The label up to its last `/` (`residual` of `residual/seed=0`): the curves' group.
    pub variant: String,
    /// The run's standing in one word (`Standing::word`), as `status` says it.
    pub status: String,
    /// What is wrong with a damaged run, or a run whose metrics cannot be read.
    pub problem: Option<String>,
    pub epochs_done: u32,
    pub epochs_target: u32,
    pub eta_seconds: Option<f64>,
    pub curves: Curves,
}

fn variant_of(label: &str) -> String {
    match label.rsplit_once('/') {
        Some((variant, _)) => variant.to_string(),
        None => "all runs".to_string(),
    }
}

/// A run directory as the dashboard reads it: its state and standing, or why it cannot
/// be read (then it is damaged, and which experiment it belongs to cannot be told).
enum Read {
    Run {
        dir: RunDir,
        state: Box<RunState>,
        standing: Standing,
    },
    Damaged {
        dir_name: String,
        reason: String,
    },
}

fn read_all(store: &RunStore) -> Result<Vec<Read>, StoreError> {
    let listing = store.scan()?;
    let mut out: Vec<Read> = listing
        .damaged
        .into_iter()
        .map(|d| Read::Damaged {
            dir_name: file_name(&d.path).unwrap_or_default(),
            reason: d.reason,
        })
        .collect();
    for dir in listing.runs {
        let read = dir.read_state().and_then(|state| match state {
            None => Ok(None),
            Some(state) => Ok(Some((dir.own_standing(state.epochs_target)?, state))),
        });
        match read {
            Ok(None) => {}
            Ok(Some((standing, state))) => out.push(Read::Run {
                dir,
                state: Box::new(state),
                standing,
            }),
            Err(error) => out.push(Read::Damaged {
                dir_name: dir.id().dir_name().to_string(),
                reason: error.to_string(),
            }),
        }
    }
    Ok(out)
}

/// Every experiment named by a run's state, with status counts. A damaged run may
/// belong to any of them, so each counts it.
pub fn experiments(store: &RunStore) -> Result<Vec<ExperimentView>, StoreError> {
    let mut by_name: BTreeMap<String, ExperimentView> = BTreeMap::new();
    let mut damaged = 0;
    for read in read_all(store)? {
        let Read::Run {
            state, standing, ..
        } = read
        else {
            damaged += 1;
            continue;
        };
        let view = by_name
            .entry(state.experiment.clone())
            .or_insert_with(|| ExperimentView {
                name: state.experiment.clone(),
                runs: 0,
                statuses: BTreeMap::new(),
            });
        view.runs += 1;
        *view
            .statuses
            .entry(standing.word().to_string())
            .or_default() += 1;
    }
    for view in by_name.values_mut().filter(|_| damaged > 0) {
        view.statuses.insert(
            Standing::Damaged {
                reason: String::new(),
            }
            .word()
            .into(),
            damaged,
        );
    }
    Ok(by_name.into_values().collect())
}

/// The runs of experiment `name`, with their curves, and every damaged run (which might
/// be one of them), marked so; a damaged run never takes the page down.
pub fn experiment(
    store: &RunStore,
    cache: &MetricsCache,
    name: &str,
) -> Result<Vec<RunView>, StoreError> {
    let mut runs = Vec::new();
    for read in read_all(store)? {
        match read {
            Read::Run {
                dir,
                state,
                standing,
            } if state.experiment == name => runs.push(run_view(cache, &dir, &state, &standing)),
            Read::Run { .. } => {}
            Read::Damaged { dir_name, reason } => runs.push(RunView {
                label: dir_name.clone(),
                id: dir_name,
                variant: "damaged".into(),
                status: Standing::Damaged {
                    reason: reason.clone(),
                }
                .word()
                .into(),
                problem: Some(reason),
                epochs_done: 0,
                epochs_target: 0,
                eta_seconds: None,
                curves: Curves::of(&[]),
            }),
        }
    }
    runs.sort_by(|a, b| a.label.cmp(&b.label));
    Ok(runs)
}

fn run_view(cache: &MetricsCache, dir: &RunDir, state: &RunState, standing: &Standing) -> RunView {
    let (metrics, problem) = match cache.metrics(dir) {
        Ok(rows) => (rows, None),
        Err(error) => (Arc::new(Vec::new()), Some(error.to_string())),
    };
    let status = match problem {
        Some(_) => "damaged",
        None => standing.word(),
    };
    let mean_epoch = {
        let mut seconds: Vec<f64> = metrics.iter().map(|m| m.epoch_seconds).collect();
        seconds.sort_by(f64::total_cmp);
        seconds.get(seconds.len() / 2).copied()
    };
    let left = state.epochs_target.saturating_sub(state.epochs_done);
    RunView {
        id: dir.id().dir_name().to_string(),
        variant: variant_of(&state.label),
        label: state.label.clone(),
        eta_seconds: matches!(standing, Standing::Running { .. })
            .then_some(mean_epoch)
            .flatten()
            .map(|s| s * f64::from(left)),
        status: status.into(),
        problem,
        epochs_done: state.epochs_done,
        epochs_target: state.epochs_target,
        curves: Curves::of(&metrics),
    }
}

/// One run in full: its config, state, curves, sample pictures and evaluation.
#[derive(Debug, Serialize)]
pub struct RunDetail {
    pub id: String,
    pub config: String,
    pub state: serde_json::Value,
    pub curves: Curves,
    /// File names of the per-epoch sample grids, in epoch order.
    pub samples: Vec<String>,
    /// The end-of-run evaluation's numbers, when there is one.
    pub evaluation: Option<BTreeMap<String, String>>,
    /// File names of the evaluation's pictures that exist.
    pub pictures: Vec<String>,
}

/// The run whose directory is named `name`, if the store has it.
pub fn find_run(store: &RunStore, name: &str) -> Result<Option<RunDir>, StoreError> {
    Ok(store
        .list()?
        .into_iter()
        .find(|d| d.id().dir_name() == name))
}

pub fn run_detail(cache: &MetricsCache, dir: &RunDir) -> Result<RunDetail, StoreError> {
    let config = std::fs::read_to_string(dir.config_path()).unwrap_or_default();
    // A damaged file is shown as such on the run's page, never a failed page.
    let state = match dir.read_state() {
        Ok(state) => state
            .map(|s| serde_json::to_value(s).unwrap_or_default())
            .unwrap_or_default(),
        Err(error) => serde_json::json!({ "status": "damaged", "error": error.to_string() }),
    };
    let metrics = cache.metrics(dir).unwrap_or_default();
    let samples = metrics
        .iter()
        .map(|m| dir.sample_path(m.epoch, SampleKind::Prior))
        .filter(|p| p.is_file())
        .filter_map(|p| file_name(&p))
        .collect();
    let evaluation = dir.read_evaluation()?.map(|e| {
        crate::store::evaluation_row(&e)
            .map(|frame| {
                frame
                    .columns()
                    .iter()
                    .map(|c| {
                        let value = c.get(0).map(|v| v.to_string()).unwrap_or_default();
                        (c.name().to_string(), value.trim_matches('"').to_string())
                    })
                    .collect()
            })
            .unwrap_or_default()
    });
    let pictures = EvaluationPicture::ALL
        .iter()
        .filter(|p| dir.evaluation_picture(**p).is_file())
        .map(|p| p.file_name().to_string())
        .collect();
    Ok(RunDetail {
        id: dir.id().dir_name().to_string(),
        config,
        state,
        curves: Curves::of(&metrics),
        samples,
        evaluation,
        pictures,
    })
}

fn file_name(path: &Path) -> Option<String> {
    path.file_name()?.to_str().map(str::to_string)
}

/// The file of run `dir` that the dashboard may serve under `name`: a per-epoch sample
/// grid or an evaluation picture, nothing else.
pub fn servable_file(dir: &RunDir, name: &str) -> Option<PathBuf> {
    if let Some(picture) = EvaluationPicture::ALL
        .iter()
        .find(|p| p.file_name() == name)
    {
        return Some(dir.evaluation_picture(*picture));
    }
    let rest = name.strip_prefix("epoch-")?;
    let (epoch, kind) = rest.split_once('-')?;
    let epoch: u32 = (epoch.len() == 4).then(|| epoch.parse().ok()).flatten()?;
    let kind = match kind {
        "prior.png" => SampleKind::Prior,
        "recon.png" => SampleKind::Reconstruction,
        _ => return None,
    };
    Some(dir.sample_path(epoch, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::test_metrics_row as row;

    #[test]
    fn metrics_are_read_again_only_when_their_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::new(dir.path());
        let run = store.run_dir(&crate::experiment::config::tiny_config().id());
        let cache = MetricsCache::default();
        assert!(cache.metrics(&run).unwrap().is_empty(), "no file yet");
        run.write_metrics(&[row(1)]).unwrap();
        let first = cache.metrics(&run).unwrap();
        let again = cache.metrics(&run).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "unchanged: served from the cache"
        );
        run.write_metrics(&[row(1), row(2)]).unwrap();
        let grown = cache.metrics(&run).unwrap();
        assert_eq!(grown.len(), 2, "a new epoch is seen");
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn only_sample_grids_and_evaluation_pictures_are_servable() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunStore::new(dir.path()).run_dir(&crate::experiment::config::tiny_config().id());
        assert_eq!(
            servable_file(&run, "epoch-0012-prior.png"),
            Some(run.sample_path(12, SampleKind::Prior))
        );
        assert_eq!(
            servable_file(&run, "traversal.png"),
            Some(run.evaluation_picture(EvaluationPicture::Traversal))
        );
        for name in [
            "config.yaml",
            "../config.yaml",
            "epoch-12-prior.png",
            "epoch-0012-prior.png/..",
            "/etc/passwd",
            "epoch-00x2-recon.png",
        ] {
            assert_eq!(servable_file(&run, name), None, "{name}");
        }
    }
}
