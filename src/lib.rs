//! vaelab: an experiment harness for convolutional VAEs (YAML specs → resumable libtorch
//! runs → Parquet metrics → reports).
pub mod bench;
pub mod config;
pub mod data;
pub mod evaluation;
pub mod images;
pub mod info;
pub mod model;
pub mod optim;
pub mod overview;
pub mod plan;
pub mod progress;
pub mod report;
pub mod rng;
pub mod slurm;
pub mod spec;
pub mod store;
pub mod train;

/// This machine's name, as recorded in run state and lock holders.
pub fn host_name() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown-host".into())
}
