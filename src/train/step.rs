//! The one training step, shared by the trainer and `vaelab bench` so that the benchmark
//! times exactly what training runs.
use tch::Tensor;

use super::schedule::StepSettings;
use crate::data;
use crate::model::{LossTerms, Vae};
use crate::optim::adam::Adam;

/// Images `order[start .. start + len]` of a uint8 dataset (N, 3, S, S), as floats in
/// [0, 1] on the dataset's device.
pub fn gather_batch(images: &Tensor, order: &Tensor, start: i64, len: i64) -> Tensor {
    data::to_unit_float(&images.index_select(0, &order.narrow(0, start, len)))
}

/// Forward with reparameterisation noise `eps`, the step's loss, backward and one Adam
/// step at the step's learning rate. The returned terms stay on the device: reading them
/// is a host sync.
pub fn train_step(
    model: &Vae,
    optimizer: &mut Adam,
    x: &Tensor,
    eps: &Tensor,
    settings: StepSettings,
) -> LossTerms {
    train_step_in_phases(model, optimizer, x, eps, settings, |_| {})
}

/// The parts of a training step, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Encoder, reparameterisation, decoder and the loss.
    Forward,
    /// Backpropagation into the flat gradient (and clipping).
    Backward,
    /// Adam's update of the weights and moments.
    Update,
}

/// [`train_step`], calling `finished` as each phase's work has been issued, so that
/// `vaelab bench --phases` times the parts of exactly the step training runs.
pub fn train_step_in_phases(
    model: &Vae,
    optimizer: &mut Adam,
    x: &Tensor,
    eps: &Tensor,
    settings: StepSettings,
    mut finished: impl FnMut(Phase),
) -> LossTerms {
    let (recon, posterior) = model.forward_with_noise(x, eps);
    let terms = model.loss(&recon, x, &posterior, settings.objective);
    finished(Phase::Forward);
    optimizer.set_lr(settings.lr);
    optimizer.backward(&terms.loss);
    finished(Phase::Backward);
    optimizer.update();
    finished(Phase::Update);
    terms
}
