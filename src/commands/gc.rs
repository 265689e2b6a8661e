//! `vaelab gc [SPEC...] [--apply]`: what can go from the store, with sizes; removed only
//! with `--apply`, never from a run that is training.
use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::GcArgs;
use vaelab_core::data::files;
use vaelab_core::progress::Reporter;
use vaelab_core::store::RunStore;
use vaelab_core::store::gc::{self, Candidate, Reason};

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
    let mut fingerprints = HashSet::new();
    for path in &specs {
        for run in super::shared::plan_of(path)?.runs {
            fingerprints.extend(run.config.data.fingerprint.clone());
            produced.insert(run.id);
        }
    }
    let stale_cache: Vec<files::CacheEntry> = files::cache_entries(&files::cache_dir())
        .into_iter()
        .filter(|e| {
            e.fingerprint
                .as_ref()
                .is_none_or(|f| !fingerprints.contains(f))
        })
        .collect();
    for damaged in store.scan()?.damaged {
        reporter.warn(&format!("{}; left alone", damaged.describe()));
    }
    let gc::Collection {
        candidates,
        unreadable,
    } = gc::candidates(store, &produced)?;
    for run in &unreadable {
        reporter.warn(&format!(
            "{}: left alone, a file cannot be read: {}",
            run.path.display(),
            run.error
        ));
    }
    if candidates.is_empty() && stale_cache.is_empty() {
        println!("nothing to remove ({} specs read)", specs.len());
        return Ok(());
    }
    for entry in &stale_cache {
        println!(
            "{:>10}  {:<17}  {:<8}  {}  (decoded images of data no spec reads)",
            megabytes(entry.bytes),
            "stale data cache",
            &entry.key[..8.min(entry.key.len())],
            files::cache_dir().join(&entry.key).display(),
        );
    }
    for c in &candidates {
        let why = match &c.error {
            Some(error) if c.reason == Reason::FailedResumable => format!(": {error}"),
            _ => String::new(),
        };
        println!(
            "{:>10}  {:<17}  {:<8}  {}  ({}){why}",
            megabytes(c.bytes),
            c.reason.describe(),
            c.run,
            c.path.display(),
            c.label
        );
    }
    let (removed, kept): (Vec<&Candidate>, Vec<&Candidate>) = candidates
        .iter()
        .partition(|c| c.removed_by_apply(args.resumable, &args.runs));
    let total: u64 = removed.iter().map(|c| c.bytes).sum::<u64>()
        + stale_cache.iter().map(|e| e.bytes).sum::<u64>();
    if !kept.is_empty() {
        println!(
            "{} failed run(s) can resume from a checkpoint (`vaelab run` the spec again) and stay; --resumable, or --run ID for one, removes them with --apply",
            kept.len()
        );
    }
    if !args.apply {
        println!(
            "{} in {} places can go; run again with --apply to remove them",
            megabytes(total),
            removed.len() + stale_cache.len()
        );
        return Ok(());
    }
    let mut freed = 0;
    for entry in &stale_cache {
        let removed_all = entry
            .files
            .iter()
            .all(|file| match std::fs::remove_file(file) {
                Ok(()) => true,
                Err(error) => {
                    reporter.warn(&format!("{}: kept: {error}", file.display()));
                    false
                }
            });
        if removed_all {
            freed += entry.bytes;
        }
    }
    for c in removed {
        match c.remove(store) {
            Ok(()) => freed += c.bytes,
            Err(error) => reporter.warn(&format!("{}: kept: {error}", c.path.display())),
        }
    }
    println!("removed {}", megabytes(freed));
    Ok(())
}
