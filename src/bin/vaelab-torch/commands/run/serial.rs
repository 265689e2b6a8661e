//! `vaelab run SPEC` in this process: every selected run that is not done, in order, one
//! failure not stopping the rest, runs held by other processes skipped, Ctrl-C
//! checkpointing before it exits.
use std::process::ExitCode;

use anyhow::Result;

use super::EXIT_INTERRUPTED;
use crate::cli::RunArgs;
use vaelab::experiment::plan::Selection;
use vaelab::progress::Reporter;
use vaelab::store::{RunStore, StoreError};
use vaelab::train::{self, Placement, RunOutcome, StopFlag, TrainError};

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
    let device = crate::commands::placement_device(&args.placement)?;
    let stop = StopFlag::new();
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGUSR1,
    ] {
        signal_hook::flag::register(signal, stop.handle())?;
    }
    // SIGUSR1 alone means "time is running out" (Slurm's warning): the cue to requeue.
    let time_warning = StopFlag::new();
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, time_warning.handle())?;
    let interrupted = || -> ExitCode {
        if args.slurm_requeue && time_warning.is_requested() {
            match vaelab::store::SlurmIds::from_env() {
                Some(ids) => match vaelab::cluster::slurm::requeue(&ids) {
                    Ok(()) => reporter.note(&format!(
                        "{ids}: requeued after the checkpoint; training resumes there when Slurm starts it again"
                    )),
                    Err(detail) => reporter.warn(&format!(
                        "{ids}: requeue failed ({detail}); resubmit to resume from the checkpoint"
                    )),
                },
                None => reporter.warn("--slurm-requeue: not inside a Slurm job; nothing requeued"),
            }
        }
        ExitCode::from(EXIT_INTERRUPTED)
    };
    let placement = Placement {
        device,
        stop: stop.clone(),
        provenance: vaelab::store::Provenance::of_spec(&args.spec),
        ..Placement::default()
    };

    let mut trained = 0usize;
    let mut failed = Vec::new();
    let (mut done, mut busy) = (0usize, 0usize);
    for run in selected {
        if args.max_runs.is_some_and(|max| trained >= max) {
            reporter.note(&format!("--max-runs {}: stopping here", trained));
            break;
        }
        let dir = store.run_dir(&run.id);
        match train::train_run(store, run, &plan.experiment, &placement, reporter) {
            Ok(RunOutcome::AlreadyDone { epochs }) => {
                done += 1;
                reporter.note(&format!(
                    "{} [{}]: already done ({epochs} epochs), nothing to do",
                    run.label,
                    run.id.short()
                ));
            }
            Ok(RunOutcome::Evaluated { epochs }) => {
                done += 1;
                reporter.note(&format!(
                    "{} [{}]: already trained ({epochs} epochs); evaluation made ({})",
                    run.label,
                    run.id.short(),
                    dir.path().display()
                ));
            }
            Ok(RunOutcome::Trained {
                from_epoch,
                to_epoch,
            }) => {
                trained += 1;
                reporter.note(&format!(
                    "{} [{}]: trained epochs {}..={to_epoch} on {} ({})",
                    run.label,
                    run.id.short(),
                    from_epoch + 1,
                    vaelab::runtime::device::device_name(device),
                    dir.path().display()
                ));
            }
            Err(TrainError::Store(StoreError::Locked { holder, .. })) => {
                busy += 1;
                reporter.note(&format!(
                    "{} [{}]: being trained by {holder}; skipped",
                    run.label,
                    run.id.short()
                ));
            }
            Err(error @ TrainError::Interrupted { .. }) => {
                reporter.warn(&error.to_string());
                return Ok(interrupted());
            }
            Err(error) => {
                reporter.warn(&format!(
                    "{} [{}] failed: {error}",
                    run.label,
                    run.id.short()
                ));
                failed.push(run.label.clone());
            }
        }
        if stop.is_requested() {
            reporter.warn("stopped on request; run again to continue the sweep");
            return Ok(interrupted());
        }
    }
    reporter.note(&format!(
        "{}: {trained} trained, {done} already done, {busy} held by other processes, {} failed",
        plan.experiment,
        failed.len()
    ));
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        reporter.warn(&format!(
            "failed runs: {} (see `vaelab status` for reasons)",
            failed.join(", ")
        ));
        Ok(ExitCode::FAILURE)
    }
}
