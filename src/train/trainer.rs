//! The epoch loop of one run: training steps, validation, sample pictures, checkpoints
//! (mid-epoch on request), resume from the newest checkpoint, and the end-of-run
//! evaluation.
//!
//! Checkpoints are written and restored in `checkpoint`, validation and sample grids in
//! `validation`; the step itself is `step`, the schedules `schedule`.
use std::time::Instant;

use chrono::Utc;
use tch::{Device, Kind, Tensor, nn};

use super::draws::{EpochDraws, EpochShape};
use super::schedule::Schedule;
use super::{Placement, TrainError, step};
use crate::data::{self, Dataset};
use crate::evaluate::{self, EvalContext, EvalData};
use crate::experiment::config::{MemoryFormat, Precision, RunConfig, TrainConfig};
use crate::model::{self, Vae};
use crate::optim::adam::{Adam, AdamConfig};
use crate::progress::{EpochSummary, Reporter};
use crate::rng::{self, Stream};
use crate::runtime::{device, switches};
mod checkpoint;
mod validation;

use crate::store::{self, CheckpointRef, EpochMetrics, LossSums, RunDir, RunState};
use checkpoint::{device_change, restore_checkpoint};

/// Where an epoch starts: steps already done (after a mid-epoch checkpoint) and the
/// running loss sums over them.
#[derive(Debug, Clone, Copy, Default)]
struct EpochStart {
    step: u32,
    sums: LossSums,
}

/// Mean loss terms per image over an epoch's images.
#[derive(Debug, Clone, Copy)]
struct LossMeans {
    loss: f64,
    recon: f64,
    kl: f64,
}

impl LossMeans {
    /// From host values in the order the trainer stacks them: loss, recon, kl.
    fn from_host(values: &[f64]) -> Self {
        Self {
            loss: values[0],
            recon: values[1],
            kl: values[2],
        }
    }
}

struct TrainedEpoch {
    losses: LossMeans,
    images_per_second: f64,
    /// β and learning rate of the epoch's last step.
    beta: f64,
    lr: f64,
}

struct Validation {
    losses: LossMeans,
    psnr: f64,
}

pub(super) struct Trainer<'a> {
    run: &'a RunDir,
    config: &'a RunConfig,
    label: &'a str,
    placement: &'a Placement,
    reporter: &'a dyn Reporter,
    vs: nn::VarStore,
    model: Vae,
    optimizer: Adam,
    train_images: Tensor,
    val_images: Tensor,
    /// The end-of-run evaluation's images: the validation ones, or the test ones.
    eval_images: Tensor,
    eval_attributes: Tensor,
    attribute_names: Vec<String>,
    fixed_noise: Tensor,
    metrics: Vec<EpochMetrics>,
    start: CheckpointRef,
    start_sums: LossSums,
    /// The GPU model, recorded in checkpoints.
    gpu: Option<String>,
    /// What trains here (`device::hardware`), recorded in checkpoints; asked once, since
    /// on CUDA it runs the driver's tool.
    hardware: String,
    /// Set when this resume crossed device kinds; recorded in the run's state.
    device_change: Option<String>,
}

impl<'a> Trainer<'a> {
    pub(super) fn new(
        run: &'a RunDir,
        config: &'a RunConfig,
        label: &'a str,
        placement: &'a Placement,
        reporter: &'a dyn Reporter,
    ) -> Result<Self, TrainError> {
        let device = placement.device;
        let dataset: Dataset = data::load(&config.data, reporter)?;
        let (mut vs, mut model) = model::build(
            &config.model,
            config.data.image_size as i64,
            device,
            rng::torch_seed(config.seed, Stream::Init, &[]),
        );
        let precision = config.train.precision;
        model.set_compute(model::Compute {
            precision,
            channels_last: config.train.memory_format == MemoryFormat::ChannelsLast,
        });
        if precision == Precision::Bf16 && device == Device::Cpu && !device::cpu_has_bf16() {
            reporter.warn(&format!(
                "{label}: train.precision bf16 on a CPU without avx512_bf16 or amx_bf16 is emulated and many times slower than fp32; use fp32 here, or a GPU"
            ));
        }
        if device.is_cuda() {
            set_cuda_numerics(&config.train);
        }
        let mut optimizer = Adam::new(&vs, AdamConfig::from(&config.train));
        let restored = restore_checkpoint(run, &mut vs, &mut optimizer, reporter)?;
        let device_change = device_change(&restored, device);
        if let Some(change) = &device_change {
            reporter.warn(&format!(
                "{label}: resuming on other hardware ({change}); the run continues its trajectory, but its numbers will not match a run trained on one machine bit for bit"
            ));
        }
        let (start, start_sums) = (restored.at, restored.sums);
        let start_epoch = start.epoch;
        let mut metrics = run.read_metrics()?;
        metrics.retain(|m| m.epoch <= start_epoch);
        if metrics.len() != start_epoch as usize {
            reporter.warn(&format!(
                "{}: metrics hold {} of {start_epoch} epochs; the missing rows stay missing",
                run.metrics_path().display(),
                metrics.len()
            ));
        }
        tch::manual_seed(rng::torch_seed(config.seed, Stream::SampleNoise, &[]));
        let fixed_noise =
            Tensor::randn([16, model.latent_dim()], (Kind::Float, Device::Cpu)).to_device(device);
        Ok(Self {
            run,
            config,
            label,
            placement,
            reporter,
            vs,
            model,
            optimizer,
            train_images: dataset.train.to_device(device),
            val_images: dataset.val.to_device(device),
            eval_images: dataset.eval.to_device(device),
            eval_attributes: dataset.eval_attributes,
            attribute_names: dataset.attribute_names,
            fixed_noise,
            metrics,
            start,
            start_sums,
            gpu: device::gpu_name(device),
            hardware: device::hardware(device),
            device_change,
        })
    }

    /// Runs the remaining epochs; returns the epoch it started from.
    pub(super) fn train(&mut self, state: &mut RunState) -> Result<u32, TrainError> {
        state.parameters = Some(model::parameter_count(&self.vs));
        state.train_images = u64::try_from(self.train_images.size()[0]).ok();
        if let Some(change) = self.device_change.take() {
            state.device_changes.push(change);
        }
        let target = self.config.train.epochs;
        let start_epoch = self.start.epoch;
        if start_epoch >= target {
            self.reporter.note(&format!(
                "{}: trained to epoch {start_epoch}; evaluating its final weights ({})",
                self.label,
                self.run.path().display()
            ));
        } else if start_epoch > 0 || self.start.step > 0 {
            self.reporter.note(&format!(
                "{}: resuming from epoch {start_epoch} of {target}{} ({})",
                self.label,
                if self.start.step > 0 {
                    format!(" plus {} steps", self.start.step)
                } else {
                    String::new()
                },
                self.run.path().display()
            ));
        }
        for epoch in start_epoch + 1..=target {
            if self.placement.stop.is_requested() {
                return Err(TrainError::Interrupted {
                    run: self.run.path().to_path_buf(),
                    epoch: epoch - 1,
                    step: 0,
                });
            }
            let started = Instant::now();
            let resume = if epoch == start_epoch + 1 {
                EpochStart {
                    step: self.start.step,
                    sums: self.start_sums,
                }
            } else {
                EpochStart::default()
            };
            // Batch norm: batch statistics while training, running ones for validation,
            // samples and evaluation.
            self.model.set_training(true);
            let trained = self.train_epoch(epoch, resume);
            self.model.set_training(false);
            let trained = trained?;
            let validation = self.validate(epoch)?;
            self.write_samples(epoch)?;
            let seconds = started.elapsed().as_secs_f64();
            self.metrics.push(EpochMetrics {
                epoch,
                train_loss: trained.losses.loss,
                train_recon: trained.losses.recon,
                train_kl: trained.losses.kl,
                val_loss: validation.losses.loss,
                val_recon: validation.losses.recon,
                val_kl: validation.losses.kl,
                beta: trained.beta,
                lr: trained.lr,
                epoch_seconds: seconds,
                images_per_second: trained.images_per_second,
                val_psnr: validation.psnr,
                finished_at: Utc::now(),
            });
            // Metrics first, checkpoint second: the checkpoint is the commit point, and rows
            // past the newest checkpoint are dropped on resume.
            self.run.write_metrics(&self.metrics)?;
            store::crash_point(|| format!("metrics-written:{epoch}"));
            self.save_checkpoint(CheckpointRef { epoch, step: 0 }, LossSums::default())?;
            // The best epoch's checkpoint stays, so `train.select: best` can measure it,
            // even when chosen after training.
            let best = store::best_epoch(&self.metrics, epoch).map(|best| CheckpointRef {
                epoch: best,
                step: 0,
            });
            self.run
                .prune_checkpoints(self.placement.keep_checkpoints, best)?;
            state.epochs_done = epoch;
            state.updated_at = Utc::now();
            self.run.write_state(state)?;
            self.reporter.epoch(&EpochSummary {
                label: self.label.to_string(),
                epoch,
                epochs: target,
                train_loss: trained.losses.loss,
                val_loss: validation.losses.loss,
                val_recon: validation.losses.recon,
                val_kl: validation.losses.kl,
                seconds,
                images_per_second: trained.images_per_second,
            });
        }
        let final_epoch = state.epochs_done.max(start_epoch);
        let selected = self
            .run
            .selected_epoch(self.config.train.select, final_epoch)?;
        if !self.run.evaluation_is_current(&self.config.eval, selected) {
            if selected != final_epoch {
                self.load_epoch(selected)?;
            }
            self.final_evaluation(selected)?;
        }
        Ok(start_epoch)
    }

    /// Evaluates in fp32 whatever the training precision: the weights are fp32, and the
    /// bounds in bits/dim are differences of large sums that bf16 would blur. The memory
    /// format stays the run's (placement: the same numbers in the layout that runs fast).
    fn final_evaluation(&mut self, epoch: u32) -> Result<(), TrainError> {
        let trained_with = self.model.compute();
        self.model.set_compute(model::Compute {
            precision: Precision::Fp32,
            ..trained_with
        });
        let result = self.evaluate_final_weights(epoch);
        self.model.set_compute(trained_with);
        result
    }

    fn evaluate_final_weights(&self, epoch: u32) -> Result<(), TrainError> {
        let held_out = EvalData {
            images: &self.eval_images,
            train_images: &self.train_images,
            attributes: (!self.attribute_names.is_empty())
                .then_some((&self.eval_attributes, self.attribute_names.as_slice())),
        };
        let context = EvalContext {
            run: self.run,
            reporter: self.reporter,
            label: self.label,
        };
        let (result, _) = evaluate::evaluate(&self.model, self.config, epoch, &held_out, &context)
            .map_err(|source| TrainError::Eval {
                run: self.run.path().to_path_buf(),
                source,
            })?;
        self.reporter.note(&format!(
            "{}: evaluated epoch {epoch} on {} {} images: PSNR {:.2} dB, SSIM {:.3}, {} of {} units active, -ELBO {:.4} bits/dim, -IWAE({}) {:.4} bits/dim",
            self.label,
            result.images,
            result.split,
            result.psnr,
            result.ssim,
            result.active_units,
            result.latent_dim,
            result.elbo_bpd,
            result.iwae_samples,
            result.iwae_bpd,
        ));
        Ok(())
    }

    /// Copies a small tensor of running sums back to the host.
    fn host_values(&self, tensor: &Tensor) -> Result<Vec<f64>, TrainError> {
        tensor
            .to_device(Device::Cpu)
            .try_into()
            .map_err(|source: tch::TchError| TrainError::Torch {
                run: self.run.path().to_path_buf(),
                source,
            })
    }

    fn non_finite(&self, epoch: u32, value: f64) -> TrainError {
        TrainError::NonFinite {
            run: self.run.path().to_path_buf(),
            epoch,
            value,
        }
    }

    /// Trains one epoch from `resume`; returns its mean losses and the images per second
    /// of the steps run here.
    fn train_epoch(&mut self, epoch: u32, resume: EpochStart) -> Result<TrainedEpoch, TrainError> {
        let device = self.placement.device;
        let seed = self.config.seed;
        let n = self.train_images.size()[0];
        let shape = EpochShape {
            images: n,
            batch: self.config.train.batch_size as i64,
            first_step: i64::from(resume.step),
            latent: self.model.latent_dim(),
        };
        let steps = shape.steps();
        let draws = EpochDraws::new(seed, epoch, shape, self.config.data.hflip, device);
        let schedule = Schedule::new(&self.config.train, steps as u64);
        let mut sums = Tensor::from_slice(&<[f64; 3]>::from(resume.sums)).to_device(device);
        let first_step = shape.first_step;
        let started = Instant::now();
        self.reporter.start(
            &format!("{} epoch {epoch}/{}", self.label, self.config.train.epochs),
            n as u64,
            "img",
        );
        for step in first_step..steps {
            let (start, len) = shape.span(step);
            let (x, eps) = draws.batch(&self.train_images, start, len);
            let settings = schedule.at(epoch, step as u64);
            let terms = step::train_step(&self.model, &mut self.optimizer, &x, &eps, settings);
            store::crash_point_until_stopped(
                || format!("step:{epoch}:{step}"),
                || self.placement.stop.is_requested(),
            );
            let batch_terms = Tensor::stack(&[&terms.loss, &terms.recon, &terms.kl], 0)
                .detach()
                .to_kind(Kind::Double);
            sums += batch_terms * len as f64;
            let last = step + 1 == steps;
            if last || (step as usize + 1).is_multiple_of(self.placement.log_every.max(1)) {
                let seen = start + len;
                let mean_loss = sums.double_value(&[0]) / seen as f64;
                if !mean_loss.is_finite() {
                    self.reporter.finish();
                    return Err(self.non_finite(epoch, mean_loss));
                }
                self.reporter
                    .advance(seen as u64, &format!("loss {mean_loss:.2}"));
            }
            if self.placement.stop.is_requested() && !last {
                self.reporter.finish();
                let at = CheckpointRef {
                    epoch: epoch - 1,
                    step: step as u32 + 1,
                };
                let partial = self.host_values(&sums)?;
                self.save_checkpoint(at, LossSums::from([partial[0], partial[1], partial[2]]))?;
                return Err(TrainError::Interrupted {
                    run: self.run.path().to_path_buf(),
                    epoch: at.epoch,
                    step: at.step,
                });
            }
        }
        self.reporter.finish();
        let seconds = started.elapsed().as_secs_f64();
        let images_here = (n - (first_step * shape.batch).min(n)) as f64;
        let means: Vec<f64> = self.host_values(&(sums / n as f64))?;
        let logged = schedule.end_of_epoch(epoch);
        Ok(TrainedEpoch {
            losses: LossMeans::from_host(&means),
            images_per_second: images_here / seconds.max(1e-9),
            beta: logged.objective.beta,
            lr: logged.lr,
        })
    }
}

/// On CUDA: fixed shapes every step, so cuDNN may time its algorithms once and keep the
/// fastest, and TF32 as asked; unless the run must be exact (`train.deterministic`), which
/// takes deterministic algorithms, no benchmark mode and no TF32.
fn set_cuda_numerics(train: &TrainConfig) {
    let exact = train.deterministic;
    switches::set_deterministic(exact);
    switches::set_benchmark(!exact);
    switches::set_tf32(train.tf32 && !exact);
}
