//! The run store: run directories, atomic writes, the per-run lock, state and metrics files.
//!
//! Layout: `runs/<id>/{config.yaml, state.json, metrics.parquet, checkpoints/, samples/, lock}`.
//! Every file is replaced atomically (temp file in the same directory, fsync, rename), so a
//! crash at any instant leaves either the old or the new version, never a torn one.
use std::fs::{self, File, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{RunConfig, RunId};

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

fn io_err<'a>(
    path: &'a Path,
    action: &'static str,
) -> impl FnOnce(std::io::Error) -> StoreError + use<'a> {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// Writes `bytes` to `path` so readers see the old content or the new, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// Like [`write_atomic`], for writers that stream into the file.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir).map_err(io_err(dir, "cannot create directory"))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err(dir, "cannot create temporary file"))?;
    write(temp.as_file_mut()).map_err(io_err(path, "cannot write"))?;
    temp.as_file()
        .sync_all()
        .map_err(io_err(path, "cannot sync"))?;
    temp.persist(path).map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        action: "cannot rename into place",
        source: e.error,
    })?;
    sync_dir(dir)
}

pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "cannot sync directory"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Pending,
    Running,
    /// Stopped on request (Ctrl-C, a scheduler's signal) after a checkpoint.
    Interrupted,
    Done,
    Failed,
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Done => "done",
            RunStatus::Failed => "failed",
        })
    }
}

/// `state.json`: what a person or `vaelab status` needs to know about a run at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub id: String,
    /// The experiment (spec `name`) that last trained this run.
    #[serde(default)]
    pub experiment: String,
    pub label: String,
    pub status: RunStatus,
    pub epochs_done: u32,
    pub epochs_target: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub host: String,
    pub pid: u32,
    pub vaelab_version: String,
    pub libtorch_version: String,
    pub device: String,
    pub error: Option<String>,
    /// The Slurm job that last trained the run, when it ran under Slurm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<crate::slurm::SlurmIds>,
}

/// One row of `metrics.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochMetrics {
    pub epoch: u32,
    pub train_loss: f64,
    pub train_recon: f64,
    pub train_kl: f64,
    pub val_loss: f64,
    pub val_recon: f64,
    pub val_kl: f64,
    pub beta: f64,
    pub lr: f64,
    pub epoch_seconds: f64,
    pub images_per_second: f64,
    /// Mean per-image PSNR (dB) of the validation reconstructions the loss saw; NaN in
    /// metrics written before it was recorded.
    pub val_psnr: f64,
    pub finished_at: DateTime<Utc>,
}

impl EpochMetrics {
    /// The learned quantities, without timings: what must replay bit for bit on resume.
    pub fn learned(&self) -> [f64; 7] {
        [
            self.train_loss,
            self.train_recon,
            self.train_kl,
            self.val_loss,
            self.val_recon,
            self.val_kl,
            self.val_psnr,
        ]
    }
}

const F64_COLUMNS: [&str; 11] = [
    "train_loss",
    "train_recon",
    "train_kl",
    "val_loss",
    "val_recon",
    "val_kl",
    "beta",
    "lr",
    "epoch_seconds",
    "images_per_second",
    "val_psnr",
];

/// Columns added after the first release: absent in older files, read as NaN.
const LATER_COLUMNS: [&str; 1] = ["val_psnr"];

fn f64_fields(m: &EpochMetrics) -> [f64; 11] {
    [
        m.train_loss,
        m.train_recon,
        m.train_kl,
        m.val_loss,
        m.val_recon,
        m.val_kl,
        m.beta,
        m.lr,
        m.epoch_seconds,
        m.images_per_second,
        m.val_psnr,
    ]
}

pub fn metrics_to_frame(rows: &[EpochMetrics]) -> PolarsResult<DataFrame> {
    let mut columns: Vec<Column> = Vec::with_capacity(12);
    columns.push(Column::new(
        "epoch".into(),
        rows.iter().map(|r| r.epoch).collect::<Vec<u32>>(),
    ));
    for (i, name) in F64_COLUMNS.iter().enumerate() {
        let values: Vec<f64> = rows.iter().map(|r| f64_fields(r)[i]).collect();
        columns.push(Column::new((*name).into(), values));
    }
    let finished: Vec<i64> = rows
        .iter()
        .map(|r| r.finished_at.timestamp_micros())
        .collect();
    let finished = Series::new("finished_at".into(), finished).cast(&DataType::Datetime(
        TimeUnit::Microseconds,
        Some(TimeZone::UTC),
    ))?;
    columns.push(finished.into());
    DataFrame::new(rows.len(), columns)
}

pub fn metrics_from_frame(frame: &DataFrame) -> PolarsResult<Vec<EpochMetrics>> {
    let epochs = frame.column("epoch")?.u32()?;
    let f64s: Vec<Option<&Float64Chunked>> = F64_COLUMNS
        .iter()
        .map(|name| match frame.column(name) {
            Ok(column) => column.f64().map(Some),
            Err(_) if LATER_COLUMNS.contains(name) => Ok(None),
            Err(e) => Err(e),
        })
        .collect::<PolarsResult<_>>()?;
    let finished = frame.column("finished_at")?.cast(&DataType::Int64)?;
    let finished = finished.i64()?;
    let missing = || PolarsError::ComputeError("null in metrics".into());
    (0..frame.height())
        .map(|i| {
            let v = |c: usize| match f64s[c] {
                Some(column) => column.get(i).ok_or_else(missing),
                None => Ok(f64::NAN),
            };
            Ok(EpochMetrics {
                epoch: epochs.get(i).ok_or_else(missing)?,
                train_loss: v(0)?,
                train_recon: v(1)?,
                train_kl: v(2)?,
                val_loss: v(3)?,
                val_recon: v(4)?,
                val_kl: v(5)?,
                beta: v(6)?,
                lr: v(7)?,
                epoch_seconds: v(8)?,
                images_per_second: v(9)?,
                val_psnr: v(10)?,
                finished_at: DateTime::from_timestamp_micros(finished.get(i).ok_or_else(missing)?)
                    .ok_or_else(missing)?,
            })
        })
        .collect()
}

/// Reads a `metrics.parquet` file.
pub fn read_metrics_file(path: &Path) -> Result<Vec<EpochMetrics>, StoreError> {
    let corrupt = |e: PolarsError| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let file = File::open(path).map_err(io_err(path, "cannot open"))?;
    let frame = ParquetReader::new(file).finish().map_err(corrupt)?;
    metrics_from_frame(&frame).map_err(corrupt)
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
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StoreError::Io {
                    path: self.root.clone(),
                    action: "cannot list",
                    source,
                });
            }
        };
        let mut runs = Vec::new();
        for entry in entries {
            let path = entry.map_err(io_err(&self.root, "cannot list"))?.path();
            // The stored id, not a recomputed one: runs from older schemas still list.
            let id = fs::read_to_string(path.join("config.yaml"))
                .ok()
                .and_then(|text| serde_yaml::from_str::<serde_yaml::Value>(&text).ok())
                .and_then(|value| {
                    value
                        .get("id")
                        .and_then(|id| id.as_str())
                        .and_then(RunId::parse)
                });
            if let Some(id) = id {
                runs.push(RunDir { path, id });
            }
        }
        runs.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(runs)
    }
}

/// One run's directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
    id: RunId,
}

/// Holds the run's exclusive lock until dropped (or until the process dies: the OS
/// releases it, so a lock left by a killed process is never stale).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// A checkpoint after `epoch` whole epochs and `step` optimizer steps into the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CheckpointRef {
    pub epoch: u32,
    pub step: u32,
}

impl CheckpointRef {
    fn dir_name(self) -> String {
        if self.step == 0 {
            format!("epoch-{:04}", self.epoch)
        } else {
            format!("epoch-{:04}-step-{:06}", self.epoch, self.step)
        }
    }

    fn parse(name: &str) -> Option<Self> {
        let rest = name.strip_prefix("epoch-")?;
        match rest.split_once("-step-") {
            None => Some(Self {
                epoch: rest.parse().ok()?,
                step: 0,
            }),
            Some((epoch, step)) => Some(Self {
                epoch: epoch.parse().ok()?,
                step: step.parse().ok()?,
            }),
        }
    }
}

impl RunDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn id(&self) -> &RunId {
        &self.id
    }
    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.yaml")
    }
    pub fn state_path(&self) -> PathBuf {
        self.path.join("state.json")
    }
    pub fn metrics_path(&self) -> PathBuf {
        self.path.join("metrics.parquet")
    }
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.path.join("checkpoints")
    }
    pub fn samples_dir(&self) -> PathBuf {
        self.path.join("samples")
    }
    /// Pictures of the end-of-run evaluation (its numbers sit beside `metrics.parquet`).
    pub fn evaluation_dir(&self) -> PathBuf {
        self.path.join("evaluation")
    }
    fn lock_path(&self) -> PathBuf {
        self.path.join("lock")
    }

    pub fn exists(&self) -> bool {
        self.state_path().exists()
    }

    /// Takes the run's lock without waiting; `Locked` names the holder from `state.json`.
    pub fn try_lock(&self) -> Result<RunLock, StoreError> {
        fs::create_dir_all(&self.path)
            .map_err(io_err(&self.path, "cannot create run directory"))?;
        let path = self.lock_path();
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path, "cannot open lock file"))?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(TryLockError::WouldBlock) => {
                let holder = match self.read_state() {
                    Ok(Some(state)) => format!("pid {} on {}", state.pid, state.host),
                    _ => "unknown process".to_string(),
                };
                Err(StoreError::Locked {
                    path: self.path.clone(),
                    holder,
                })
            }
            Err(TryLockError::Error(source)) => Err(StoreError::Io {
                path,
                action: "cannot lock",
                source,
            }),
        }
    }

    /// Whether some process holds the run's lock right now.
    pub fn is_locked(&self) -> bool {
        File::options()
            .write(true)
            .open(self.lock_path())
            .is_ok_and(|file| matches!(file.try_lock(), Err(TryLockError::WouldBlock)))
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
            if stored.config.train.epochs == config.train.epochs
                && stored.config.eval == config.eval
            {
                return Ok(());
            }
        }
        let stored = StoredConfig {
            id: self.id.full().to_string(),
            schema: crate::config::SCHEMA_VERSION,
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
        write_atomic_with(&path, |file| {
            ParquetWriter::new(file)
                .finish(&mut frame)
                .map(|_| ())
                .map_err(std::io::Error::other)
        })
    }

    /// The newest complete checkpoint. Incomplete ones never carry the final name.
    pub fn latest_checkpoint(&self) -> Result<Option<CheckpointRef>, StoreError> {
        Ok(self.checkpoints()?.into_iter().max())
    }

    fn checkpoints(&self) -> Result<Vec<CheckpointRef>, StoreError> {
        let dir = self.checkpoints_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StoreError::Io {
                    path: dir,
                    action: "cannot list",
                    source,
                });
            }
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&dir, "cannot list"))?;
            let name = entry.file_name();
            if let Some(checkpoint) = name.to_str().and_then(CheckpointRef::parse) {
                found.push(checkpoint);
            }
        }
        Ok(found)
    }

    pub fn checkpoint_path(&self, checkpoint: CheckpointRef) -> PathBuf {
        self.checkpoints_dir().join(checkpoint.dir_name())
    }

    /// Writes a checkpoint directory atomically: files go into a temporary directory that
    /// is renamed to `epoch-NNNN` only once everything in it is on disk.
    pub fn write_checkpoint<E: From<StoreError>>(
        &self,
        checkpoint: CheckpointRef,
        write: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<(), E> {
        let dir = self.checkpoints_dir();
        fs::create_dir_all(&dir).map_err(io_err(&dir, "cannot create directory"))?;
        let temp = tempfile::Builder::new()
            .prefix(".partial-")
            .tempdir_in(&dir)
            .map_err(io_err(&dir, "cannot create temporary directory"))?;
        write(temp.path())?;
        for entry in fs::read_dir(temp.path()).map_err(io_err(temp.path(), "cannot list"))? {
            let entry = entry.map_err(io_err(temp.path(), "cannot list"))?;
            File::open(entry.path())
                .and_then(|f| f.sync_all())
                .map_err(io_err(&entry.path(), "cannot sync"))?;
        }
        sync_dir(temp.path())?;
        let target = self.checkpoint_path(checkpoint);
        if target.exists() {
            fs::remove_dir_all(&target).map_err(io_err(&target, "cannot replace"))?;
        }
        let temp_path = temp.keep();
        fs::rename(&temp_path, &target).map_err(io_err(&target, "cannot rename into place"))?;
        sync_dir(&dir)?;
        Ok(())
    }

    /// Keeps the newest `keep` checkpoints and removes leftovers of interrupted writes.
    pub fn prune_checkpoints(&self, keep: usize) -> Result<(), StoreError> {
        let mut all = self.checkpoints()?;
        all.sort_by_key(|c| std::cmp::Reverse(*c));
        for old in all.into_iter().skip(keep) {
            let path = self.checkpoint_path(old);
            fs::remove_dir_all(&path).map_err(io_err(&path, "cannot remove old checkpoint"))?;
        }
        let dir = self.checkpoints_dir();
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(".partial-") {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::tiny_config;

    fn row(epoch: u32) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 1.5 + epoch as f64,
            train_recon: 1.0,
            train_kl: 0.5,
            val_loss: 2.0,
            val_recon: 1.25,
            val_kl: 0.75,
            beta: 1.0,
            lr: 1e-3,
            epoch_seconds: 3.0,
            images_per_second: 100.0,
            val_psnr: 21.5,
            finished_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
        }
    }

    #[test]
    fn metrics_without_later_columns_read_them_as_nan() {
        let mut frame = metrics_to_frame(&[row(1)]).unwrap();
        let _ = frame.drop_in_place("val_psnr").unwrap();
        let rows = metrics_from_frame(&frame).unwrap();
        assert!(rows[0].val_psnr.is_nan());
        assert_eq!(rows[0].val_loss, 2.0);
    }

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
        run.prune_checkpoints(2).unwrap();
        let mut left: Vec<_> = fs::read_dir(run.checkpoints_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, vec!["epoch-0002-step-000007", "epoch-0003"]);
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
