//! libtorch's global numerics switches that tch does not expose, through a small C++ shim
//! (`switches.cpp`, compiled by `build.rs` against the torch wheel's headers): deterministic
//! cuDNN algorithms, cuDNN's benchmark mode, and TF32 for convolutions and matmuls. They
//! only change CUDA kernels; on the CPU they are set and read back but change nothing.
use std::os::raw::c_int;

unsafe extern "C" {
    fn vaelab_set_cudnn_deterministic(on: c_int);
    fn vaelab_cudnn_deterministic() -> c_int;
    fn vaelab_set_cudnn_benchmark(on: c_int);
    fn vaelab_cudnn_benchmark() -> c_int;
    fn vaelab_set_tf32(on: c_int);
    fn vaelab_tf32_cudnn() -> c_int;
    fn vaelab_tf32_cublas() -> c_int;
}

/// The switches as libtorch holds them now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numerics {
    /// cuDNN picks only deterministic algorithms.
    pub deterministic: bool,
    /// cuDNN times its algorithms for each shape once and keeps the fastest (which may
    /// differ from run to run).
    pub benchmark: bool,
    /// fp32 convolutions (cuDNN) and matmuls (cuBLAS) may run as TF32 on Ampere and later.
    pub tf32_convolutions: bool,
    pub tf32_matmuls: bool,
}

// SAFETY (every call below): the shim's functions take and return plain ints and only set
// or read flags of libtorch's global context, which is initialised when libtorch loads.
pub fn current() -> Numerics {
    unsafe {
        Numerics {
            deterministic: vaelab_cudnn_deterministic() != 0,
            benchmark: vaelab_cudnn_benchmark() != 0,
            tf32_convolutions: vaelab_tf32_cudnn() != 0,
            tf32_matmuls: vaelab_tf32_cublas() != 0,
        }
    }
}

/// Deterministic cuDNN algorithms on or off.
pub fn set_deterministic(on: bool) {
    unsafe { vaelab_set_cudnn_deterministic(c_int::from(on)) }
}

/// cuDNN's benchmark mode on or off.
pub fn set_benchmark(on: bool) {
    unsafe { vaelab_set_cudnn_benchmark(c_int::from(on)) }
}

/// TF32 for both cuDNN convolutions and cuBLAS matmuls.
pub fn set_tf32(on: bool) {
    unsafe { vaelab_set_tf32(c_int::from(on)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shim is linked and each switch reads back what was set. One test, since the
    /// switches are process-wide.
    #[test]
    fn every_switch_reads_back_what_was_set() {
        let before = current();
        for on in [true, false, true] {
            set_deterministic(on);
            set_benchmark(!on);
            set_tf32(!on);
            assert_eq!(
                current(),
                Numerics {
                    deterministic: on,
                    benchmark: !on,
                    tf32_convolutions: !on,
                    tf32_matmuls: !on,
                }
            );
        }
        set_deterministic(before.deterministic);
        set_benchmark(before.benchmark);
        set_tf32(before.tf32_convolutions);
    }
}
