//! What this vaelab can use here: versions, devices, threads, bf16 support, malloc.
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
    /// How this process's malloc treats freed memory ([`super::memory`]).
    pub malloc: super::memory::MallocSetting,
    /// `CUBLAS_WORKSPACE_CONFIG` as this process started with it (deterministic cuBLAS
    /// needs it before the first cuBLAS call).
    pub cublas_workspace_config: Option<String>,
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

/// Names of the GPUs this process sees, in CUDA's order (`cuda:0` first). libtorch does
/// not expose names, so ask the driver's tool, and keep only the GPUs that
/// `CUDA_VISIBLE_DEVICES` lets through, in its order. Asked once per process: the tool
/// takes a noticeable time, and what it lists cannot change under a running process.
pub fn cuda_device_names() -> &'static [String] {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    NAMES.get_or_init(ask_the_driver_for_gpu_names)
}

fn ask_the_driver_for_gpu_names() -> Vec<String> {
    let listed = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=index,uuid,name,memory.total",
            "--format=csv,noheader",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    visible_gpus(
        &listed,
        std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref(),
    )
}

/// From `nvidia-smi`'s `index, uuid, name, memory` lines, the `name, memory` of the GPUs
/// `visible` (CUDA_VISIBLE_DEVICES: indices or UUID prefixes, comma-separated) selects, in
/// its order; every GPU when it is unset. Like CUDA, stops at the first entry that names
/// no GPU.
fn visible_gpus(listed: &str, visible: Option<&str>) -> Vec<String> {
    let gpus: Vec<(String, String, String)> = listed
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ',').map(str::trim);
            let (index, uuid, rest) = (fields.next()?, fields.next()?, fields.next()?);
            Some((index.to_string(), uuid.to_string(), rest.to_string()))
        })
        .collect();
    let Some(visible) = visible else {
        return gpus.into_iter().map(|(_, _, name)| name).collect();
    };
    let mut out = Vec::new();
    for entry in visible.split(',').map(str::trim) {
        let found = gpus.iter().find(|(index, uuid, _)| {
            index == entry
                || (!entry.is_empty() && entry.starts_with("GPU-") && uuid.starts_with(entry))
        });
        match found {
            Some((_, _, name)) => out.push(name.clone()),
            None => break,
        }
    }
    out
}

/// `cpu` or `cuda`: what a checkpoint records, so a resume on the other kind is noticed.
pub fn device_kind(device: Device) -> &'static str {
    if device.is_cuda() { "cuda" } else { "cpu" }
}

/// The CPU's model name, as `/proc/cpuinfo` gives it.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// What computes a run's numbers on `device`, as far as its last bits go: the CPU's model
/// and thread count (oneDNN picks kernels by both), or the GPU's model.
pub fn hardware(device: Device) -> String {
    match gpu_name(device) {
        Some(gpu) => format!("cuda ({gpu})"),
        None if device.is_cuda() => "cuda".into(),
        None => format!("cpu ({}, {} threads)", cpu_model(), tch::get_num_threads()),
    }
}

/// The model of the GPU behind `device`, when it is one and the driver's tool says.
pub fn gpu_name(device: Device) -> Option<String> {
    match device {
        Device::Cuda(index) => cuda_device_names().get(index).cloned(),
        _ => None,
    }
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
            cuda_device_names().to_vec()
        } else {
            Vec::new()
        },
        cpu_threads: tch::get_num_threads(),
        cpu_bf16: flags.iter().any(|f| f == "avx512_bf16"),
        cpu_amx_bf16: flags.iter().any(|f| f == "amx_bf16"),
        default_device: device_name(tch::Device::cuda_if_available()),
        malloc: super::memory::setting(),
        cublas_workspace_config: std::env::var("CUBLAS_WORKSPACE_CONFIG").ok(),
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

/// The libtorch this process runs with: the `version.py` of the torch wheel whose
/// `libtorch_cpu.so` is mapped (a binary carried to another machine loads that machine's
/// through `LD_LIBRARY_PATH`), else the one it was built against (read by `build.rs`).
pub fn libtorch_version() -> &'static str {
    static LOADED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LOADED.get_or_init(|| {
        loaded_libtorch_version().unwrap_or_else(|| env!("VAELAB_LIBTORCH_VERSION").to_string())
    })
}

fn loaded_libtorch_version() -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let library = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.ends_with("/libtorch_cpu.so"))?;
    let torch_dir = std::path::Path::new(library).parent()?.parent()?;
    let text = std::fs::read_to_string(torch_dir.join("version.py")).ok()?;
    text.lines().find_map(|line| {
        line.strip_prefix("__version__ = ")
            .map(|v| v.trim_matches(['\'', '"']).to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTED: &str = "0, GPU-aaaa1111, NVIDIA H100 80GB HBM3, 81559 MiB\n1, GPU-bbbb2222, NVIDIA H100 80GB HBM3, 81559 MiB\n2, GPU-cccc3333, NVIDIA A100-SXM4-40GB, 40960 MiB\n";

    /// The version comes from the library this process mapped, which here is the wheel
    /// the build used.
    #[test]
    fn the_libtorch_version_is_the_loaded_one() {
        let _ = tch::Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu));
        assert_eq!(
            loaded_libtorch_version().as_deref(),
            Some(env!("VAELAB_LIBTORCH_VERSION"))
        );
        assert_eq!(libtorch_version(), env!("VAELAB_LIBTORCH_VERSION"));
    }

    /// The driver's tool runs once per process: a second ask returns the same list, not
    /// a new one (on a GPU machine each ask is a process start).
    #[test]
    fn gpu_names_are_asked_for_once_per_process() {
        let first = cuda_device_names();
        let second = cuda_device_names();
        assert!(std::ptr::eq(first, second));
    }

    #[test]
    fn cuda_visible_devices_selects_and_orders_the_gpus() {
        assert_eq!(visible_gpus(LISTED, None).len(), 3);
        assert_eq!(
            visible_gpus(LISTED, Some("2,0")),
            vec![
                "NVIDIA A100-SXM4-40GB, 40960 MiB",
                "NVIDIA H100 80GB HBM3, 81559 MiB"
            ]
        );
        assert_eq!(
            visible_gpus(LISTED, Some("GPU-bbbb")),
            vec!["NVIDIA H100 80GB HBM3, 81559 MiB"]
        );
        assert!(visible_gpus(LISTED, Some("")).is_empty());
        // CUDA stops at the first entry that names no device.
        assert_eq!(visible_gpus(LISTED, Some("1,7,0")).len(), 1);
    }
}
