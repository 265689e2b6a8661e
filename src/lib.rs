//! vaelab: an experiment harness for convolutional VAEs (YAML specs → resumable libtorch
//! runs → Parquet metrics → reports).
//!
//! The layers that touch no tensor live in `vaelab-core` and are re-exported here under
//! their own names, so `vaelab::store` is the one store; this crate adds the layers that
//! link libtorch. Each module is a layer, declared here in the order data flows; a layer
//! imports only `vaelab-core` and the layers declared before it (`tests/it/architecture.rs`
//! keeps it so, and `ARCHITECTURE.md` says what belongs where). The blank lines keep
//! rustfmt from sorting them.
#![warn(unreachable_pub)]

pub use vaelab_core::{cluster, experiment, progress, report, serve, store};

// Random streams as functions of (seed, stream, coordinates).
pub mod rng;

// What the process runs on: devices and hardware, libtorch's switches, malloc settings.
pub mod runtime;

// Datasets decoded into uint8 tensors, and PNG grids.
pub mod data;

// The VAE (one interface over its networks), its loss and precision.
pub mod model;

// Adam over flat, aligned buffers with state a checkpoint holds.
pub mod optim;

// The end-of-run evaluation: metric math and pictures.
pub mod evaluate;

// Training one run: the epoch loop, checkpoints, resume.
pub mod train;

// Benchmarks of the train step, data pipeline, planning and report.
pub mod bench;
