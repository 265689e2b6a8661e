//! `vaelab run`, `bench` and `info`: handed to `vaelab-torch`, the binary beside this one
//! that links libtorch, so the commands that never touch a tensor start without loading
//! it. The hand-over replaces this process (`exec`): the pid, the signals a shell or Slurm
//! sends, the exit code and the terminal all stay the training process's own.
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use anyhow::{Context, Result};

/// The training binary's file name, beside `vaelab`.
pub const TORCH_BINARY: &str = "vaelab-torch";

/// Where `vaelab-torch` is: beside this binary.
pub fn torch_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the vaelab binary")?;
    Ok(exe.with_file_name(TORCH_BINARY))
}

/// Runs this command line in `vaelab-torch`; returns only if it cannot be started.
pub fn hand_over() -> Result<()> {
    let torch = torch_binary()?;
    let mut command = std::process::Command::new(&torch);
    command.args(std::env::args_os().skip(1));
    command.env(super::shared::BUILD_ENV, env!("VAELAB_BUILD_ID"));
    let (key, value) = super::shared::CUBLAS_WORKSPACE;
    if std::env::var_os(key).is_none() {
        command.env(key, value);
    }
    let error = command.exec();
    Err(error).with_context(|| {
        format!(
            "{}: cannot start vaelab's training binary; it ships beside `vaelab` (`cargo build` builds both, `make gpu-binary` copies both)",
            torch.display()
        )
    })
}
