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
use vaelab::model::device::device_name;
use vaelab::progress::Reporter;
use vaelab::store::{RunStore, Standing, Target};
use vaelab::train::StopFlag;

use super::EXIT_INTERRUPTED;
use crate::cli::RunArgs;
use crate::commands::{EXIT_USAGE, resolve_device, usage};

/// One worker: where it trains and how many CPU threads it may use.
#[derive(Debug, Clone)]
struct Worker {
    tag: String,
    device: Device,
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
                device,
                threads,
            }
        })
        .collect())
}

/// A worker is `vaelab run` on the same spec and selection (the same `--only` patterns, so
/// a sweep of any size passes no list of ids) with its own device and threads.
fn spawn(worker: &Worker, args: &RunArgs, store: &RunStore) -> Result<Child> {
    let exe = std::env::current_exe().context("cannot locate the vaelab binary")?;
    let mut command = Command::new(exe);
    command
        .arg("--runs-dir")
        .arg(store.root())
        .arg("run")
        .arg(&args.spec);
    if !args.only.is_empty() {
        command.args(["--only", &args.only.join(",")]);
    }
    command
        .args(["--device", &device_name(worker.device)])
        .args(["--threads", &worker.threads.to_string()])
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
        children.push(spawn(worker, args, store)?);
    }
    let codes = std::thread::scope(|scope| {
        let relays: Vec<_> = workers
            .iter()
            .zip(children.iter_mut())
            .map(|(worker, child)| {
                let stderr = child.stderr.take();
                scope.spawn(move || relay(&worker.tag, stderr, reporter))
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

/// Forwards a worker's lines with its tag.
fn relay(tag: &str, stderr: Option<std::process::ChildStderr>, reporter: &dyn Reporter) {
    let Some(stderr) = stderr else {
        return;
    };
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        reporter.note(&format!("[{tag}] {line}"));
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
