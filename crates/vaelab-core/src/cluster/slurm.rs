//! Slurm job arrays: the sbatch script and manifest for a sweep's unfinished runs, and the
//! Slurm ids of the job this process runs in.
//!
//! The manifest is written once per submission under `<runs>/slurm/`, so array task i
//! always means the same run, whatever happens to the spec afterwards. Each task runs
//! `vaelab run SPEC --only <id>` under the run's lock, so a task that lands on a run
//! another process holds skips it instead of training it twice.
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::experiment::plan::{PlannedRun, Selection};
use crate::store::{RunStore, SlurmIds, StoreError, Target, write_atomic};

#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: cannot read: {detail}")]
    Unreadable { path: PathBuf, detail: String },
    #[error("--{flag}: {message}")]
    Option { flag: &'static str, message: String },
    #[error(
        "sbatch: {detail}; the script is at {script} (submit it by hand with `sbatch {script}`)"
    )]
    Submit { script: PathBuf, detail: String },
    #[error(
        "{}: changed since the Slurm job was submitted (sha256 {now}, {} says {submitted}); this task trains only what was submitted: restore the spec, or submit the sweep again with `vaelab slurm`",
        spec.display(),
        manifest.display()
    )]
    SpecChanged {
        spec: PathBuf,
        manifest: PathBuf,
        submitted: String,
        now: String,
    },
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Refuses an array task whose spec is no longer the one its manifest was written from:
/// after an edit it would train other settings, or none.
pub fn check_spec_unchanged(manifest_path: &Path, spec: &Path) -> Result<(), SlurmError> {
    let manifest = read_manifest(manifest_path)?;
    let bytes = std::fs::read(spec).map_err(|e| SlurmError::Unreadable {
        path: spec.to_path_buf(),
        detail: e.to_string(),
    })?;
    let now = sha256_hex(&bytes);
    if now == manifest.spec_sha256 {
        return Ok(());
    }
    Err(SlurmError::SpecChanged {
        spec: spec.to_path_buf(),
        manifest: manifest_path.to_path_buf(),
        submitted: manifest.spec_sha256,
        now,
    })
}

/// What `vaelab slurm` asks the scheduler for.
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub time: Option<String>,
    pub gpus_per_task: Option<u32>,
    pub cpus_per_task: Option<u32>,
    pub mem: Option<String>,
    pub max_parallel: Option<usize>,
    /// Extra `#SBATCH` lines, with or without the `#SBATCH` prefix.
    pub extra: Vec<String>,
    /// Seconds before the time limit at which Slurm sends SIGUSR1 (checkpoint and requeue).
    pub warning_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestTask {
    pub index: usize,
    pub id: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub job_id: String,
    pub submitted_at: DateTime<Utc>,
}

/// `manifest.json`: which run each array task trains, and where the job came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub experiment: String,
    pub spec: PathBuf,
    pub spec_sha256: String,
    pub runs_dir: PathBuf,
    pub created_at: DateTime<Utc>,
    pub tasks: Vec<ManifestTask>,
    #[serde(default)]
    pub submissions: Vec<Submission>,
}

/// A job array written to disk, ready for `sbatch`.
#[derive(Debug, Clone)]
pub struct JobArray {
    pub dir: PathBuf,
    pub script: PathBuf,
    pub manifest_path: PathBuf,
    pub manifest: Manifest,
}

pub const SCRIPT_FILE: &str = "job.sbatch";
pub const MANIFEST_FILE: &str = "manifest.json";

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Quotes `text` for bash, in single quotes.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

fn check_option(flag: &'static str, value: &Option<String>) -> Result<(), SlurmError> {
    match value {
        Some(v) if v.trim().is_empty() || v.contains('\n') => Err(SlurmError::Option {
            flag,
            message: format!("expected a value on one line, got {v:?}"),
        }),
        _ => Ok(()),
    }
}

/// The runs of `runs` that are not complete (trained to their epochs and evaluated with
/// the current settings): what `vaelab run` would still work on.
pub fn unfinished<'a>(
    store: &RunStore,
    runs: &[&'a PlannedRun],
) -> Result<Vec<&'a PlannedRun>, StoreError> {
    let mut out = Vec::new();
    for run in runs {
        let standing = store.run_dir(&run.id).standing(Target::of(&run.config))?;
        if !standing.is_complete() {
            out.push(*run);
        }
    }
    Ok(out)
}

/// The sbatch script for `manifest`.
pub fn script(
    manifest: &Manifest,
    manifest_path: &Path,
    options: &SlurmOptions,
    vaelab: &Path,
    log_dir: &Path,
) -> String {
    let n = manifest.tasks.len();
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("#SBATCH --job-name=vaelab-{}", manifest.experiment),
        match options.max_parallel {
            Some(max) => format!("#SBATCH --array=0-{}%{max}", n.saturating_sub(1)),
            None => format!("#SBATCH --array=0-{}", n.saturating_sub(1)),
        },
        format!("#SBATCH --output={}/%A_%a.log", log_dir.display()),
        "#SBATCH --open-mode=append".into(),
        // Requeue after a node failure or on our own request; resume is exact.
        "#SBATCH --requeue".into(),
        // SIGUSR1 to the batch shell (which `exec` makes vaelab) before the time limit.
        format!("#SBATCH --signal=B:USR1@{}", options.warning_seconds),
        // One task per array element: current Slurm rejects --gpus-per-task without it.
        "#SBATCH --ntasks=1".into(),
    ];
    let optional = [
        ("partition", options.partition.clone()),
        ("time", options.time.clone()),
        (
            "gpus-per-task",
            options.gpus_per_task.map(|v| v.to_string()),
        ),
        (
            "cpus-per-task",
            options.cpus_per_task.map(|v| v.to_string()),
        ),
        ("mem", options.mem.clone()),
    ];
    for (flag, value) in optional {
        if let Some(value) = value {
            lines.push(format!("#SBATCH --{flag}={value}"));
        }
    }
    for extra in &options.extra {
        let extra = extra.trim();
        if extra.starts_with("#SBATCH") {
            lines.push(extra.to_string());
        } else {
            lines.push(format!("#SBATCH {extra}"));
        }
    }
    lines.push(String::new());
    lines.push(format!(
        "# Array task i trains run i of this list (the same order as {}).",
        MANIFEST_FILE
    ));
    lines.push("set -euo pipefail".into());
    lines.push("runs=(".into());
    for task in &manifest.tasks {
        lines.push(format!("  {}  # {}: {}", task.id, task.index, task.label));
    }
    lines.push(")".into());
    // `${a[@]+"${a[@]}"}`: an empty array under `set -u` in bash before 4.4 too.
    lines.push("threads=()".into());
    lines.push(
        "if [ -n \"${SLURM_CPUS_PER_TASK:-}\" ]; then threads=(--threads \"$SLURM_CPUS_PER_TASK\"); fi"
            .into(),
    );
    // With GPUs asked for, a task that cannot reach one fails loudly instead of quietly
    // training on the CPU.
    let device = if options.gpus_per_task.is_some_and(|g| g > 0) {
        " --device cuda"
    } else {
        ""
    };
    lines.push(format!(
        "exec {} --runs-dir {} run {} --only \"${{runs[$SLURM_ARRAY_TASK_ID]}}\" --manifest {} --slurm-requeue{device} ${{threads[@]+\"${{threads[@]}}\"}}",
        shell_quote(&vaelab.display().to_string()),
        shell_quote(&manifest.runs_dir.display().to_string()),
        shell_quote(&manifest.spec.display().to_string()),
        shell_quote(&manifest_path.display().to_string()),
    ));
    lines.push(String::new());
    lines.join("\n")
}

/// Writes the manifest and sbatch script for the unfinished runs of `selection`; `None`
/// when every run is done.
pub fn prepare(
    store: &RunStore,
    selection: Selection,
    spec: &Path,
    vaelab: &Path,
    options: &SlurmOptions,
) -> Result<Option<JobArray>, SlurmError> {
    let Selection { plan, runs } = selection;
    check_option("partition", &options.partition)?;
    check_option("time", &options.time)?;
    check_option("mem", &options.mem)?;
    if options.max_parallel == Some(0) {
        return Err(SlurmError::Option {
            flag: "max-parallel",
            message: "expected a positive integer, got 0".into(),
        });
    }
    if let Some(bad) = options.extra.iter().find(|l| l.contains('\n')) {
        return Err(SlurmError::Option {
            flag: "sbatch",
            message: format!("expected one line per option, got {bad:?}"),
        });
    }
    let todo = unfinished(store, runs)?;
    if todo.is_empty() {
        return Ok(None);
    }
    let spec_bytes = std::fs::read(spec).map_err(|e| SlurmError::Unreadable {
        path: spec.to_path_buf(),
        detail: e.to_string(),
    })?;
    let created_at = Utc::now();
    let tasks: Vec<ManifestTask> = todo
        .iter()
        .enumerate()
        .map(|(index, run)| ManifestTask {
            index,
            id: run.id.full().to_string(),
            label: run.label.clone(),
        })
        .collect();
    let digest = Sha256::digest(
        tasks
            .iter()
            .map(|t| t.id.as_str())
            .collect::<Vec<_>>()
            .join(",")
            .as_bytes(),
    );
    let manifest = Manifest {
        experiment: plan.experiment.clone(),
        spec: absolute(spec),
        spec_sha256: sha256_hex(&spec_bytes),
        runs_dir: absolute(store.root()),
        created_at,
        tasks,
        submissions: Vec::new(),
    };
    let name = format!(
        "{}-{}-{}",
        crate::experiment::slug(&plan.experiment),
        created_at.format("%Y%m%d-%H%M%S"),
        digest
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let dir = absolute(&store.root().join("slurm").join(name));
    let log_dir = dir.join("logs");
    std::fs::create_dir_all(&log_dir).map_err(|source| StoreError::Io {
        path: log_dir.clone(),
        action: "cannot create directory",
        source,
    })?;
    let job = JobArray {
        script: dir.join(SCRIPT_FILE),
        manifest_path: dir.join(MANIFEST_FILE),
        dir,
        manifest,
    };
    write_manifest(&job.manifest_path, &job.manifest)?;
    write_atomic(
        &job.script,
        script(&job.manifest, &job.manifest_path, options, vaelab, &log_dir).as_bytes(),
    )?;
    Ok(Some(job))
}

fn write_manifest(path: &Path, manifest: &Manifest) -> Result<(), StoreError> {
    let json = serde_json::to_vec_pretty(manifest).expect("a manifest always serializes");
    write_atomic(path, &json)
}

pub fn read_manifest(path: &Path) -> Result<Manifest, SlurmError> {
    std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
        .map_err(|detail| SlurmError::Unreadable {
            path: path.to_path_buf(),
            detail,
        })
}

/// Calls `sbatch --parsable` on the job's script and records the job id in its manifest.
pub fn submit(job: &mut JobArray) -> Result<String, SlurmError> {
    let job_id = sbatch(&job.script, &[])?;
    job.manifest.submissions.push(Submission {
        job_id: job_id.clone(),
        submitted_at: Utc::now(),
    });
    write_manifest(&job.manifest_path, &job.manifest)?;
    Ok(job_id)
}

/// The follow-up job's script, beside the array's.
pub const FOLLOW_UP_FILE: &str = "follow-up.sh";

/// A study with a declared question goes on without anyone at the keyboard: after the
/// array `after` ends (whichever way: `afterany`), one small job runs `command` (this
/// `vaelab slurm SPEC --submit ...` again, from `cwd`), which assesses the study from the
/// store and submits the next round and its own follow-up, or stops once it is answered.
/// Returns the follow-up's job id.
pub fn submit_follow_up(
    job: &JobArray,
    after: &str,
    options: &SlurmOptions,
    command: &[String],
    cwd: &Path,
) -> Result<String, SlurmError> {
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("#SBATCH --job-name=vaelab-{}-next", job.manifest.experiment),
        format!(
            "#SBATCH --output={}",
            job.dir.join("logs").join("follow-up.log").display()
        ),
        "#SBATCH --open-mode=append".into(),
        "#SBATCH --ntasks=1".into(),
    ];
    if let Some(partition) = &options.partition {
        lines.push(format!("#SBATCH --partition={partition}"));
    }
    for extra in &options.extra {
        let extra = extra.trim();
        lines.push(match extra.strip_prefix("#SBATCH") {
            Some(_) => extra.to_string(),
            None => format!("#SBATCH {extra}"),
        });
    }
    lines.push(String::new());
    lines.push("# Plans the study's next round from the store and submits it, or stops.".into());
    lines.push("set -euo pipefail".into());
    lines.push(format!("cd {}", shell_quote(&cwd.display().to_string())));
    let quoted: Vec<String> = command.iter().map(|a| shell_quote(a)).collect();
    lines.push(format!("exec {}", quoted.join(" ")));
    lines.push(String::new());
    let script = job.dir.join(FOLLOW_UP_FILE);
    write_atomic(&script, lines.join("\n").as_bytes())?;
    sbatch(&script, &[format!("--dependency=afterany:{after}")])
}

/// `sbatch --parsable [OPTIONS] SCRIPT`: the job id it prints (`jobid` or `jobid;cluster`).
fn sbatch(script: &Path, options: &[String]) -> Result<String, SlurmError> {
    let failed = |detail: String| SlurmError::Submit {
        script: script.to_path_buf(),
        detail,
    };
    let output = std::process::Command::new("sbatch")
        .arg("--parsable")
        .args(options)
        .arg(script)
        .output()
        .map_err(|e| failed(format!("cannot run sbatch ({e}); is Slurm installed here?")))?;
    if !output.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let id = stdout
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    if id.is_empty() {
        return Err(failed("printed no job id".into()));
    }
    Ok(id)
}

/// Asks Slurm to requeue the job this process runs in (after a checkpoint).
pub fn requeue(ids: &SlurmIds) -> Result<(), String> {
    let output = std::process::Command::new("scontrol")
        .args(["requeue", &ids.job()])
        .output()
        .map_err(|e| format!("cannot run scontrol: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            experiment: "exp".into(),
            spec: "/work/exp's.yaml".into(),
            spec_sha256: "00".into(),
            runs_dir: "/work/runs".into(),
            created_at: Utc::now(),
            tasks: vec![
                ManifestTask {
                    index: 0,
                    id: "a".repeat(64),
                    label: "plain/seed=0".into(),
                },
                ManifestTask {
                    index: 1,
                    id: "b".repeat(64),
                    label: "plain/seed=1".into(),
                },
            ],
            submissions: vec![],
        }
    }

    #[test]
    fn script_asks_for_the_options_a_warning_signal_and_requeue() {
        let options = SlurmOptions {
            partition: Some("gpu".into()),
            time: Some("02:00:00".into()),
            gpus_per_task: Some(1),
            cpus_per_task: Some(8),
            mem: Some("32G".into()),
            max_parallel: Some(4),
            extra: vec!["--account=lab".into(), "#SBATCH --qos=high".into()],
            warning_seconds: 300,
        };
        let text = script(
            &manifest(),
            Path::new("/m.json"),
            &options,
            Path::new("/opt/vaelab"),
            Path::new("/l"),
        );
        for line in [
            "#SBATCH --array=0-1%4",
            "#SBATCH --partition=gpu",
            "#SBATCH --time=02:00:00",
            "#SBATCH --gpus-per-task=1",
            "#SBATCH --cpus-per-task=8",
            "#SBATCH --mem=32G",
            "#SBATCH --account=lab",
            "#SBATCH --qos=high",
            "#SBATCH --requeue",
            "#SBATCH --signal=B:USR1@300",
            "#SBATCH --output=/l/%A_%a.log",
            "#SBATCH --ntasks=1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        // Task i is line i of the list; quoting survives an apostrophe in a path.
        let first = text.find(&"a".repeat(64)).unwrap();
        let second = text.find(&"b".repeat(64)).unwrap();
        assert!(first < second);
        assert!(text.contains("'/work/exp'\\''s.yaml'"));
        assert!(text.contains("--manifest '/m.json' --slurm-requeue --device cuda"));
    }

    #[test]
    fn a_cpu_script_asks_for_one_task_and_lets_vaelab_pick_the_device() {
        let text = script(
            &manifest(),
            Path::new("/m.json"),
            &SlurmOptions::default(),
            Path::new("/opt/vaelab"),
            Path::new("/l"),
        );
        assert!(text.lines().any(|l| l == "#SBATCH --ntasks=1"), "{text}");
        assert!(!text.contains("--device"), "{text}");
        assert!(!text.contains("--gpus-per-task"), "{text}");
    }

    #[test]
    fn ids_come_from_the_environment_format() {
        let ids = SlurmIds {
            job_id: "17".into(),
            array_job_id: Some("15".into()),
            array_task_id: Some("2".into()),
        };
        assert_eq!(ids.job(), "15_2");
        assert_eq!(ids.to_string(), "slurm 15_2 (job 17)");
    }
}
