//! vaelab: an experiment harness for convolutional VAEs (YAML specs → resumable libtorch
//! runs → Parquet metrics → reports).
//!
//! Each module is a layer, declared here in the order data flows; a layer imports only the
//! layers declared before it (`tests/it/architecture.rs` keeps it so, and `ARCHITECTURE.md`
//! says what belongs where). The blank lines keep rustfmt from sorting them.
#![warn(unreachable_pub)]

// How the library speaks to a person: notes, warnings, progress bars.
pub mod progress;

// Random streams as functions of (seed, stream, coordinates).
pub mod rng;

// What a person declares: specs, resolved configs, identity, expansion.
pub mod experiment;

// Run directories and every file in them, the lock, a run's standing.
pub mod store;

// Datasets decoded into uint8 tensors, and PNG grids.
pub mod data;

// The VAE, its loss and precision, Adam, device facts.
pub mod model;

// The end-of-run evaluation: metric math and pictures.
pub mod evaluate;

// Training one run: the epoch loop, checkpoints, resume.
pub mod train;

// Aggregation, statistics, figures and the report document.
pub mod report;

// The live web dashboard over the run store.
pub mod serve;

// Slurm job arrays.
pub mod cluster;

// Benchmarks of the train step, data pipeline, planning and report.
pub mod bench;
