//! `vaelab info`: versions, devices, threads, bf16, malloc.
use anyhow::Result;

use crate::cli::InfoArgs;

pub fn execute(args: &InfoArgs) -> Result<()> {
    let info = vaelab::runtime::device::collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    println!("vaelab           {}", info.vaelab_version);
    println!("libtorch         {}", info.libtorch_version);
    println!("cuda available   {}", info.cuda_available);
    println!("cudnn available  {}", info.cudnn_available);
    println!("cuda devices     {}", info.cuda_device_count);
    for (i, name) in info.cuda_devices.iter().enumerate() {
        println!("  cuda:{i}         {name}");
    }
    println!("cpu threads      {}", info.cpu_threads);
    println!(
        "cpu bf16         avx512_bf16={} amx_bf16={}",
        info.cpu_bf16, info.cpu_amx_bf16
    );
    println!("default device   {}", info.default_device);
    println!("cpu malloc       {}", info.malloc.describe());
    println!(
        "cublas workspace {}",
        info.cublas_workspace_config.as_deref().unwrap_or("unset")
    );
    Ok(())
}
