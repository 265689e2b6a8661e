//! `state.json`: a run's status, progress, where and by what it was last trained, and
//! the Slurm job it ran in.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
    /// The CPU model and threads, or the GPU model, of the last training
    /// (`model::device::hardware`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<String>,
    pub error: Option<String>,
    /// Each time the run resumed on other hardware (device kind, CPU model or threads, GPU
    /// model) than what wrote its checkpoint, e.g. `epoch 3 step 0: cpu (…) → cuda (…)`:
    /// the trajectory continues, its bits do not match a run trained on one machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_changes: Vec<String>,
    /// Trainable parameters of the run's model, recorded when it is built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<i64>,
    /// Training images per epoch, recorded when the run's data is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_images: Option<u64>,
    /// The content fingerprint of the dataset on disk the run learned from (also in its
    /// config), and where that dataset was read from when it last trained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_root: Option<std::path::PathBuf>,
    /// The spec's git commit and the vaelab build that last trained the run.
    #[serde(default, flatten)]
    pub provenance: super::Provenance,
    /// The Slurm job that last trained the run, when it ran under Slurm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmIds>,
}

impl RunState {
    /// A run not yet started: pending, no epochs, created now by this process on `host`,
    /// with this build's versions. `libtorch_version` and `device` come from the caller,
    /// which sits above the model layer that knows them.
    pub fn fresh(
        id: &str,
        label: &str,
        epochs_target: u32,
        libtorch_version: &str,
        device: &str,
    ) -> Self {
        let now = Utc::now();
        Self {
            id: id.to_string(),
            experiment: String::new(),
            label: label.to_string(),
            status: RunStatus::Pending,
            epochs_done: 0,
            epochs_target,
            created_at: now,
            updated_at: now,
            started_at: None,
            finished_at: None,
            host: host_name(),
            pid: std::process::id(),
            vaelab_version: env!("CARGO_PKG_VERSION").to_string(),
            libtorch_version: libtorch_version.to_string(),
            device: device.to_string(),
            hardware: None,
            error: None,
            device_changes: Vec::new(),
            parameters: None,
            train_images: None,
            data_fingerprint: None,
            data_root: None,
            provenance: super::Provenance::default(),
            slurm: SlurmIds::from_env(),
        }
    }

    /// `vaelab 0.1.0 (abc123), libtorch 2.11.0, cpu (AMD EPYC 7B13, 2 threads)`: what
    /// trained the run, as far as its last digits depend on it.
    pub fn trained_by(&self) -> String {
        let commit = self
            .provenance
            .vaelab_commit
            .as_ref()
            .map(|c| format!(" ({})", &c[..c.len().min(12)]))
            .unwrap_or_default();
        format!(
            "vaelab {}{commit}, libtorch {}, {}",
            self.vaelab_version,
            self.libtorch_version,
            self.hardware.as_deref().unwrap_or(&self.device)
        )
    }
}

/// The Slurm job a process runs in, from the environment Slurm sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlurmIds {
    pub job_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_task_id: Option<String>,
}

impl SlurmIds {
    /// Reads `SLURM_JOB_ID`, `SLURM_ARRAY_JOB_ID` and `SLURM_ARRAY_TASK_ID`.
    pub fn from_env() -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Some(Self {
            job_id: var("SLURM_JOB_ID")?,
            array_job_id: var("SLURM_ARRAY_JOB_ID"),
            array_task_id: var("SLURM_ARRAY_TASK_ID"),
        })
    }

    /// `1234_5` for an array task, else the job id: what `squeue` and `scontrol` accept.
    pub fn job(&self) -> String {
        match (&self.array_job_id, &self.array_task_id) {
            (Some(array), Some(task)) => format!("{array}_{task}"),
            _ => self.job_id.clone(),
        }
    }
}

impl std::fmt::Display for SlurmIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "slurm {}", self.job())?;
        if self.array_job_id.is_some() {
            write!(f, " (job {})", self.job_id)?;
        }
        Ok(())
    }
}

/// This machine's name, as recorded in run state and lock holders.
pub fn host_name() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown-host".into())
}
