//! The trainer's per-epoch look at the validation images: the mean losses and PSNR with
//! the sampled z the loss sees, and the prior and reconstruction sample grids.
use tch::{Kind, Tensor};

use super::{LossMeans, Trainer, Validation};
use crate::data::{self, png};
use crate::store::SampleKind;
use crate::train::{TrainError, draws};
use crate::{evaluate, model};

impl Trainer<'_> {
    /// Mean validation losses and PSNR with the sampled z the loss sees.
    pub(super) fn validate(&self, epoch: u32) -> Result<Validation, TrainError> {
        let device = self.placement.device;
        let n = self.val_images.size()[0];
        if n == 0 {
            return Ok(Validation {
                losses: LossMeans::from_host(&[f64::NAN; 3]),
                psnr: f64::NAN,
            });
        }
        let batch = self.config.train.batch_size as i64;
        let noise = draws::validation_noise(
            self.config.seed,
            epoch,
            n,
            batch,
            self.model.latent_dim(),
            device,
        );
        // The bound the run aims at: its full β, no free bits, whatever the step's settings.
        let objective = model::Objective::beta(self.config.train.beta);
        let mut sums = Tensor::zeros([4], (Kind::Double, device));
        tch::no_grad(|| {
            for start in (0..n).step_by(batch as usize) {
                let len = batch.min(n - start);
                let x = data::to_unit_float(&self.val_images.narrow(0, start, len));
                let eps = noise.narrow(0, start, len);
                let (recon, posterior) = self.model.forward_with_noise(&x, &eps);
                let terms = self.model.loss(&recon, &x, &posterior, objective);
                let psnr = evaluate::psnr_per_image(&recon, &x).mean(Kind::Float);
                sums += Tensor::stack(&[&terms.loss, &terms.recon, &terms.kl, &psnr], 0)
                    .to_kind(Kind::Double)
                    * len as f64;
            }
        });
        let means: Vec<f64> = self.host_values(&(sums / n as f64))?;
        if !means[0].is_finite() {
            return Err(self.non_finite(epoch, means[0]));
        }
        Ok(Validation {
            losses: LossMeans::from_host(&means),
            psnr: means[3],
        })
    }

    pub(super) fn write_samples(&self, epoch: u32) -> Result<(), TrainError> {
        tch::no_grad(|| -> Result<(), TrainError> {
            let prior = self.model.decode(&self.fixed_noise);
            png::write_grid(&prior, 4, &self.run.sample_path(epoch, SampleKind::Prior))?;
            let shown = self.val_images.size()[0].min(8);
            if shown > 0 {
                let originals = data::to_unit_float(&self.val_images.narrow(0, 0, shown));
                let mu = self.model.encode(&originals).mu;
                let recon = self.model.decode(&mu);
                let grid = Tensor::cat(&[originals, recon], 0);
                png::write_grid(
                    &grid,
                    shown as usize,
                    &self.run.sample_path(epoch, SampleKind::Reconstruction),
                )?;
            }
            Ok(())
        })
    }
}
