// libtorch's global numerics switches that tch 0.24 does not expose: deterministic
// algorithms (cuDNN's and every other operator's), cuDNN's benchmark mode, and TF32 for
// cuDNN convolutions and cuBLAS matmuls. Compiled by build.rs against the torch wheel's
// headers; `src/model/switches.rs` wraps it. No C++ exception crosses `extern "C"` (that
// would abort the process): a failure returns -1.
#include <ATen/Context.h>

#include <type_traits>

namespace {
// Runs `f` (returning 0/1, or nothing for a setter: 0), turning any exception into -1.
template <class F> int guarded(F f) {
  try {
    if constexpr (std::is_void_v<decltype(f())>) {
      f();
      return 0;
    } else {
      return f() ? 1 : 0;
    }
  } catch (...) {
    return -1;
  }
}
at::Context& context() { return at::globalContext(); }
}  // namespace

extern "C" {

int vaelab_set_deterministic(int on) {
  return guarded([on] {
    context().setDeterministicCuDNN(on != 0);
    context().setDeterministicAlgorithms(on != 0, /*warn_only=*/false);
  });
}
int vaelab_cudnn_deterministic() { return guarded([] { return context().deterministicCuDNN(); }); }
int vaelab_deterministic_algorithms() {
  return guarded([] { return context().deterministicAlgorithms(); });
}

int vaelab_set_cudnn_benchmark(int on) {
  return guarded([on] { context().setBenchmarkCuDNN(on != 0); });
}
int vaelab_cudnn_benchmark() { return guarded([] { return context().benchmarkCuDNN(); }); }

int vaelab_set_tf32(int on) {
  return guarded([on] {
    context().setAllowTF32CuDNN(on != 0);
    context().setAllowTF32CuBLAS(on != 0);
  });
}
int vaelab_tf32_cudnn() { return guarded([] { return context().allowTF32CuDNN(); }); }
int vaelab_tf32_cublas() { return guarded([] { return context().allowTF32CuBLAS(); }); }

}
