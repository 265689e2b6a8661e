//! What `vaelab gc` may remove from a store, with sizes: runs that no given spec produces,
//! failed runs, and checkpoints beyond the newest [`KEPT_CHECKPOINTS`] and the best. A run
//! that a process is training (its lock held) is never touched, removal takes the run's
//! lock first, and a failed run that can resume from a checkpoint is removed only by name.
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{CheckpointRef, RunDir, RunStatus, RunStore, StoreError, io_err};
use crate::experiment::config::RunId;

/// Checkpoints a run keeps besides its best epoch's: training prunes to these, and so
/// does `vaelab gc`.
pub const KEPT_CHECKPOINTS: usize = 2;

/// Why something may go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// No spec given produces this run (any more).
    NotProduced,
    /// The run failed before it wrote a checkpoint: nothing to resume from.
    Failed,
    /// The run failed (a full disk, out of memory, a stop) after a checkpoint, and
    /// resumes from it: removed only when asked for by name or with `--resumable`.
    FailedResumable,
    /// An old checkpoint of a run that stays.
    OldCheckpoint,
}

impl Reason {
    pub fn describe(&self) -> &'static str {
        match self {
            Reason::NotProduced => "no spec produces it",
            Reason::Failed => "failed",
            Reason::FailedResumable => "failed, resumable",
            Reason::OldCheckpoint => "old checkpoint",
        }
    }
}

/// One directory `vaelab gc` may remove.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub run: String,
    pub label: String,
    pub path: PathBuf,
    pub reason: Reason,
    /// Why the run failed, as its `state.json` says.
    pub error: Option<String>,
    pub bytes: u64,
}

/// Bytes of every file under `path`.
fn size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| size(&e.path())).sum())
        .unwrap_or(0)
}

/// What `vaelab gc` found: what may go, and the runs it could not read and so leaves.
#[derive(Debug, Default)]
pub struct Collection {
    pub candidates: Vec<Candidate>,
    /// Runs whose state, metrics or checkpoints could not be read: never removed, so a
    /// damaged file is repaired or removed by hand, not lost with its run.
    pub unreadable: Vec<Unreadable>,
}

/// A run gc leaves alone because one of its files cannot be read.
#[derive(Debug)]
pub struct Unreadable {
    pub path: PathBuf,
    pub error: StoreError,
}

/// What may go from `store`, keeping every run in `produced` that did not fail. One
/// unreadable run is set aside, never a reason to stop.
pub fn candidates(store: &RunStore, produced: &HashSet<RunId>) -> Result<Collection, StoreError> {
    let mut collection = Collection::default();
    for dir in store.list()? {
        if dir.is_locked() {
            continue;
        }
        match run_candidates(&dir, produced) {
            Ok(found) => collection.candidates.extend(found),
            Err(error) => collection.unreadable.push(Unreadable {
                path: dir.path().to_path_buf(),
                error,
            }),
        }
    }
    Ok(collection)
}

/// What may go of one run.
fn run_candidates(dir: &RunDir, produced: &HashSet<RunId>) -> Result<Vec<Candidate>, StoreError> {
    let state = dir.read_state()?;
    let label = state.as_ref().map(|s| s.label.clone()).unwrap_or_default();
    let error = state.as_ref().and_then(|s| s.error.clone());
    let whole = |reason| Candidate {
        run: dir.id().short().to_string(),
        label: label.clone(),
        path: dir.path().to_path_buf(),
        reason,
        error: error.clone(),
        bytes: size(dir.path()),
    };
    if !produced.contains(dir.id()) {
        // Read before it may go: a run with a damaged file is named and left alone, not
        // removed unread because no spec produces it.
        dir.read_config()?;
        dir.read_metrics()?;
        dir.read_evaluation()?;
        dir.read_latent_stats()?;
        dir.latest_checkpoint()?;
        return Ok(vec![whole(Reason::NotProduced)]);
    }
    if state
        .as_ref()
        .is_some_and(|s| s.status == RunStatus::Failed)
    {
        return Ok(vec![whole(match dir.latest_checkpoint()? {
            Some(_) => Reason::FailedResumable,
            None => Reason::Failed,
        })]);
    }
    old_checkpoints(dir, &label)
}

fn old_checkpoints(dir: &RunDir, label: &str) -> Result<Vec<Candidate>, StoreError> {
    let best = super::best_epoch(&dir.read_metrics()?, u32::MAX)
        .map(|epoch| CheckpointRef { epoch, step: 0 });
    Ok(dir
        .prunable_checkpoints(KEPT_CHECKPOINTS, best)?
        .into_iter()
        .map(|checkpoint| {
            let path = dir.checkpoint_path(checkpoint);
            Candidate {
                run: dir.id().short().to_string(),
                label: label.to_string(),
                bytes: size(&path),
                path,
                reason: Reason::OldCheckpoint,
                error: None,
            }
        })
        .collect())
}

impl Candidate {
    /// Whether `--apply` removes it: a run that can resume goes only when asked for,
    /// by `--resumable` or by its id (`named`: id prefixes).
    pub fn removed_by_apply(&self, resumable: bool, named: &[String]) -> bool {
        let dir_name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // A name is an id prefix, or a full id (which starts with the directory's name).
        let is_named = |name: &String| {
            !name.is_empty() && (dir_name.starts_with(name.as_str()) || name.starts_with(&dir_name))
        };
        self.reason != Reason::FailedResumable || resumable || named.iter().any(is_named)
    }

    /// Removes it under its run's lock; a run that a process took up since it was listed
    /// is left alone (the lock error says by whom).
    pub fn remove(&self, store: &RunStore) -> Result<(), StoreError> {
        let run_path = match self.reason {
            Reason::OldCheckpoint => self.path.parent().and_then(Path::parent),
            _ => Some(self.path.as_path()),
        };
        let dir = store
            .list()?
            .into_iter()
            .find(|d| Some(d.path()) == run_path)
            .ok_or_else(|| StoreError::Corrupt {
                path: self.path.clone(),
                detail: "no longer a run of the store".into(),
            })?;
        let _lock = dir.try_lock()?;
        fs::remove_dir_all(&self.path).map_err(io_err(&self.path, "cannot remove"))
    }
}
