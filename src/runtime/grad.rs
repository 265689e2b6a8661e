//! What tch does not expose of autograd, through the C++ shim `grad.cpp` (compiled by
//! `build.rs`): forgetting a parameter's gradient, PyTorch's `p.grad = None`.
use tch::Tensor;

unsafe extern "C" {
    fn vaelab_forget_grad(tensor: *mut std::ffi::c_void);
}

/// Leaves `tensor` without a gradient, so the next backward pass hands it its gradient
/// as a fresh tensor instead of adding into a kept one.
pub fn forget_grad(tensor: &mut Tensor) {
    // SAFETY: tch's tensor handle points to a live at::Tensor owned by `tensor`, which
    // the exclusive borrow keeps alive and unshared on this thread for the call.
    unsafe { vaelab_forget_grad(tensor.as_mut_ptr().cast()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn a_forgotten_gradient_is_undefined_and_the_next_backward_does_not_add_to_it() {
        let mut w = Tensor::from_slice(&[2.0f32]).set_requires_grad(true);
        (&w * &w).sum(Kind::Float).backward();
        assert_eq!(w.grad().double_value(&[0]), 4.0);
        forget_grad(&mut w);
        assert!(!w.grad().defined());
        (&w * 3.0).sum(Kind::Float).backward();
        assert_eq!(w.grad().double_value(&[0]), 3.0, "not 4 + 3");
    }
}
