//! `vaelab run SPEC`: train every run of a spec that is not done.
use anyhow::Result;

use crate::cli::RunArgs;
use vaelab::progress::Reporter;
use vaelab::store::RunStore;
use vaelab::train::{self, Placement, RunOutcome};
use vaelab::{plan, spec};

pub fn execute(args: &RunArgs, store: &RunStore, reporter: &dyn Reporter) -> Result<()> {
    let loaded = spec::load(&args.spec)?;
    let runs = plan::plan(&loaded)?;
    let device = super::placement_device(&args.placement)?;
    let placement = Placement {
        device,
        ..Placement::default()
    };
    for run in &runs {
        let dir = store.run_dir(&run.id);
        match train::train_run(store, &run.config, &run.label, &placement, reporter)? {
            RunOutcome::AlreadyDone { epochs } => reporter.note(&format!(
                "{} ({}): already done ({epochs} epochs), nothing to do",
                run.label,
                dir.path().display()
            )),
            RunOutcome::Trained {
                from_epoch,
                to_epoch,
            } => reporter.note(&format!(
                "{} ({}): trained epochs {}..={to_epoch} on {}",
                run.label,
                dir.path().display(),
                from_epoch + 1,
                train::device_name(device)
            )),
        }
    }
    Ok(())
}
