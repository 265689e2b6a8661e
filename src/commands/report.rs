//! `vaelab report SPEC`: the experiment's figures, tables and visuals into
//! `<report-dir>/<experiment>/`, from whatever the run store holds now.
use std::path::Path;

use anyhow::Result;

use crate::cli::ReportArgs;
use vaelab_core::experiment::plan::Selection;
use vaelab_core::progress::Reporter;
use vaelab_core::report::{self, render};
use vaelab_core::store::RunStore;

pub fn execute(
    args: &ReportArgs,
    store: &RunStore,
    report_dir: &Path,
    reporter: &dyn Reporter,
) -> Result<()> {
    let plan = super::shared::plan_and_warn(&args.spec, reporter)?;
    let (plan, _) = vaelab_core::report::study::narrowed(store, &plan);
    let selected = super::select(&plan.runs, &args.only)?;
    let dir = render::report_path(report_dir, &plan.experiment);
    let selection = Selection {
        plan: &plan,
        runs: &selected,
    };
    let summary = report::report(store, selection, &dir, reporter)?;
    if summary.finished < summary.runs {
        reporter.warn(&format!(
            "{} of {} runs are not finished; the report marks them and leaves them out of the comparison",
            summary.runs - summary.finished,
            summary.runs
        ));
    }
    reporter.note(&format!(
        "report of {} runs ({} figures, {} tables): {}",
        summary.runs,
        summary.figures,
        summary.tables,
        dir.join("index.html").display()
    ));
    Ok(())
}
