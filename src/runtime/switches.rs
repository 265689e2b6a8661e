//! libtorch's global numerics switches that tch does not expose, through a small C++ shim
//! (`switches.cpp`, compiled by `build.rs` against the torch wheel's headers): deterministic
//! algorithms (cuDNN's and every operator's), cuDNN's benchmark mode, and TF32 for
//! convolutions and matmuls. Training sets them only on CUDA; the shim catches every C++
//! exception, and a failure reads back as -1, a panic here with the switch's name.
use std::os::raw::c_int;

unsafe extern "C" {
    fn vaelab_set_deterministic(on: c_int) -> c_int;
    fn vaelab_cudnn_deterministic() -> c_int;
    fn vaelab_deterministic_algorithms() -> c_int;
    fn vaelab_set_cudnn_benchmark(on: c_int) -> c_int;
    fn vaelab_cudnn_benchmark() -> c_int;
    fn vaelab_set_tf32(on: c_int) -> c_int;
    fn vaelab_tf32_cudnn() -> c_int;
    fn vaelab_tf32_cublas() -> c_int;
}

/// A switch's state from the shim: 1 on, 0 off, -1 libtorch raised (caught in C++).
fn flag(name: &str, value: c_int) -> bool {
    assert!(value >= 0, "libtorch refused to {name}");
    value == 1
}

/// The switches as libtorch holds them now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numerics {
    /// cuDNN picks only deterministic algorithms, and so does every other operator
    /// (`torch.use_deterministic_algorithms`).
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
        let cudnn = flag(
            "read the deterministic switch",
            vaelab_cudnn_deterministic(),
        );
        let algorithms = flag(
            "read the deterministic switch",
            vaelab_deterministic_algorithms(),
        );
        Numerics {
            deterministic: cudnn && algorithms,
            benchmark: flag("read the benchmark switch", vaelab_cudnn_benchmark()),
            tf32_convolutions: flag("read the TF32 switch", vaelab_tf32_cudnn()),
            tf32_matmuls: flag("read the TF32 switch", vaelab_tf32_cublas()),
        }
    }
}

/// Deterministic algorithms on or off: cuDNN's and every operator's. cuBLAS's fixed
/// workspace, which determinism needs too, is in the environment before the process
/// starts (`vaelab-torch` sees to it), since setting it here would race libtorch's threads.
pub fn set_deterministic(on: bool) {
    flag("set deterministic algorithms", unsafe {
        vaelab_set_deterministic(c_int::from(on))
    });
}

/// cuDNN's benchmark mode on or off.
pub fn set_benchmark(on: bool) {
    flag("set the benchmark switch", unsafe {
        vaelab_set_cudnn_benchmark(c_int::from(on))
    });
}

/// TF32 for both cuDNN convolutions and cuBLAS matmuls.
pub fn set_tf32(on: bool) {
    flag("set the TF32 switch", unsafe {
        vaelab_set_tf32(c_int::from(on))
    });
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
