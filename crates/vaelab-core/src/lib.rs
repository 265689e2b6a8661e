//! vaelab's layers that touch no tensor: what a person declares, the run store, a
//! dataset's files and fingerprint, reports, the dashboard and Slurm. The commands that
//! need nothing else (`plan`, `status`, `report`, `runs`, `export`, `gc`, `slurm`,
//! `serve`, `--help`) link only this crate, so they start without loading libtorch; the
//! `vaelab` crate adds the layers that train and evaluate.
//!
//! Each module is a layer, declared here in the order data flows; a layer imports only the
//! layers declared before it (`tests/it/architecture.rs` keeps it so, and `ARCHITECTURE.md`
//! says what belongs where). The blank lines keep rustfmt from sorting them.
#![warn(unreachable_pub)]

// How the library speaks to a person: notes, warnings, progress bars.
pub mod progress;

// What a person declares: specs, resolved configs, identity, expansion.
pub mod experiment;

// Run directories and every file in them, the lock, a run's standing.
pub mod store;

// A dataset's files on disk and their content fingerprint; the decode cache's catalogue.
pub mod data;

// Aggregation, statistics, figures and the report document.
pub mod report;

// The live web dashboard over the run store.
pub mod serve;

// Slurm job arrays.
pub mod cluster;
