//! `vaelab-torch`'s subcommands, the ones that touch tensors (`run`, `bench`, `info`),
//! and turning `--device` into a libtorch device.
pub mod bench;
pub mod info;
pub mod run;
#[path = "../../../commands/shared.rs"]
pub mod shared;

use anyhow::Result;
use tch::Device;

use crate::cli::{DeviceChoice, PlacementArgs};
pub use shared::{EXIT_USAGE, select, usage};

/// Makes sure cuBLAS's fixed workspace is in this process's environment from its start
/// ([`shared::CUBLAS_WORKSPACE`]): when it is not, runs this binary again with it, before
/// libtorch has started a thread. Should that fail, this process goes on without it.
pub fn start_with_cublas_workspace() {
    use std::os::unix::process::CommandExt;
    let (key, value) = shared::CUBLAS_WORKSPACE;
    if std::env::var_os(key).is_some() {
        return;
    }
    if let Ok(exe) = std::env::current_exe() {
        let _failed = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env(key, value)
            .exec();
    }
}

/// Refuses to run for a `vaelab` of another build: the launcher hands over its build id,
/// and a `vaelab-torch` left from an earlier build would train with other code than the
/// launcher planned with.
pub fn check_same_build() -> Result<()> {
    let Some(launcher) = std::env::var_os(shared::BUILD_ENV) else {
        return Ok(());
    };
    let ours = env!("VAELAB_BUILD_ID");
    if launcher.to_string_lossy() == ours {
        return Ok(());
    }
    let here =
        std::env::current_exe().map_or_else(|_| "vaelab-torch".into(), |p| p.display().to_string());
    Err(usage(format!(
        "{here} is from another build than the `vaelab` that started it (build {ours}, the launcher's is {}): build both again (`cargo build`, or `make build`), or copy both from one `make gpu-binary`",
        launcher.to_string_lossy()
    )))
}

/// Resolves `--device` and `--threads` into a libtorch device, refusing CUDA when absent.
pub fn placement_device(args: &PlacementArgs) -> Result<Device> {
    if let Some(threads) = args.threads {
        if threads < 1 {
            return Err(usage(format!(
                "--threads: expected a positive integer, got {threads}"
            )));
        }
        tch::set_num_threads(threads);
    }
    resolve_device(args.device)
}

/// A `--device` choice as a libtorch device, refusing a GPU that is not visible.
pub fn resolve_device(choice: DeviceChoice) -> Result<Device> {
    Ok(match choice {
        DeviceChoice::Auto => Device::cuda_if_available(),
        DeviceChoice::Cpu => Device::Cpu,
        DeviceChoice::Cuda(index) => {
            let count = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
            if index >= count {
                let visible = match count {
                    0 => "no CUDA device is visible".to_string(),
                    1 => "only cuda:0 is visible".to_string(),
                    n => format!("cuda:0 to cuda:{} are visible", n - 1),
                };
                return Err(usage(format!(
                    "--device cuda:{index}: {visible} (see `vaelab info` and CUDA_VISIBLE_DEVICES); use --device cpu or auto"
                )));
            }
            Device::Cuda(index)
        }
    })
}
