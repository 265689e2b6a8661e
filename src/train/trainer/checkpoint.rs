//! A run's checkpoints as the trainer writes and reads them: saving at an epoch's end or
//! mid-epoch, restoring the newest on resume (and saying when other hardware wrote it),
//! and loading the selected epoch's weights for the final evaluation.
use std::path::{Path, PathBuf};

use chrono::Utc;
use tch::{Device, nn};

use super::Trainer;
use crate::model;
use crate::optim::adam::Adam;
use crate::progress::Reporter;
use crate::runtime::device;
use crate::store::{
    CheckpointRef, LossSums, MODEL_FILE, OPTIMIZER_FILE, PROGRESS_FILE, Progress, RunDir,
    StoreError, write_atomic,
};
use crate::train::TrainError;

impl Trainer<'_> {
    /// Loads the weights of epoch `epoch`'s checkpoint (for `train.select: best`); training
    /// is over by then, so the optimizer keeps the last epoch's state.
    pub(super) fn load_epoch(&mut self, epoch: u32) -> Result<(), TrainError> {
        let checkpoint = CheckpointRef { epoch, step: 0 };
        let path = self.run.checkpoint_file(checkpoint, MODEL_FILE);
        if !path.exists() {
            return Err(TrainError::Checkpoint {
                path,
                detail: format!(
                    "train.select: best evaluates epoch {epoch}, but its checkpoint is gone (pruned before best checkpoints were kept); use select: last, or retrain the run in a fresh runs directory"
                ),
            });
        }
        model::load_weights(&mut self.vs, &path)?;
        self.reporter.note(&format!(
            "{}: evaluating epoch {epoch}, the lowest validation loss (train.select: best)",
            self.label
        ));
        Ok(())
    }

    pub(super) fn save_checkpoint(
        &self,
        at: CheckpointRef,
        partial_sums: LossSums,
    ) -> Result<(), TrainError> {
        let progress = Progress {
            run_id: self.run.id().full().to_string(),
            epoch: at.epoch,
            step: at.step,
            partial_sums,
            optimizer_steps: self.optimizer.step_count(),
            saved_at: Utc::now(),
            device_kind: Some(device::device_kind(self.placement.device).to_string()),
            gpu: self.gpu.clone(),
            hardware: Some(self.hardware.clone()),
        };
        self.run
            .write_checkpoint(at, |dir: &Path| -> Result<(), TrainError> {
                model::save_weights(&self.vs, &dir.join(MODEL_FILE))?;
                self.optimizer.save(&dir.join(OPTIMIZER_FILE))?;
                let json =
                    serde_json::to_vec_pretty(&progress).expect("Progress always serializes");
                write_atomic(&dir.join(PROGRESS_FILE), &json)?;
                Ok(())
            })
    }
}

/// Loads the newest checkpoint into the model and optimizer; returns where it stands and
/// the running loss sums of a mid-epoch checkpoint.
pub(super) fn restore_checkpoint(
    run: &RunDir,
    vs: &mut nn::VarStore,
    optimizer: &mut Adam,
    reporter: &dyn Reporter,
) -> Result<Restored, TrainError> {
    let Some(checkpoint) = run.latest_checkpoint()? else {
        return Ok(Restored {
            at: CheckpointRef { epoch: 0, step: 0 },
            sums: LossSums::default(),
            device_kind: None,
            hardware: None,
        });
    };
    let corrupt = |path: PathBuf, detail: String| TrainError::Checkpoint { path, detail };
    // The checkpoint error names the file once; keep only the store's detail.
    let progress = run.read_progress(checkpoint).map_err(|e| match e {
        StoreError::Corrupt { path, detail } => corrupt(path, detail),
        other => corrupt(
            run.checkpoint_file(checkpoint, PROGRESS_FILE),
            other.to_string(),
        ),
    })?;
    let model_path = run.checkpoint_file(checkpoint, MODEL_FILE);
    model::load_weights(vs, &model_path).map_err(|e| corrupt(model_path.clone(), e.to_string()))?;
    let optimizer_path = run.checkpoint_file(checkpoint, OPTIMIZER_FILE);
    optimizer
        .load(&optimizer_path)
        .map_err(|e| corrupt(optimizer_path.clone(), e.to_string()))?;
    if optimizer.step_count() != progress.optimizer_steps {
        return Err(corrupt(
            optimizer_path,
            format!(
                "step {} but progress says {}",
                optimizer.step_count(),
                progress.optimizer_steps
            ),
        ));
    }
    reporter.note(&format!(
        "loaded checkpoint {}",
        run.checkpoint_path(checkpoint).display()
    ));
    Ok(Restored {
        at: checkpoint,
        sums: progress.partial_sums,
        device_kind: progress.device_kind,
        hardware: progress.hardware,
    })
}

/// Where a restored checkpoint stands and what trained it.
pub(super) struct Restored {
    pub(super) at: CheckpointRef,
    /// Running loss sums of a mid-epoch checkpoint.
    pub(super) sums: LossSums,
    device_kind: Option<String>,
    hardware: Option<String>,
}

/// `epoch 3 step 0: cpu (AMD EPYC, 2 threads) → cuda (NVIDIA H200)` when the checkpoint
/// was written on other hardware: another kind of device, CPU model, thread count or GPU
/// model (checkpoints from before hardware was recorded compare the kind only).
pub(super) fn device_change(restored: &Restored, now: Device) -> Option<String> {
    let (before, now) = match &restored.hardware {
        Some(before) => (before.clone(), device::hardware(now)),
        None => (
            restored.device_kind.clone()?,
            device::device_kind(now).to_string(),
        ),
    };
    (before != now).then(|| {
        format!(
            "epoch {} step {}: {before} → {now}",
            restored.at.epoch, restored.at.step
        )
    })
}
