// libtorch's global numerics switches that tch 0.24 does not expose: deterministic
// algorithms (cuDNN's and every other operator's), cuDNN's benchmark mode, and TF32 for
// cuDNN convolutions and cuBLAS matmuls. Compiled by build.rs against the torch wheel's
// headers; `src/model/switches.rs` wraps it. No C++ exception crosses `extern "C"` (that
// would abort the process): a failure returns -1.
#include <ATen/Context.h>

extern "C" {

int vaelab_set_deterministic(int on) {
  try {
    at::globalContext().setDeterministicCuDNN(on != 0);
    at::globalContext().setDeterministicAlgorithms(on != 0, /*warn_only=*/false);
    return 0;
  } catch (...) {
    return -1;
  }
}
int vaelab_cudnn_deterministic() {
  try {
    return at::globalContext().deterministicCuDNN() ? 1 : 0;
  } catch (...) {
    return -1;
  }
}
int vaelab_deterministic_algorithms() {
  try {
    return at::globalContext().deterministicAlgorithms() ? 1 : 0;
  } catch (...) {
    return -1;
  }
}

int vaelab_set_cudnn_benchmark(int on) {
  try {
    at::globalContext().setBenchmarkCuDNN(on != 0);
    return 0;
  } catch (...) {
    return -1;
  }
}
int vaelab_cudnn_benchmark() {
  try {
    return at::globalContext().benchmarkCuDNN() ? 1 : 0;
  } catch (...) {
    return -1;
  }
}

int vaelab_set_tf32(int on) {
  try {
    at::globalContext().setAllowTF32CuDNN(on != 0);
    at::globalContext().setAllowTF32CuBLAS(on != 0);
    return 0;
  } catch (...) {
    return -1;
  }
}
int vaelab_tf32_cudnn() {
  try {
    return at::globalContext().allowTF32CuDNN() ? 1 : 0;
  } catch (...) {
    return -1;
  }
}
int vaelab_tf32_cublas() {
  try {
    return at::globalContext().allowTF32CuBLAS() ? 1 : 0;
  } catch (...) {
    return -1;
  }
}

}
