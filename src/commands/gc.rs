//! `vaelab gc [SPEC...] [--apply]`: what can go from the store, with sizes; removed only
//! with `--apply`, never from a run that is training.
use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::GcArgs;
use vaelab::experiment::{plan, spec};
use vaelab::progress::Reporter;
use vaelab::store::RunStore;
use vaelab::store::gc::{self, Candidate};

/// `experiments/*.yaml` of the working directory, sorted.
fn default_specs() -> Result<Vec<PathBuf>> {
    let dir = PathBuf::from("experiments");
    let mut specs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| {
            format!(
                "{}: cannot list the specs; name them on the command line",
                dir.display()
            )
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    specs.sort();
    Ok(specs)
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub fn execute(args: &GcArgs, store: &RunStore, reporter: &dyn Reporter) -> Result<()> {
    let specs = if args.specs.is_empty() {
        default_specs()?
    } else {
        args.specs.clone()
    };
    let mut produced = HashSet::new();
    for path in &specs {
        produced.extend(
            plan::plan(&spec::load(path)?)?
                .runs
                .into_iter()
                .map(|r| r.id),
        );
    }
    for damaged in store.scan()?.damaged {
        reporter.warn(&format!("{}; left alone", damaged.describe()));
    }
    let candidates: Vec<Candidate> = gc::candidates(store, &produced)?;
    if candidates.is_empty() {
        println!("nothing to remove ({} specs read)", specs.len());
        return Ok(());
    }
    for c in &candidates {
        println!(
            "{:>10}  {:<16}  {:<8}  {}  ({})",
            megabytes(c.bytes),
            c.reason.describe(),
            c.run,
            c.path.display(),
            c.label
        );
    }
    let total: u64 = candidates.iter().map(|c| c.bytes).sum();
    if !args.apply {
        println!(
            "{} in {} places can go; run again with --apply to remove them",
            megabytes(total),
            candidates.len()
        );
        return Ok(());
    }
    let mut freed = 0;
    for c in &candidates {
        match c.remove(store) {
            Ok(()) => freed += c.bytes,
            Err(error) => reporter.warn(&format!("{}: kept: {error}", c.path.display())),
        }
    }
    println!("removed {}", megabytes(freed));
    Ok(())
}
