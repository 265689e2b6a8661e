//! The random draws of one epoch, made on the CPU from the run's streams and moved to the
//! training device in one transfer each: the shuffle order, every step's
//! reparameterisation noise and flip mask. A run therefore draws the same numbers on a CPU
//! and on a GPU, and the hot loop never waits on a host-to-device copy.
//!
//! Step `s` draws exactly what it would draw on its own (its noise seeded from (seed,
//! epoch, s), its flips from the same coordinates), so batching the draws per epoch
//! changes no bit of a CPU run.
use tch::{Device, Tensor};

use crate::data;
use crate::rng::{self, Stream};

/// What an epoch's steps draw, on the training device.
pub(crate) struct EpochDraws {
    /// Image indices in training order.
    order: Tensor,
    /// Noise rows for the images in `order` from `first_image` on.
    noise: Tensor,
    /// Flip flags, aligned with `noise`, when the data flips.
    flips: Option<Tensor>,
    first_image: i64,
}

/// The shape of an epoch: how many images, in batches of how many, from which step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EpochShape {
    pub(crate) images: i64,
    pub(crate) batch: i64,
    pub(crate) first_step: i64,
    pub(crate) latent: i64,
}

impl EpochShape {
    pub(crate) fn steps(&self) -> i64 {
        (self.images + self.batch - 1) / self.batch
    }

    /// The first image and the length of step `step`.
    pub(crate) fn span(&self, step: i64) -> (i64, i64) {
        let start = step * self.batch;
        (start, self.batch.min(self.images - start))
    }
}

impl EpochDraws {
    pub(crate) fn new(
        seed: u64,
        epoch: u32,
        shape: EpochShape,
        hflip: bool,
        device: Device,
    ) -> Self {
        let epoch = u64::from(epoch);
        let order = Tensor::from_slice(&rng::epoch_permutation(seed, epoch, shape.images as usize))
            .to_device(device);
        let mut noise = Vec::new();
        let mut flips = Vec::new();
        for step in shape.first_step..shape.steps() {
            let (_, len) = shape.span(step);
            let at = [epoch, step as u64];
            noise.push(rng::cpu_normal(
                seed,
                Stream::TrainNoise,
                &at,
                &[len, shape.latent],
            ));
            if hflip {
                flips.extend(data::flip_mask(seed, epoch, step as u64, len as usize));
            }
        }
        let noise = if noise.is_empty() {
            Tensor::zeros([0, shape.latent], (tch::Kind::Float, Device::Cpu))
        } else {
            Tensor::cat(&noise, 0)
        };
        Self {
            order,
            noise: noise.to_device(device),
            flips: hflip.then(|| Tensor::from_slice(&flips).to_device(device)),
            first_image: shape.first_step * shape.batch,
        }
    }

    /// Step's images (uint8 dataset → float in [0, 1], flipped where drawn) and noise.
    pub(crate) fn batch(&self, images: &Tensor, start: i64, len: i64) -> (Tensor, Tensor) {
        let mut x = super::step::gather_batch(images, &self.order, start, len);
        let row = start - self.first_image;
        if let Some(flips) = &self.flips {
            x = data::apply_flips(&x, &flips.narrow(0, row, len));
        }
        (x, self.noise.narrow(0, row, len))
    }
}

/// Validation noise for one epoch: batch `i` of `batch` images drawn from (seed, epoch, i),
/// all batches in one tensor on `device`.
pub(crate) fn validation_noise(
    seed: u64,
    epoch: u32,
    images: i64,
    batch: i64,
    latent: i64,
    device: Device,
) -> Tensor {
    let draws: Vec<Tensor> = (0..images)
        .step_by(batch as usize)
        .enumerate()
        .map(|(i, start)| {
            let len = batch.min(images - start);
            rng::cpu_normal(
                seed,
                Stream::EvalNoise,
                &[u64::from(epoch), i as u64],
                &[len, latent],
            )
        })
        .collect();
    Tensor::cat(&draws, 0).to_device(device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    const SHAPE: EpochShape = EpochShape {
        images: 10,
        batch: 4,
        first_step: 0,
        latent: 3,
    };

    fn images() -> Tensor {
        Tensor::arange(10 * 3 * 2 * 2, (Kind::Uint8, Device::Cpu)).view([10, 3, 2, 2])
    }

    /// Each step draws what it drew when it drew for itself: noise seeded from (seed,
    /// epoch, step) and the flip mask of that step.
    #[test]
    fn an_epochs_draws_equal_what_each_step_draws_alone() {
        let draws = EpochDraws::new(7, 2, SHAPE, true, Device::Cpu);
        let order = Tensor::from_slice(&rng::epoch_permutation(7, 2, 10));
        for step in 0..SHAPE.steps() {
            let (start, len) = SHAPE.span(step);
            let (x, eps) = draws.batch(&images(), start, len);
            tch::manual_seed(rng::torch_seed(7, Stream::TrainNoise, &[2, step as u64]));
            let alone = Tensor::randn([len, 3], (Kind::Float, Device::Cpu));
            assert!(eps.equal(&alone), "step {step}");
            let mask = Tensor::from_slice(&data::flip_mask(7, 2, step as u64, len as usize));
            let plain = super::super::step::gather_batch(&images(), &order, start, len);
            assert!(x.equal(&data::apply_flips(&plain, &mask)), "step {step}");
        }
    }

    /// A resumed epoch starting at step 2 draws the same as steps 2.. of a whole epoch.
    #[test]
    fn a_resumed_epoch_draws_the_rest_of_the_same_numbers() {
        let whole = EpochDraws::new(1, 3, SHAPE, true, Device::Cpu);
        let resumed = EpochDraws::new(
            1,
            3,
            EpochShape {
                first_step: 2,
                ..SHAPE
            },
            true,
            Device::Cpu,
        );
        let (start, len) = SHAPE.span(2);
        let (xa, ea) = whole.batch(&images(), start, len);
        let (xb, eb) = resumed.batch(&images(), start, len);
        assert!(xa.equal(&xb) && ea.equal(&eb));
        assert_eq!(resumed.noise.size(), [2, 3]);
    }

    #[test]
    fn validation_noise_is_the_per_batch_draws_in_order() {
        let noise = validation_noise(5, 1, 10, 4, 3, Device::Cpu);
        tch::manual_seed(rng::torch_seed(5, Stream::EvalNoise, &[1, 2]));
        let last = Tensor::randn([2, 3], (Kind::Float, Device::Cpu));
        assert!(noise.narrow(0, 8, 2).equal(&last));
        assert_eq!(noise.size(), [10, 3]);
    }
}
