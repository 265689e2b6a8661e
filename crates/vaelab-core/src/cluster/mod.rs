//! Scale-out: Slurm job arrays over a sweep's unfinished runs, their manifest, and
//! requeueing a task before its time limit.
pub mod slurm;
