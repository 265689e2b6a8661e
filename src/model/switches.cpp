// libtorch's global numerics switches that tch 0.24 does not expose: deterministic cuDNN
// algorithms, cuDNN's benchmark mode, and TF32 for cuDNN convolutions and cuBLAS matmuls.
// Compiled by build.rs against the torch wheel's headers; `src/model/switches.rs` wraps it.
#include <ATen/Context.h>

extern "C" {

void vaelab_set_cudnn_deterministic(int on) { at::globalContext().setDeterministicCuDNN(on != 0); }
int vaelab_cudnn_deterministic() { return at::globalContext().deterministicCuDNN() ? 1 : 0; }

void vaelab_set_cudnn_benchmark(int on) { at::globalContext().setBenchmarkCuDNN(on != 0); }
int vaelab_cudnn_benchmark() { return at::globalContext().benchmarkCuDNN() ? 1 : 0; }

void vaelab_set_tf32(int on) {
  at::globalContext().setAllowTF32CuDNN(on != 0);
  at::globalContext().setAllowTF32CuBLAS(on != 0);
}
int vaelab_tf32_cudnn() { return at::globalContext().allowTF32CuDNN() ? 1 : 0; }
int vaelab_tf32_cublas() { return at::globalContext().allowTF32CuBLAS() ? 1 : 0; }

}
