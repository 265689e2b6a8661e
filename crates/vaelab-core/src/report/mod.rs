//! The report of a sweep: figures, comparison tables and visuals under
//! `report/<experiment>/`, as a self-contained `index.html`, a `report.md`, PNG and SVG
//! figures and CSV tables. Reads the run store only; safe while a sweep is training.
pub mod aggregate;
mod document;
pub mod export;
pub mod figures;
mod format;
mod html;
mod latex;
mod markdown;
pub use crate::experiment::metric;
pub mod overview;
mod plots;
mod publish;
pub mod query;
pub mod render;
pub mod sequential;
pub mod stats;
pub mod study;
mod tables;
mod visuals;

pub use format::reading;
pub use publish::write;

use std::path::{Path, PathBuf};

use crate::experiment::plan::Selection;
use crate::progress::Reporter;
use crate::store::{RunStore, StoreError};

pub use aggregate::{Aggregate, Metric};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("figure {name}: {detail}")]
    Figure { name: String, detail: String },
    #[error("{path}: cannot {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
}

pub(crate) fn io<'a>(
    path: &'a Path,
    action: &'static str,
) -> impl FnOnce(std::io::Error) -> ReportError + 'a {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// What a report was made of, for the command's closing line.
#[derive(Debug, Clone)]
pub struct ReportSummary {
    pub dir: PathBuf,
    pub runs: usize,
    pub finished: usize,
    pub figures: usize,
    pub tables: usize,
}

/// A report before it is written: every file, by path relative to the report directory.
pub struct ReportFiles {
    pub files: Vec<(PathBuf, Vec<u8>)>,
    pub figures: usize,
    pub tables: usize,
}

/// Builds the report of `runs` (from `plan`) in memory.
pub fn build(
    store: &RunStore,
    selection: Selection,
    reporter: &dyn Reporter,
) -> Result<(Aggregate, ReportFiles), ReportError> {
    let plan = selection.plan;
    reporter.start(&format!("{} report", plan.experiment), 3, "step");
    let aggregate = aggregate::gather(store, selection);
    reporter.advance(1, "figures");
    let confirmatory = study::assess(store, plan).map_or_else(Vec::new, |a| a.lines());
    let context = render::Context {
        description: plan.description.as_deref(),
        confirmatory: &confirmatory,
    };
    let files = render::render(&aggregate, context);
    reporter.advance(2, "writing");
    reporter.finish();
    Ok((aggregate, files?))
}

/// Builds and writes the report into `dir`.
pub fn report(
    store: &RunStore,
    selection: Selection,
    dir: &Path,
    reporter: &dyn Reporter,
) -> Result<ReportSummary, ReportError> {
    let (aggregate, files) = build(store, selection, reporter)?;
    write(dir, &files)?;
    Ok(ReportSummary {
        dir: dir.to_path_buf(),
        runs: aggregate.runs.len(),
        finished: aggregate.runs.iter().filter(|r| r.finished()).count(),
        figures: files.figures,
        tables: files.tables,
    })
}
