//! `vaelab run SPEC`: the checks every form of the command shares (the Slurm manifest, the
//! spec, `--only`, `--jobs`) and its exit codes, then training in this process (`serial`)
//! or in worker processes (`workers`).
mod serial;
mod workers;

use std::process::ExitCode;

use anyhow::Result;

use super::{select, usage};
use crate::cli::RunArgs;
use vaelab::data::fingerprint;
use vaelab::experiment::plan::Selection;
use vaelab::experiment::spec;
use vaelab::progress::Reporter;
use vaelab::store::RunStore;

/// Exit code after Ctrl-C (128 + SIGINT), as shells expect.
pub const EXIT_INTERRUPTED: u8 = 130;

pub fn execute(args: &RunArgs, store: &RunStore, reporter: &dyn Reporter) -> Result<ExitCode> {
    if let Some(manifest) = &args.manifest {
        vaelab::cluster::slurm::check_spec_unchanged(manifest, &args.spec)
            .map_err(|e| usage(e.to_string()))?;
    }
    if args.jobs == 0 {
        return Err(usage("--jobs: expected a positive integer, got 0".into()));
    }
    let loaded = spec::load(&args.spec)?;
    let plan = fingerprint::plan(&loaded)?;
    for warning in &plan.warnings {
        reporter.warn(warning);
    }
    let selected = select(&plan.runs, &args.only)?;
    let selection = Selection {
        plan: &plan,
        runs: &selected,
    };
    if args.jobs > 1 || !args.devices.is_empty() {
        workers::execute(args, store, reporter, selection)
    } else {
        serial::execute(args, store, reporter, selection)
    }
}
