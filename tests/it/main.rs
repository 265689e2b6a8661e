//! vaelab's integration tests, in one binary so that libtorch, polars and the browser
//! driver are linked once. Each module drives the real `vaelab` binary on temp dirs.
mod architecture;
mod common;
mod datasets;
mod pytorch_interop;
mod report;
mod resume;
mod run;
mod serve;
mod slurm;
mod study;
mod sweep;
