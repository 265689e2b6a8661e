// What tch 0.24 does not expose of autograd: forgetting a tensor's gradient, PyTorch's
// `p.grad = None`. Compiled by build.rs with switches.cpp; `src/model/grad.rs` wraps it.
#include <ATen/core/Tensor.h>

extern "C" {

// `tensor` is tch's C tensor handle, a pointer to an at::Tensor.
void vaelab_forget_grad(void *tensor) { static_cast<at::Tensor *>(tensor)->mutable_grad().reset(); }

}
