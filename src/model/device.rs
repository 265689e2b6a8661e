//! What this vaelab can use here: versions, devices, threads, bf16 support.
use serde::Serialize;
use tch::Device;

#[derive(Debug, Clone, Serialize)]
pub struct SystemInfo {
    pub vaelab_version: String,
    pub libtorch_version: String,
    pub cuda_available: bool,
    pub cudnn_available: bool,
    pub cuda_device_count: i64,
    pub cuda_devices: Vec<String>,
    pub cpu_threads: i32,
    pub cpu_bf16: bool,
    pub cpu_amx_bf16: bool,
    pub default_device: String,
}

fn cpu_flags() -> Vec<String> {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("flags"))
                .map(|l| l.split_whitespace().map(str::to_string).collect())
        })
        .unwrap_or_default()
}

/// Names of visible GPUs; libtorch does not expose them, so ask the driver's tool if present.
fn cuda_device_names() -> Vec<String> {
    std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name,memory.total", "--format=csv,noheader"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether this CPU has bf16 arithmetic units (without them libtorch emulates bf16 slowly).
pub fn cpu_has_bf16() -> bool {
    cpu_flags()
        .iter()
        .any(|f| f == "avx512_bf16" || f == "amx_bf16")
}

pub fn collect() -> SystemInfo {
    let flags = cpu_flags();
    let count = tch::Cuda::device_count();
    SystemInfo {
        vaelab_version: env!("CARGO_PKG_VERSION").to_string(),
        libtorch_version: libtorch_version().to_string(),
        cuda_available: tch::Cuda::is_available(),
        cudnn_available: tch::Cuda::cudnn_is_available(),
        cuda_device_count: count,
        cuda_devices: if count > 0 {
            cuda_device_names()
        } else {
            Vec::new()
        },
        cpu_threads: tch::get_num_threads(),
        cpu_bf16: flags.iter().any(|f| f == "avx512_bf16"),
        cpu_amx_bf16: flags.iter().any(|f| f == "amx_bf16"),
        default_device: device_name(tch::Device::cuda_if_available()),
    }
}

/// How run state and logs name a device: `cpu`, `cuda:0`.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The libtorch this binary was built against (read from the wheel by `build.rs`).
pub fn libtorch_version() -> &'static str {
    env!("VAELAB_LIBTORCH_VERSION")
}
