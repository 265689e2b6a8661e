//! `vaelab status`: every run in the store, with progress, last losses and ETA.
use anyhow::Result;

use crate::cli::StatusArgs;
use vaelab_core::report::overview::{self, human_duration};
use vaelab_core::store::RunStore;

pub fn execute(args: &StatusArgs, store: &RunStore) -> Result<()> {
    let runs = overview::store_view(store)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(());
    }
    if runs.is_empty() {
        println!("no runs in {}", store.root().display());
        return Ok(());
    }
    let width = runs
        .iter()
        .map(|r| r.experiment.len() + r.label.len() + 1)
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "{:<8}  {:<width$}  {:>9}  {:>9}  {:>8}  STATUS",
        "ID", "RUN", "TRAIN", "VAL", "ETA"
    );
    for run in &runs {
        let (train, val) = run
            .last
            .as_ref()
            .map(|l| (format!("{:.3}", l.train_loss), format!("{:.3}", l.val_loss)))
            .unwrap_or_else(|| ("-".into(), "-".into()));
        println!(
            "{:<8}  {:<width$}  {:>9}  {:>9}  {:>8}  {}",
            run.short_id,
            format!("{}/{}", run.experiment, run.label),
            train,
            val,
            run.eta_seconds
                .map(human_duration)
                .unwrap_or_else(|| "-".into()),
            match &run.slurm {
                Some(ids) => format!("{} [{ids}]", run.description),
                None => run.description.clone(),
            }
        );
    }
    Ok(())
}
