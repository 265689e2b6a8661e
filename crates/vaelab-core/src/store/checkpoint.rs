//! Checkpoints: `checkpoints/epoch-NNNN[-step-SSSSSS]/` directories, each renamed into place
//! only when complete, holding the weights, the optimizer state and `progress.json`.
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{RunDir, StoreError, io_err, sync_dir};

/// The model's weights in a checkpoint (safetensors, the seed's `state_dict` names).
pub const MODEL_FILE: &str = "model.safetensors";
/// Adam's moments and step count (safetensors).
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// Where the checkpoint stands ([`Progress`]).
pub const PROGRESS_FILE: &str = "progress.json";

/// A checkpoint after `epoch` whole epochs and `step` optimizer steps into the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CheckpointRef {
    pub epoch: u32,
    pub step: u32,
}

impl CheckpointRef {
    pub(super) fn dir_name(self) -> String {
        if self.step == 0 {
            format!("epoch-{:04}", self.epoch)
        } else {
            format!("epoch-{:04}-step-{:06}", self.epoch, self.step)
        }
    }

    pub(super) fn parse(name: &str) -> Option<Self> {
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

/// `progress.json`: where a checkpoint stands in training.
/// Running sums of the loss terms (each × its batch's size) over an epoch's steps so far.
/// Written as the array `[loss, recon, kl]`, the checkpoint format from before the terms
/// had names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "[f64; 3]", into = "[f64; 3]")]
pub struct LossSums {
    pub loss: f64,
    pub recon: f64,
    pub kl: f64,
}

impl From<[f64; 3]> for LossSums {
    fn from([loss, recon, kl]: [f64; 3]) -> Self {
        Self { loss, recon, kl }
    }
}

impl From<LossSums> for [f64; 3] {
    fn from(sums: LossSums) -> Self {
        [sums.loss, sums.recon, sums.kl]
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub run_id: String,
    /// Whole epochs done.
    pub epoch: u32,
    /// Steps done into the next epoch (a checkpoint taken on request, mid-epoch).
    #[serde(default)]
    pub step: u32,
    /// Running sums of the loss terms × batch size over those steps.
    #[serde(default)]
    pub partial_sums: LossSums,
    pub optimizer_steps: i64,
    pub saved_at: DateTime<Utc>,
    /// The kind of device that trained up to here (`cpu`, `cuda`); absent in checkpoints
    /// written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_kind: Option<String>,
    /// The GPU's model when `device_kind` is `cuda`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<String>,
    /// The CPU model and thread count, or the GPU model, that trained up to here
    /// (`model::device::hardware`): resuming on other hardware gives up bit-exactness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<String>,
}

impl RunDir {
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.path.join("checkpoints")
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
    pub fn write_checkpoint<E: From<StoreError> + std::fmt::Display>(
        &self,
        checkpoint: CheckpointRef,
        write: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<(), E> {
        let dir = self.checkpoints_dir();
        fs::create_dir_all(&dir).map_err(io_err(&dir, "cannot create directory"))?;
        // Dropped on any error below, which removes the partial checkpoint.
        let temp = tempfile::Builder::new()
            .prefix(".partial-")
            .tempdir_in(&dir)
            .map_err(io_err(&dir, "cannot create temporary directory"))?;
        let point = || format!("checkpoint-partial:{}", checkpoint.dir_name());
        if let Err(error) = write(temp.path()) {
            // libtorch words a full disk inside its own message: say it first.
            let message = error.to_string();
            return Err(if super::space::says_disk_full(&message) {
                super::disk_full(temp.path(), message).into()
            } else {
                error
            });
        }
        super::crash::disk_full_point(point).map_err(io_err(temp.path(), "cannot write"))?;
        super::crash_point(point);
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

    /// The checkpoints beyond the newest `keep` other than `also_keep`: what pruning and
    /// `vaelab gc` remove.
    pub fn prunable_checkpoints(
        &self,
        keep: usize,
        also_keep: Option<CheckpointRef>,
    ) -> Result<Vec<CheckpointRef>, StoreError> {
        let mut all = self.checkpoints()?;
        all.sort_by_key(|c| std::cmp::Reverse(*c));
        Ok(all
            .into_iter()
            .skip(keep)
            .filter(|c| Some(*c) != also_keep)
            .collect())
    }

    /// Keeps the newest `keep` checkpoints and `also_keep` (the best epoch's, which
    /// `train.select: best` evaluates), and removes leftovers of interrupted writes.
    pub fn prune_checkpoints(
        &self,
        keep: usize,
        also_keep: Option<CheckpointRef>,
    ) -> Result<(), StoreError> {
        for old in self.prunable_checkpoints(keep, also_keep)? {
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

impl RunDir {
    /// A file of checkpoint `checkpoint` ([`MODEL_FILE`], [`OPTIMIZER_FILE`],
    /// [`PROGRESS_FILE`]).
    pub fn checkpoint_file(&self, checkpoint: CheckpointRef, name: &str) -> PathBuf {
        self.checkpoint_path(checkpoint).join(name)
    }

    /// Reads a checkpoint's `progress.json` and checks that it belongs to this run and
    /// stands where its directory name says.
    pub fn read_progress(&self, checkpoint: CheckpointRef) -> Result<Progress, StoreError> {
        let path = self.checkpoint_file(checkpoint, PROGRESS_FILE);
        let bytes = fs::read(&path).map_err(io_err(&path, "cannot read"))?;
        let progress: Progress =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        if progress.run_id != self.id.full()
            || progress.epoch != checkpoint.epoch
            || progress.step != checkpoint.step
        {
            return Err(StoreError::Corrupt {
                path,
                detail: format!(
                    "belongs to run {} epoch {} step {}",
                    progress.run_id, progress.epoch, progress.step
                ),
            });
        }
        Ok(progress)
    }
}
