//! `vaelab run SPEC`: the checks every form of the command shares (the Slurm manifest, the
//! spec, `--only`, `--jobs`) and its exit codes, then training in this process (`serial`)
//! or in worker processes (`workers`); a spec with a declared question goes round by round
//! until it is answered (`study`).
mod serial;
mod study;
mod workers;

use std::process::ExitCode;

use anyhow::Result;

use super::{select, usage};
use crate::cli::RunArgs;
use vaelab::experiment::plan::Selection;
use vaelab::progress::Reporter;
use vaelab::store::RunStore;

/// Exit code after Ctrl-C (128 + SIGINT), as shells expect.
pub const EXIT_INTERRUPTED: u8 = 130;

pub use workers::WorkerArgs;

pub fn execute(
    args: &RunArgs,
    store: &RunStore,
    reporter: &dyn Reporter,
    quiet: bool,
) -> Result<ExitCode> {
    if let Some(manifest) = &args.manifest {
        vaelab::cluster::slurm::check_spec_unchanged(manifest, &args.spec)
            .map_err(|e| usage(e.to_string()))?;
    }
    if args.jobs == 0 {
        return Err(usage("--jobs: expected a positive integer, got 0".into()));
    }
    let plan = super::shared::plan_and_warn(&args.spec, reporter)?;
    if plan.question.is_some() && args.only.is_empty() {
        return study::execute(args, store, reporter, &plan, quiet);
    }
    let selected = select(&plan.runs, &args.only)?;
    let selection = Selection {
        plan: &plan,
        runs: &selected,
    };
    train(args, store, reporter, selection, quiet)
}

/// Trains `selection` in this process, or in worker processes with `--jobs`/`--devices`.
fn train(
    args: &RunArgs,
    store: &RunStore,
    reporter: &dyn Reporter,
    selection: Selection,
    quiet: bool,
) -> Result<ExitCode> {
    if args.jobs > 1 || !args.devices.is_empty() {
        workers::execute(args, store, reporter, selection, quiet)
    } else {
        serial::execute(args, store, reporter, selection)
    }
}
