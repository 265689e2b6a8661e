//! `vaelab slurm` on a real one-node Slurm cluster (Debian's slurm-wlm and munge, brought
//! up in a temporary directory by scripts/slurm-cluster.sh, as root): a sweep runs as a job
//! array with every run trained once, and a requeued task resumes bit for bit.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{Workspace, read_state, tiny_sweep};

struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

fn cluster_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm-cluster.sh")
}

impl Cluster {
    /// A running cluster, or `None` (with the reason printed) where one cannot be had;
    /// where Slurm must be there (see [`crate::common::skip_or_fail`]) a failure instead.
    fn start() -> Option<Self> {
        let dir = tempfile::Builder::new()
            .prefix("vaelab-slurm-")
            .tempdir()
            .expect("temp dir");
        let output = Command::new(cluster_script())
            .arg("start")
            .arg(dir.path())
            .output()
            .expect("run slurm-cluster.sh");
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        if output.status.code() == Some(3) {
            crate::common::skip_or_fail(&format!("no Slurm cluster possible here: {stderr}"));
            return None;
        }
        assert!(output.status.success(), "Slurm did not start: {stderr}");
        let conf = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        Some(Self { dir, conf })
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SLURM_CONF", &self.conf);
        cmd
    }

    /// Runs a Slurm command against this cluster; its stdout, or a panic with its stderr.
    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self.command(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether `job` has no element left in the queue (a job already purged from the
    /// controller counts as gone).
    fn job_gone(&self, job: &str) -> bool {
        let out = self
            .command("squeue")
            .args(["-h", "-j", job])
            .output()
            .unwrap();
        !out.status.success() || out.stdout.iter().all(u8::is_ascii_whitespace)
    }

    fn logs(&self) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(self.dir.path().join("log"))
            .into_iter()
            .flatten()
        {
            let path = entry.unwrap().path();
            text += &format!("== {}\n", path.display());
            text += &std::fs::read_to_string(&path).unwrap_or_default();
        }
        text
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(cluster_script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// Run directories (not the `slurm/` job directories) under `runs`.
fn run_dirs(runs: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(runs)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.join("config.yaml").exists())
                .collect()
        })
        .unwrap_or_default()
}

/// Text of every array task log the job wrote.
fn task_logs(runs: &Path) -> String {
    let mut text = String::new();
    for job in std::fs::read_dir(runs.join("slurm")).into_iter().flatten() {
        let logs = job.unwrap().path().join("logs");
        for log in std::fs::read_dir(logs).into_iter().flatten() {
            text += &std::fs::read_to_string(log.unwrap().path()).unwrap_or_default();
        }
    }
    text
}

fn wait_until(
    what: &str,
    limit: Duration,
    cluster: &Cluster,
    runs: &Path,
    done: impl Fn() -> bool,
) {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > limit {
            let queue = cluster.command("squeue").output().unwrap();
            panic!(
                "timed out waiting for {what}\nsqueue:\n{}\ntask logs:\n{}\ncluster logs:\n{}",
                String::from_utf8_lossy(&queue.stdout),
                task_logs(runs),
                cluster.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Waits until the job's first run has an epoch of metrics on disk.
fn wait_for_first_epoch(cluster: &Cluster, runs: &Path) {
    wait_until(
        "the first epoch",
        Duration::from_secs(180),
        cluster,
        runs,
        || {
            run_dirs(runs)
                .first()
                .is_some_and(|d| d.join("metrics.parquet").exists())
        },
    );
}

fn all_done(runs: &Path, expected: usize) -> bool {
    let dirs = run_dirs(runs);
    dirs.len() == expected
        && dirs
            .iter()
            .all(|d| d.join("state.json").exists() && read_state(d)["status"] == "done")
}

fn submit(ws: &Workspace, cluster: &Cluster, spec: &Path) -> String {
    submit_with(ws, cluster, spec, &[])
}

/// Submits `spec` with `env` added to the environment sbatch passes on to the tasks.
fn submit_with(ws: &Workspace, cluster: &Cluster, spec: &Path, env: &[(&str, &str)]) -> String {
    let out = ws
        .vaelab(&[
            "slurm",
            spec.to_str().unwrap(),
            "--submit",
            "--cpus-per-task",
            "1",
        ])
        .env("SLURM_CONF", &cluster.conf)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(job.parse::<u64>().is_ok(), "job id {job:?}");
    job
}

#[test]
fn a_sweep_runs_as_a_job_array_with_every_run_trained_once_and_reports() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let ws = Workspace::new();
    let spec = ws.write("sweep.yaml", &tiny_sweep("slurmsweep", 2));
    let job = submit(&ws, &cluster, &spec);
    let runs = ws.runs();
    // Every task has left the queue (a task writes its summary line after the run's
    // state says done, so "done" alone may come before its log is whole).
    wait_until(
        "4 runs done and the job gone from the queue",
        Duration::from_secs(300),
        &cluster,
        &runs,
        || all_done(&runs, 4) && cluster.job_gone(&job),
    );

    let logs = task_logs(&runs);
    let mut trained = crate::common::trained_labels(logs.as_bytes());
    trained.sort();
    assert_eq!(
        trained,
        crate::common::TINY_SWEEP_LABELS,
        "every run trained exactly once:\n{logs}"
    );
    // Task i trained manifest entry i, and each run holds exactly its 2 epochs.
    let manifest = std::fs::read_dir(runs.join("slurm"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("manifest.json"))
        .find(|p| p.is_file())
        .expect("manifest.json");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let tasks = manifest["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 4);
    for dir in run_dirs(&runs) {
        let state = read_state(&dir);
        assert_eq!(state["slurm"]["array_job_id"], job.as_str(), "{state}");
        let task: usize = state["slurm"]["array_task_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let entry = &tasks[task];
        assert_eq!(entry["index"], task);
        assert!(
            entry["id"]
                .as_str()
                .unwrap()
                .starts_with(dir.file_name().unwrap().to_str().unwrap()),
            "task {task} trained {} but the manifest gives it {}",
            dir.display(),
            entry["id"]
        );
        let epochs: Vec<u32> = vaelab::store::read_metrics_file(&dir.join("metrics.parquet"))
            .unwrap()
            .iter()
            .map(|m| m.epoch)
            .collect();
        assert_eq!(epochs, [1, 2], "{}", dir.display());
    }
    let status = ws.vaelab(&["status"]).output().unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    for task in 0..4 {
        assert!(status.contains(&format!("[slurm {job}_{task}")), "{status}");
    }
    ws.vaelab(&["--report-dir", "report", "report", spec.to_str().unwrap()])
        .assert()
        .success();
    // Opened, not only found: the page names every run and compares the two variants.
    let page = std::fs::read_to_string(ws.path().join("report/slurmsweep/index.html")).unwrap();
    for label in crate::common::TINY_SWEEP_LABELS {
        assert!(page.contains(label), "{label} missing from the report");
    }
    assert!(page.contains("plain") && page.contains("against residual"));
    // Nothing left to do: no second array.
    let again = ws
        .vaelab(&["slurm", spec.to_str().unwrap()])
        .env("SLURM_CONF", &cluster.conf)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stderr).contains("every selected run is done"));
}

fn learned(run: &Path) -> Vec<Vec<u64>> {
    vaelab::store::read_metrics_file(&run.join("metrics.parquet"))
        .unwrap()
        .iter()
        .map(|m| m.learned().into_iter().map(f64::to_bits).collect())
        .collect()
}

/// How a running task is interrupted.
enum Interruption {
    /// The scheduler requeues it (`scontrol requeue`): SIGTERM, then back in the queue.
    Scontrol,
    /// Slurm's time-limit warning (SIGUSR1 to the batch shell): vaelab checkpoints and
    /// requeues its own job.
    TimeWarning,
}

#[test]
fn a_requeued_task_resumes_and_ends_bit_identical_to_an_uninterrupted_run() {
    interrupted_task_resumes_bit_identical(Interruption::Scontrol);
}

#[test]
fn on_the_time_limit_warning_vaelab_checkpoints_requeues_and_resumes() {
    interrupted_task_resumes_bit_identical(Interruption::TimeWarning);
}

/// The step after which the array element is interrupted: epoch 2 (of 3), step 5 (of 64).
const INTERRUPTED_AT: &str = "step:2:5";

fn interrupted_task_resumes_bit_identical(how: Interruption) {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let ws = Workspace::new();
    let spec = ws.write(
        "one.yaml",
        "name: requeue\nseed: 5\ndata:\n  image_size: 32\n  train_images: 1024\n  val_images: 32\n\
         model:\n  latent_dim: 8\n  channels: [16, 32]\ntrain:\n  epochs: 3\n  batch_size: 16\n\
         eval:\n  iwae_samples: 2\n  iwae_images: 4\n",
    );
    // The array element itself asks Slurm to interrupt it after INTERRUPTED_AT and waits there for
    // the signal, so the stop lands mid-epoch whenever Slurm delivers it. The marker makes
    // it ask once: the requeued task passes the same point and trains on.
    let marker = ws.path().join("interrupted-once");
    let task = r#""${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}""#;
    let interrupt = match how {
        Interruption::Scontrol => format!("scontrol requeue {task}"),
        Interruption::TimeWarning => format!("scancel --batch --signal=USR1 {task}"),
    };
    let command = format!("mkdir '{}' && {interrupt}", marker.display());
    let job = submit_with(
        &ws,
        &cluster,
        &spec,
        &[
            (vaelab::store::crash::CRASH_AT_ENV, INTERRUPTED_AT),
            (vaelab::store::crash::CRASH_SIGNAL_ENV, "COMMAND"),
            (vaelab::store::crash::CRASH_COMMAND_ENV, &command),
        ],
    );
    let runs = ws.runs();
    let task = format!("{job}_0");
    wait_until(
        "the array element to stop on request",
        Duration::from_secs(240),
        &cluster,
        &runs,
        || marker.exists() && task_logs(&runs).contains("stopped on request"),
    );
    // Slurm holds a requeued job for two minutes (BeginTime); once it is back in the
    // queue, lift the hold so that the test does not sit out the wait.
    wait_until(
        "the array element to be pending again",
        Duration::from_secs(120),
        &cluster,
        &runs,
        || {
            cluster
                .run("squeue", &["-h", "-j", &task, "-o", "%T"])
                .trim()
                == "PENDING"
        },
    );
    cluster.run(
        "scontrol",
        &["update", &format!("JobId={task}"), "StartTime=now"],
    );
    wait_until(
        "the requeued run to finish",
        Duration::from_secs(400),
        &cluster,
        &runs,
        || all_done(&runs, 1),
    );
    let logs = task_logs(&runs);
    if let Interruption::TimeWarning = how {
        assert!(logs.contains("requeued after the checkpoint"), "{logs}");
    }
    // Stopped right after step 5 of epoch 2: the checkpoint holds epoch 1 and 6 steps.
    assert!(
        logs.contains("resuming from epoch 1 of 3 plus 6 steps"),
        "{logs}"
    );

    // The same run, uninterrupted, on the CPU with the same thread count.
    let reference_ws = Workspace::new();
    reference_ws
        .vaelab(&[
            "run",
            spec.to_str().unwrap(),
            "--threads",
            "1",
            "--device",
            "cpu",
        ])
        .assert()
        .success();
    let reference = reference_ws.runs();
    let slurm_run = run_dirs(&runs).pop().unwrap();
    let reference_run = run_dirs(&reference).pop().unwrap();
    assert_eq!(learned(&slurm_run), learned(&reference_run));
    for file in ["model.safetensors", "optimizer.safetensors"] {
        let bytes =
            |run: &Path| std::fs::read(run.join("checkpoints/epoch-0003").join(file)).unwrap();
        assert!(
            bytes(&slurm_run) == bytes(&reference_run),
            "final {file} differs"
        );
    }
}

/// `scancel` stops a task for good: vaelab checkpoints on the SIGTERM and exits, the run
/// reads interrupted, and Slurm does not queue the array element again.
#[test]
fn scancel_stops_a_task_with_a_checkpoint_and_without_requeueing() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let ws = Workspace::new();
    let spec = ws.write(
        "long.yaml",
        "name: cancelled\nseed: 2\ndata:\n  image_size: 32\n  train_images: 1024\n  val_images: 32\n\
         model:\n  latent_dim: 8\n  channels: [16, 32]\ntrain:\n  epochs: 50\n  batch_size: 16\n",
    );
    let job = submit(&ws, &cluster, &spec);
    let runs = ws.runs();
    wait_for_first_epoch(&cluster, &runs);
    let task = format!("{job}_0");
    cluster.run("scancel", &[&task]);
    let run = run_dirs(&runs).pop().unwrap();
    wait_until(
        "the array element to stop",
        Duration::from_secs(60),
        &cluster,
        &runs,
        || read_state(&run)["status"] == "interrupted",
    );
    // The element's record in its final state: CANCELLED (not COMPLETING) means every
    // process of the array element has ended, so its restart count below is final.
    let record = || cluster.run("scontrol", &["-o", "show", "job", &task]);
    wait_until(
        "the array element's final state",
        Duration::from_secs(60),
        &cluster,
        &runs,
        || record().contains("JobState=CANCELLED"),
    );
    let final_record = record();
    assert!(final_record.contains("Restarts=0"), "{final_record}");
    let queued = cluster.run("squeue", &["-h", "-j", &job, "-o", "%i %T"]);
    assert!(queued.trim().is_empty(), "still queued: {queued}");
    let logs = task_logs(&runs);
    assert!(logs.contains("stopped on request"), "{logs}");
    assert!(!logs.contains("requeued"), "{logs}");
    assert!(read_state(&run)["epochs_done"].as_u64().unwrap() < 50);
}

/// A spec with a declared question under Slurm: `--submit` sends the first round's array
/// and a follow-up job that, once the array ends, plans the next round and submits it with
/// a follow-up of its own, until the question is answered; the study ends with the runs
/// and decisions of the same study run in one process.
#[test]
fn a_declared_question_goes_round_by_round_under_slurm_to_the_local_answer() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let text = crate::study::spec(0.5, 5);
    let local = Workspace::new();
    let local_spec = local.write("settle.yaml", &text);
    local
        .vaelab(&["run", local_spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success();
    let decisions = |ws: &Workspace, spec: &Path| -> Vec<String> {
        let output = ws
            .vaelab(&["plan", spec.to_str().unwrap()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| l.contains(" vs small: ") || l.starts_with("answered"))
            .map(str::to_string)
            .collect()
    };
    let answer = decisions(&local, &local_spec);
    assert!(
        answer
            .iter()
            .any(|l| l == "answered: every declared comparison is decided")
    );

    let ws = Workspace::new();
    let spec = ws.write("settle.yaml", &text);
    submit(&ws, &cluster, &spec);
    let runs = ws.runs();
    let expected = run_dirs(&local.runs()).len();
    wait_until(
        "the study answered and its jobs gone from the queue",
        Duration::from_secs(600),
        &cluster,
        &runs,
        || {
            all_done(&runs, expected)
                && cluster.run("squeue", &["-h", "-o", "%i"]).trim().is_empty()
        },
    );
    assert_eq!(decisions(&ws, &spec), answer);
    // Two rounds, so two arrays, each with its follow-up; the last follow-up found the
    // question answered and submitted nothing.
    let jobs: Vec<PathBuf> = std::fs::read_dir(runs.join("slurm"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let follow_up_logs: String = jobs
        .iter()
        .map(|j| std::fs::read_to_string(j.join("logs/follow-up.log")).unwrap_or_default())
        .collect();
    assert!(
        follow_up_logs.contains("answered: every declared comparison is decided"),
        "{follow_up_logs}"
    );
}
