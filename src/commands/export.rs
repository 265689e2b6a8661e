//! `vaelab export [SPEC] --to FILE`: every run (or a spec's runs) as one table, one row per
//! run, in Parquet or CSV, for polars, pandas or DuckDB.
use anyhow::Result;

use crate::cli::ExportArgs;
use vaelab_core::progress::Reporter;
use vaelab_core::report::export::{self, ExportFormat};
use vaelab_core::store::{RunDir, RunStore};

pub fn execute(args: &ExportArgs, store: &RunStore, reporter: &dyn Reporter) -> Result<()> {
    let Some(format) = ExportFormat::of(&args.to) else {
        return Err(super::usage(format!(
            "--to {}: expected a .parquet or .csv file",
            args.to.display()
        )));
    };
    let listing = store.scan()?;
    for damaged in &listing.damaged {
        reporter.warn(&format!("{}; not exported", damaged.describe()));
    }
    let dirs: Vec<RunDir> = match &args.spec {
        None => listing.runs,
        Some(path) => {
            let plan = super::shared::plan_of(path)?;
            plan.runs
                .iter()
                .map(|run| store.run_dir(&run.id))
                .filter(|dir| dir.exists())
                .collect()
        }
    };
    let rows = export::rows(&dirs, reporter);
    export::write(&rows, &args.to, format)?;
    reporter.note(&format!(
        "{} runs, {} columns: {}",
        rows.len(),
        export::columns(&rows).len(),
        args.to.display()
    ));
    Ok(())
}
