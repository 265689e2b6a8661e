//! The run store: run directories, atomic writes, the per-run lock, state and metrics files.
//!
//! Layout: `runs/<id>/{config.yaml, state.json, metrics.parquet, checkpoints/, samples/, lock}`.
//! Every file is replaced atomically (temp file in the same directory, fsync, rename), so a
//! crash at any instant leaves either the old or the new version, never a torn one.
//!
//! Over 500 lines with its tests (about 110); the code is the store's one list of file
//! names, its error type and the atomic writes every file goes through.
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::experiment::config::{RunConfig, RunId};

mod atomic;
mod checkpoint;
pub mod crash;
mod evaluation;
pub mod gc;
mod lock;
mod metrics;
mod provenance;
mod space;
mod standing;
mod state;

pub use atomic::{parent_dir, sync_dir, write_atomic, write_atomic_with, write_parquet};
pub use checkpoint::{
    CheckpointRef, LossSums, MODEL_FILE, OPTIMIZER_FILE, PROGRESS_FILE, Progress,
};
pub use crash::{crash_point, crash_point_until_stopped};
#[cfg(test)]
pub(crate) use evaluation::tests::example as test_evaluation;
pub(crate) use evaluation::to_frame as evaluation_row;
pub use evaluation::{
    ACTIVE_UNIT_THRESHOLD, ATTRIBUTE_STRENGTHS, CALIBRATED_LIKELIHOOD, DISCRETISATION, Evaluation,
    EvaluationPicture, FidScores, LatentStats, TRAVERSAL_OFFSETS, TRAVERSED_DIMENSIONS,
    extractor_sha256, likelihood_description,
};
pub use gc::KEPT_CHECKPOINTS;
pub use lock::RunLock;
pub use metrics::COLUMNS as METRICS_COLUMNS;
use metrics::metrics_to_frame;
#[cfg(test)]
pub(crate) use metrics::tests::row as test_metrics_row;
pub use metrics::{
    Curve, EpochMetrics, MetricsColumn, Quantity, best_epoch, curves as metric_curves,
    read_metrics_file,
};
pub use provenance::{BUILD_COMMIT, Provenance};
use space::disk_full;
pub use standing::{Standing, Target};
pub use state::{RunState, RunStatus, SlurmIds, host_name};

const CONFIG_FILE: &str = "config.yaml";
const STATE_FILE: &str = "state.json";
const METRICS_FILE: &str = "metrics.parquet";
const LOCK_FILE: &str = "lock";
/// Disk space a training run holds back, so that its last `state.json` (why it stopped)
/// can be written when the disk is full: released just before that write.
const RESERVE_FILE: &str = "space-reserve";
const RESERVE_BYTES: i64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    #[error("{path}: unreadable ({detail}); move it aside to let vaelab rewrite it")]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "no space left on {filesystem} (writing {path}; {free} bytes free): free some space and run again, training resumes from the last checkpoint ({detail})"
    )]
    NoSpace {
        filesystem: PathBuf,
        path: PathBuf,
        free: u64,
        detail: String,
    },
    #[error("{path}: run is being trained by another process ({holder}); wait for it or stop it")]
    Locked { path: PathBuf, holder: String },
    #[error(
        "{path}: holds a different run (id {found}, expected {expected}); this is a hash-prefix collision or a hand-edited file"
    )]
    IdMismatch {
        path: PathBuf,
        found: String,
        expected: String,
    },
}

/// The store's error for an I/O failure at `path`; a full disk says so first.
pub(crate) fn io_err<'a>(
    path: &'a Path,
    action: &'static str,
) -> impl FnOnce(std::io::Error) -> StoreError + use<'a> {
    move |source| {
        if source.raw_os_error() == Some(libc::ENOSPC) {
            return disk_full(path, format!("{action}: {source}"));
        }
        StoreError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}

/// The runs directory (`--runs-dir`, default `./runs`).
#[derive(Debug, Clone)]
pub struct RunStore {
    root: PathBuf,
}

impl RunStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn run_dir(&self, id: &RunId) -> RunDir {
        RunDir {
            path: self.root.join(id.dir_name()),
            id: id.clone(),
        }
    }

    /// Every run directory in the store (those with a `config.yaml` naming an id), by name.
    pub fn list(&self) -> Result<Vec<RunDir>, StoreError> {
        Ok(self.scan()?.runs)
    }

    /// Every run directory, and every directory named like one whose `config.yaml` is
    /// missing or unreadable, with why: such a run is shown as damaged, never dropped.
    pub fn scan(&self) -> Result<Listing, StoreError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Listing::default()),
            Err(source) => {
                return Err(StoreError::Io {
                    path: self.root.clone(),
                    action: "cannot list",
                    source,
                });
            }
        };
        let mut listing = Listing::default();
        for entry in entries {
            let path = entry.map_err(io_err(&self.root, "cannot list"))?.path();
            if !path.is_dir() {
                continue;
            }
            match stored_id(&path) {
                Ok(id) => listing.runs.push(RunDir { path, id }),
                Err(reason) if looks_like_run_dir(&path) => {
                    listing.damaged.push(DamagedRun { path, reason });
                }
                Err(_) => {}
            }
        }
        listing.runs.sort_by(|a, b| a.path.cmp(&b.path));
        listing.damaged.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(listing)
    }
}

/// The run directories of a store, and those that cannot be read as runs.
#[derive(Debug, Default)]
pub struct Listing {
    pub runs: Vec<RunDir>,
    pub damaged: Vec<DamagedRun>,
}

/// A directory named like a run whose `config.yaml` cannot say which run it holds.
#[derive(Debug, Clone, Serialize)]
pub struct DamagedRun {
    pub path: PathBuf,
    pub reason: String,
}

impl DamagedRun {
    pub fn standing(&self) -> Standing {
        Standing::Damaged {
            reason: self.reason.clone(),
        }
    }

    /// One line for `status`, `plan` and the report.
    pub fn describe(&self) -> String {
        format!(
            "{}: damaged ({}); restore its config.yaml from a backup, or move the directory aside",
            self.path.display(),
            self.reason
        )
    }
}

/// The id a run directory's `config.yaml` names (the stored id, not a recomputed one, so
/// runs of older schemas still list), or why there is none.
fn stored_id(dir: &Path) -> Result<RunId, String> {
    let path = dir.join(CONFIG_FILE);
    let text = fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("no {CONFIG_FILE}"),
        _ => format!("{CONFIG_FILE} is unreadable: {e}"),
    })?;
    let value: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| format!("{CONFIG_FILE} is not valid YAML: {e}"))?;
    value
        .get("id")
        .and_then(|id| id.as_str())
        .and_then(RunId::parse)
        .ok_or_else(|| format!("{CONFIG_FILE} names no run id"))
}

/// Run directories are named by 16 lowercase hex digits of their id.
fn looks_like_run_dir(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.len() == 16 && n.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// The pictures training writes after every epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    /// The run's fixed prior noise decoded.
    Prior,
    /// Validation images over their reconstructions.
    Reconstruction,
}

/// One run's directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
    id: RunId,
}

impl RunDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn id(&self) -> &RunId {
        &self.id
    }
    pub fn config_path(&self) -> PathBuf {
        self.path.join(CONFIG_FILE)
    }
    pub fn state_path(&self) -> PathBuf {
        self.path.join(STATE_FILE)
    }
    pub fn metrics_path(&self) -> PathBuf {
        self.path.join(METRICS_FILE)
    }
    pub fn samples_dir(&self) -> PathBuf {
        self.path.join("samples")
    }

    /// `samples/epoch-NNNN-{prior,recon}.png`, written after every epoch.
    pub fn sample_path(&self, epoch: u32, kind: SampleKind) -> PathBuf {
        let kind = match kind {
            SampleKind::Prior => "prior",
            SampleKind::Reconstruction => "recon",
        };
        self.samples_dir()
            .join(format!("epoch-{epoch:04}-{kind}.png"))
    }

    pub fn exists(&self) -> bool {
        self.state_path().exists()
    }

    /// Writes `config.yaml` once, or checks that the one there is this run's.
    pub fn write_or_check_config(&self, config: &RunConfig) -> Result<(), StoreError> {
        let path = self.config_path();
        #[derive(Serialize, Deserialize)]
        struct StoredConfig {
            id: String,
            schema: u32,
            #[serde(flatten)]
            config: RunConfig,
        }
        if path.exists() {
            let text = fs::read_to_string(&path).map_err(io_err(&path, "cannot read"))?;
            let stored: StoredConfig =
                serde_yaml::from_str(&text).map_err(|e| StoreError::Corrupt {
                    path: path.clone(),
                    detail: e.to_string(),
                })?;
            if stored.id != self.id.full() {
                return Err(StoreError::IdMismatch {
                    path,
                    found: stored.id,
                    expected: self.id.full().into(),
                });
            }
            // Same id, so only budget, measurement or placement can differ: keep the
            // file current with them.
            if stored.config == *config {
                return Ok(());
            }
        }
        let stored = StoredConfig {
            id: self.id.full().to_string(),
            schema: crate::experiment::config::SCHEMA_VERSION,
            config: config.clone(),
        };
        let text = serde_yaml::to_string(&stored).expect("RunConfig always serializes");
        write_atomic(&path, text.as_bytes())
    }

    pub fn read_config(&self) -> Result<Option<RunConfig>, StoreError> {
        Self::read_config_at(&self.config_path())
    }

    fn read_config_at(path: &Path) -> Result<Option<RunConfig>, StoreError> {
        let path = path.to_path_buf();
        if !path.exists() {
            return Ok(None);
        }
        let text = fs::read_to_string(&path).map_err(io_err(&path, "cannot read"))?;
        let mut value: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        if let Some(map) = value.as_mapping_mut() {
            map.remove("id");
            map.remove("schema");
        }
        serde_yaml::from_value(value)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                path,
                detail: e.to_string(),
            })
    }

    pub fn read_state(&self) -> Result<Option<RunState>, StoreError> {
        let path = self.state_path();
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt {
                        path,
                        detail: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io {
                path,
                action: "cannot read",
                source,
            }),
        }
    }

    pub fn write_state(&self, state: &RunState) -> Result<(), StoreError> {
        let text = serde_json::to_vec_pretty(state).expect("RunState always serializes");
        write_atomic(&self.state_path(), &text)
    }

    /// Holds back [`RESERVE_BYTES`] of disk in the run directory while the run trains (see
    /// [`RunDir::write_final_state`]). Allocated, not merely sized, so a full disk cannot
    /// take it; a disk too full for it fails here, before any training is lost.
    pub fn reserve_space(&self) -> Result<(), StoreError> {
        use std::os::fd::AsRawFd;
        let path = self.path.join(RESERVE_FILE);
        let file = fs::File::create(&path).map_err(io_err(&path, "cannot create"))?;
        // SAFETY: posix_fallocate on a file descriptor this function owns.
        let code = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, RESERVE_BYTES) };
        if code == 0 {
            return Ok(());
        }
        drop(file);
        let _ = fs::remove_file(&path);
        // The reserve is a safeguard: only a full disk stops the run here; a file system
        // that cannot allocate ahead trains without it.
        match code {
            libc::ENOSPC => Err(io_err(
                &path,
                "cannot hold back space for the run's last state",
            )(std::io::Error::from_raw_os_error(code))),
            _ => Ok(()),
        }
    }

    /// Writes the state a run stops with (done, failed, interrupted). When the disk is
    /// full, which is often why a run failed, the space [`RunDir::reserve_space`] held
    /// back is released and the write tried again, so the next command still reads why
    /// the run stopped; the reserve goes either way.
    pub fn write_final_state(&self, state: &RunState) -> Result<(), StoreError> {
        let reserve = self.path.join(RESERVE_FILE);
        let written = self
            .write_state(state)
            .or_else(|first| match fs::remove_file(&reserve) {
                Ok(()) => self.write_state(state),
                Err(_) => Err(first),
            });
        let _ = fs::remove_file(&reserve);
        written
    }

    pub fn read_metrics(&self) -> Result<Vec<EpochMetrics>, StoreError> {
        let path = self.metrics_path();
        if !path.exists() {
            return Ok(Vec::new());
        }
        read_metrics_file(&path)
    }

    pub fn write_metrics(&self, rows: &[EpochMetrics]) -> Result<(), StoreError> {
        let path = self.metrics_path();
        let mut frame = metrics_to_frame(rows).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        write_parquet(&path, &mut frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::config::tiny_config;
    use crate::store::metrics::tests::row;

    #[test]
    fn metrics_round_trip_through_parquet() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunStore::new(dir.path()).run_dir(&tiny_config().id());
        let rows = vec![row(1), row(2)];
        run.write_metrics(&rows).unwrap();
        assert_eq!(run.read_metrics().unwrap(), rows);
    }

    #[test]
    fn corrupt_metrics_are_reported_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunStore::new(dir.path()).run_dir(&tiny_config().id());
        fs::create_dir_all(run.path()).unwrap();
        fs::write(run.metrics_path(), b"not parquet").unwrap();
        let err = run.read_metrics().unwrap_err().to_string();
        assert!(
            err.contains("metrics.parquet") && err.contains("unreadable"),
            "{err}"
        );
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn second_lock_on_the_same_run_is_refused_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunStore::new(dir.path()).run_dir(&tiny_config().id());
        let held = run.try_lock().unwrap();
        let err = run.try_lock().unwrap_err();
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        drop(held);
        run.try_lock().unwrap();
    }

    #[test]
    fn checkpoints_are_found_pruned_and_partial_ones_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunStore::new(dir.path()).run_dir(&tiny_config().id());
        for epoch in 1..=3 {
            run.write_checkpoint(CheckpointRef { epoch, step: 0 }, |d| {
                fs::write(d.join("x"), b"1").map_err(io_err(d, "write"))
            })
            .unwrap();
        }
        fs::create_dir_all(run.checkpoints_dir().join(".partial-abc")).unwrap();
        assert_eq!(
            run.latest_checkpoint().unwrap(),
            Some(CheckpointRef { epoch: 3, step: 0 })
        );
        let mid = CheckpointRef { epoch: 2, step: 7 };
        run.write_checkpoint(mid, |d| {
            fs::write(d.join("x"), b"1").map_err(io_err(d, "write"))
        })
        .unwrap();
        assert_eq!(CheckpointRef::parse("epoch-0002-step-000007"), Some(mid));
        assert_eq!(
            run.latest_checkpoint().unwrap(),
            Some(CheckpointRef { epoch: 3, step: 0 })
        );
        run.prune_checkpoints(2, None).unwrap();
        let mut left: Vec<_> = fs::read_dir(run.checkpoints_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, vec!["epoch-0002-step-000007", "epoch-0003"]);
        let best = CheckpointRef { epoch: 1, step: 0 };
        run.write_checkpoint(best, |d| {
            fs::write(d.join("x"), b"1").map_err(io_err(d, "write"))
        })
        .unwrap();
        run.prune_checkpoints(1, Some(best)).unwrap();
        let mut left: Vec<_> = fs::read_dir(run.checkpoints_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, vec!["epoch-0001", "epoch-0003"], "the best one stays");
    }

    #[test]
    fn config_of_another_run_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::new(dir.path());
        let config = tiny_config();
        let run = store.run_dir(&config.id());
        run.write_or_check_config(&config).unwrap();
        assert_eq!(run.read_config().unwrap(), Some(config.clone()));
        let mut other = config.clone();
        other.seed = 9;
        let impostor = RunDir {
            path: run.path().to_path_buf(),
            id: other.id(),
        };
        assert!(matches!(
            impostor.write_or_check_config(&other),
            Err(StoreError::IdMismatch { .. })
        ));
    }
}
