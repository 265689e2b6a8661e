//! One module per subcommand; each turns parsed arguments into library calls and output.
pub mod bench;
pub mod info;
pub mod run;

use anyhow::{Result, bail};
use tch::Device;

use crate::cli::{DeviceChoice, PlacementArgs};

/// Exit code for mistakes in what the user asked for (bad spec, bad flag value).
pub const EXIT_USAGE: u8 = 2;

/// Resolves `--device` and `--threads` into a libtorch device, refusing CUDA when absent.
pub fn placement_device(args: &PlacementArgs) -> Result<Device> {
    if let Some(threads) = args.threads {
        if threads < 1 {
            bail!("--threads: expected a positive integer, got {threads}");
        }
        tch::set_num_threads(threads);
    }
    Ok(match args.device {
        DeviceChoice::Auto => Device::cuda_if_available(),
        DeviceChoice::Cpu => Device::Cpu,
        DeviceChoice::Cuda => {
            if !tch::Cuda::is_available() {
                bail!(
                    "--device cuda: no CUDA device is visible (see `vaelab info`); use --device cpu or auto"
                );
            }
            Device::Cuda(0)
        }
    })
}
