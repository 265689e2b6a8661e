//! The subcommands that touch no tensor, one module each, and what every command shares
//! (`shared`, compiled into `vaelab-torch` too); `run`, `bench` and `info` are
//! `vaelab-torch`'s, which `torch` hands them to.
pub mod export;
pub mod gc;
pub mod plan;
pub mod report;
pub mod runs;
pub mod serve;
pub mod shared;
pub mod slurm;
pub mod status;
pub mod torch;

pub use shared::{select, usage};
