//! What the process runs on, apart from any model: devices and the hardware a checkpoint
//! records (`device`), libtorch's numerics switches through the C++ shim (`switches`),
//! forgetting a gradient (`grad`), and the process's malloc settings (`memory`).
pub mod device;
pub mod grad;
pub mod memory;
pub mod switches;
