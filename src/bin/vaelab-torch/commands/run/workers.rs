//! `vaelab run --jobs N`: N worker processes of `vaelab run` on one sweep, each on a device
//! of `--devices` in turn (or a share of the CPU's threads), under the run locks that keep
//! any run from being trained twice. Their lines are relayed with a worker tag, one bar
//! counts finished runs, and one summary closes. Ctrl-C (or SIGTERM) reaches every worker,
//! which checkpoints and exits; then the parent exits with 130.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use tch::Device;
use vaelab::experiment::plan::{PlannedRun, Selection};
use vaelab::progress::Reporter;
use vaelab::runtime::device::device_name;
use vaelab::store::{RunStore, Standing, Target};
use vaelab::train::StopFlag;

use super::EXIT_INTERRUPTED;
use crate::cli::{DeviceChoice, RunArgs};
use crate::commands::{EXIT_USAGE, resolve_device, usage};

/// One worker: where it trains and how many CPU threads it may use.
#[derive(Debug, Clone)]
struct Worker {
    tag: String,
    /// As `--device` names it, what the worker is handed.
    choice: DeviceChoice,
    threads: usize,
}

/// The workers for `args`: devices taken in turn, CPU threads split between the workers.
fn workers(args: &RunArgs) -> Result<Vec<Worker>> {
    if args.max_runs.is_some() || args.slurm_requeue {
        return Err(usage(
            "--jobs: cannot be combined with --max-runs or --slurm-requeue; run one worker per Slurm task instead".into(),
        ));
    }
    let choices = if args.devices.is_empty() {
        vec![args.placement.device]
    } else {
        args.devices.clone()
    };
    let devices = choices
        .into_iter()
        .map(resolve_device)
        .collect::<Result<Vec<_>>>()?;
    let cores = match args.placement.threads {
        Some(threads) if threads < 1 => {
            return Err(usage(format!(
                "--threads: expected a positive integer, got {threads}"
            )));
        }
        Some(threads) => threads as usize,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let threads = (cores / args.jobs).max(1);
    Ok((0..args.jobs)
        .map(|i| {
            let device = devices[i % devices.len()];
            Worker {
                tag: format!("w{} {}", i + 1, device_name(device)),
                choice: match device {
                    Device::Cuda(index) => DeviceChoice::Cuda(index),
                    _ => DeviceChoice::Cpu,
                },
                threads,
            }
        })
        .collect())
}

/// What a worker is handed: its parent's parsed arguments, whole, with its own device,
/// threads and one job, so no flag can be dropped on the way (as `--quiet` once was when
/// the command line was rebuilt by hand). JSON in [`WORKER_ARGS_ENV`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WorkerArgs {
    pub runs_dir: std::path::PathBuf,
    pub quiet: bool,
    pub run: RunArgs,
}

/// The environment variable that carries a worker's [`WorkerArgs`].
pub const WORKER_ARGS_ENV: &str = "VAELAB_WORKER_ARGS";

impl WorkerArgs {
    /// The arguments of `worker`: the parent's, on the worker's device and threads.
    fn of(worker: &Worker, parent: &RunArgs, runs_dir: &std::path::Path, quiet: bool) -> Self {
        let mut run = parent.clone();
        run.jobs = 1;
        run.devices = Vec::new();
        run.placement.device = worker.choice;
        run.placement.threads = Some(worker.threads as i32);
        Self {
            runs_dir: runs_dir.to_path_buf(),
            quiet,
            run,
        }
    }

    /// This process's arguments when it is a worker, read once at its start (and taken out
    /// of the environment, so nothing it starts inherits them).
    pub fn from_env() -> Option<Result<Self>> {
        let text = std::env::var_os(WORKER_ARGS_ENV)?;
        // SAFETY: called first thing in `main`, before any other thread exists.
        unsafe { std::env::remove_var(WORKER_ARGS_ENV) };
        Some(
            serde_json::from_slice(text.as_encoded_bytes())
                .with_context(|| format!("{WORKER_ARGS_ENV}: not a worker's arguments")),
        )
    }
}

/// A worker is `vaelab run` on the same spec and selection (the same `--only` patterns, so
/// a sweep of any size passes no list of ids) with its own device and threads.
fn spawn(worker: &Worker, args: &RunArgs, store: &RunStore, quiet: bool) -> Result<Child> {
    let exe = std::env::current_exe().context("cannot locate the vaelab binary")?;
    let handed = WorkerArgs::of(worker, args, store.root(), quiet);
    let mut command = Command::new(exe);
    command
        // Shown by `ps`; the arguments themselves come from the environment.
        .args(["run", "--worker-of"])
        .arg(std::process::id().to_string())
        .env(WORKER_ARGS_ENV, serde_json::to_string(&handed)?)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start worker {}", worker.tag))
}

/// Epochs each selected run has done, from its state (0 for a run not started): the
/// store, not the workers' lines, says which runs a sweep trained.
fn epochs_done(store: &RunStore, runs: &[&PlannedRun]) -> Vec<u32> {
    runs.iter()
        .map(|run| {
            store
                .run_dir(&run.id)
                .read_state()
                .ok()
                .flatten()
                .map_or(0, |state| state.epochs_done)
        })
        .collect()
}

/// How the selected runs stand now: (complete, failed).
fn tally(store: &RunStore, runs: &[&PlannedRun]) -> (usize, usize) {
    let mut complete = 0;
    let mut failed = 0;
    for run in runs {
        let target = Target::of(&run.config);
        match store.run_dir(&run.id).standing(target) {
            Ok(standing) if standing.is_complete() => complete += 1,
            Ok(Standing::Failed { .. }) => failed += 1,
            _ => {}
        }
    }
    (complete, failed)
}

pub fn execute(
    args: &RunArgs,
    store: &RunStore,
    reporter: &dyn Reporter,
    selection: Selection,
    quiet: bool,
) -> Result<ExitCode> {
    let Selection {
        plan,
        runs: selected,
    } = selection;
    let workers = workers(args)?;
    let stop = StopFlag::new();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.handle())?;
    }
    reporter.note(&format!(
        "{}: {} runs over {} workers ({})",
        plan.experiment,
        selected.len(),
        workers.len(),
        workers
            .iter()
            .map(|w| format!("{}, {} threads", w.tag, w.threads))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    let epochs_before = epochs_done(store, selected);
    let mut children = Vec::with_capacity(workers.len());
    for worker in &workers {
        children.push(spawn(worker, args, store, quiet)?);
    }
    let codes = std::thread::scope(|scope| {
        let relays: Vec<_> = workers
            .iter()
            .zip(children.iter_mut())
            .map(|(worker, child)| {
                let stderr = child.stderr.take();
                scope.spawn(move || relay(&worker.tag, stderr, reporter, quiet))
            })
            .collect();
        let codes = supervise(&mut children, &stop, store, selected, reporter);
        for relay in relays {
            let _ = relay.join();
        }
        codes
    });
    let trained_now = epochs_done(store, selected)
        .iter()
        .zip(&epochs_before)
        .filter(|(after, before)| after > before)
        .count();
    let (complete, failed) = tally(store, selected);
    reporter.note(&format!(
        "{}: {} runs over {} workers: {trained_now} trained now, {complete} complete, {failed} failed, {} not finished",
        plan.experiment,
        selected.len(),
        workers.len(),
        selected.len() - complete - failed
    ));
    if codes.contains(&i32::from(EXIT_INTERRUPTED)) || stop.is_requested() {
        reporter.warn("stopped on request; run again to continue the sweep");
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    if codes.contains(&i32::from(EXIT_USAGE)) {
        return Err(usage(
            "a worker refused its arguments (see its lines above)".into(),
        ));
    }
    Ok(if failed > 0 || codes.iter().any(|&c| c != 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Forwards a worker's lines with its tag. A quiet worker prints only warnings and
/// errors, and they stay warnings here.
fn relay(
    tag: &str,
    stderr: Option<std::process::ChildStderr>,
    reporter: &dyn Reporter,
    quiet: bool,
) {
    let Some(stderr) = stderr else {
        return;
    };
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if quiet {
            let warning = line.strip_prefix("warning: ").unwrap_or(&line);
            reporter.warn(&format!("[{tag}] {warning}"));
        } else {
            reporter.note(&format!("[{tag}] {line}"));
        }
    }
}

/// Waits for every worker, passing a stop request on to those still running, and keeps
/// a bar of finished runs. Returns the workers' exit codes (-1 for a killed one).
fn supervise(
    children: &mut [Child],
    stop: &StopFlag,
    store: &RunStore,
    selected: &[&PlannedRun],
    reporter: &dyn Reporter,
) -> Vec<i32> {
    let mut codes: Vec<Option<i32>> = vec![None; children.len()];
    let mut forwarded = false;
    reporter.start("runs finished", selected.len() as u64, "run");
    while codes.iter().any(Option::is_none) {
        for (child, code) in children.iter_mut().zip(codes.iter_mut()) {
            if code.is_none()
                && let Ok(Some(status)) = child.try_wait()
            {
                *code = Some(status.code().unwrap_or(-1));
            }
        }
        if stop.is_requested() && !forwarded {
            forwarded = true;
            for (child, code) in children.iter().zip(&codes) {
                if code.is_none() {
                    // SIGTERM: the worker finishes its step, checkpoints and exits 130.
                    // SAFETY: kill(2) on a child's pid, which stays valid until it is reaped.
                    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
                }
            }
        }
        let (complete, failed) = tally(store, selected);
        reporter.advance((complete + failed) as u64, "");
        std::thread::sleep(Duration::from_millis(500));
    }
    reporter.finish();
    codes.into_iter().map(|c| c.unwrap_or(-1)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::PlacementArgs;

    /// Every field of the parent's arguments reaches the worker: a `RunArgs` with every
    /// field away from its default comes back whole, but for the worker's own device,
    /// threads and single job. A field added to `RunArgs` travels with no change here.
    #[test]
    fn a_worker_gets_every_argument_of_its_parent() {
        let parent = RunArgs {
            spec: "specs/sweep.yaml".into(),
            only: vec!["plain/*".into(), "abc123".into()],
            max_runs: Some(3),
            slurm_requeue: true,
            manifest: Some("runs/slurm/x/manifest.json".into()),
            jobs: 4,
            devices: vec![DeviceChoice::Cuda(1), DeviceChoice::Cpu],
            placement: PlacementArgs {
                device: DeviceChoice::Auto,
                threads: Some(8),
            },
        };
        let worker = Worker {
            tag: "w2 cuda:1".into(),
            choice: DeviceChoice::Cuda(1),
            threads: 2,
        };
        let handed = WorkerArgs::of(&worker, &parent, std::path::Path::new("/data/runs"), true);
        let text = serde_json::to_string(&handed).unwrap();
        let read: WorkerArgs = serde_json::from_str(&text).unwrap();
        assert_eq!(read, handed);
        assert!(read.quiet);
        assert_eq!(read.runs_dir, std::path::Path::new("/data/runs"));
        let expected = RunArgs {
            jobs: 1,
            devices: Vec::new(),
            placement: PlacementArgs {
                device: DeviceChoice::Cuda(1),
                threads: Some(2),
            },
            ..parent
        };
        assert_eq!(read.run, expected);
    }
}
