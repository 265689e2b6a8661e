//! vaelab: an experiment harness for convolutional VAEs (YAML specs → resumable libtorch
//! runs → Parquet metrics → reports).
//!
//! Each module is a layer, listed here in the order data flows; a layer imports only the
//! layers before it (`tests/it/architecture.rs` keeps it so, and `ARCHITECTURE.md` says
//! what belongs where).
pub mod bench;
pub mod cluster;
pub mod data;
pub mod evaluate;
pub mod experiment;
pub mod model;
pub mod progress;
pub mod report;
pub mod rng;
pub mod store;
pub mod train;
