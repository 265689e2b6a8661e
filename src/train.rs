//! Training one run: the epoch loop, evaluation, samples, checkpoints and resume.
//!
//! Resume is exact: a checkpoint holds the weights, Adam's moments and step, and the epoch;
//! every random draw is a function of (seed, epoch, step), so a run killed at any instant
//! and resumed replays the interrupted epoch and ends where an uninterrupted run ends.
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor, nn};

use crate::config::{Precision, RunConfig};
use crate::data::{self, DataError, Dataset};
use crate::evaluation::{self, EvalContext, EvalData, EvalError};
use crate::images;
use crate::model::{self, ModelError, Vae};
use crate::optim::{Adam, OptimError};
use crate::plan::PlannedRun;
use crate::progress::{EpochSummary, Reporter};
use crate::rng::{self, Stream};
use crate::store::{
    CheckpointRef, EpochMetrics, RunDir, RunState, RunStatus, RunStore, StoreError, write_atomic,
};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Optim(#[from] OptimError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{run}: {source}")]
    Eval {
        run: String,
        #[source]
        source: EvalError,
    },
    #[error("{run}: loss became {value} in epoch {epoch}; lower train.lr or train.beta")]
    NonFinite { run: String, epoch: u32, value: f64 },
    #[error("{run}: {detail}")]
    Torch { run: String, detail: String },
    #[error(
        "{path}: checkpoint unreadable ({detail}); remove {path} to resume from an earlier one or retrain"
    )]
    Checkpoint { path: String, detail: String },
    #[error(
        "{run}: stopped on request after a checkpoint at epoch {epoch}, step {step}; run again to resume"
    )]
    Interrupted { run: String, epoch: u32, step: u32 },
}

/// Set from a signal handler; training checks it after every step.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    /// The shared flag, for `signal_hook::flag::register`.
    pub fn handle(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }
}

/// Where and how to train: nothing here changes what is learned.
#[derive(Debug, Clone)]
pub struct Placement {
    pub device: Device,
    /// Read losses back from the device every this many steps (a host sync).
    pub log_every: usize,
    pub keep_checkpoints: usize,
    pub stop: StopFlag,
}

impl Default for Placement {
    fn default() -> Self {
        Self {
            device: Device::cuda_if_available(),
            log_every: 10,
            keep_checkpoints: 2,
            stop: StopFlag::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    AlreadyDone {
        epochs: u32,
    },
    Trained {
        from_epoch: u32,
        to_epoch: u32,
    },
    /// Training was already done; only the evaluation was (re)made.
    Evaluated {
        epochs: u32,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Progress {
    run_id: String,
    /// Whole epochs done.
    epoch: u32,
    /// Steps done into the next epoch (a checkpoint taken on request, mid-epoch).
    #[serde(default)]
    step: u32,
    /// Running sums of (loss, recon, kl) × batch size over those steps.
    #[serde(default)]
    partial_sums: [f64; 3],
    optimizer_steps: i64,
    saved_at: chrono::DateTime<Utc>,
}

pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

pub fn libtorch_version() -> &'static str {
    env!("VAELAB_LIBTORCH_VERSION")
}

fn fresh_state(run: &RunDir, label: &str, config: &RunConfig, device: Device) -> RunState {
    let now = Utc::now();
    RunState {
        id: run.id().full().to_string(),
        experiment: String::new(),
        label: label.to_string(),
        status: RunStatus::Pending,
        epochs_done: 0,
        epochs_target: config.train.epochs,
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
        host: crate::host_name(),
        pid: std::process::id(),
        vaelab_version: env!("CARGO_PKG_VERSION").to_string(),
        libtorch_version: libtorch_version().to_string(),
        device: device_name(device),
        error: None,
        slurm: crate::slurm::SlurmIds::from_env(),
    }
}

/// Trains `config` in its run directory until `config.train.epochs`, resuming or skipping
/// as the store says. Holds the run's lock throughout.
pub fn train_run(
    store: &RunStore,
    planned: &PlannedRun,
    experiment: &str,
    placement: &Placement,
    reporter: &dyn Reporter,
) -> Result<RunOutcome, TrainError> {
    let config = &planned.config;
    let label = planned.label.as_str();
    let run = store.run_dir(&config.id());
    let _lock = run.try_lock()?;
    run.write_or_check_config(config)?;
    let mut state = run
        .read_state()?
        .unwrap_or_else(|| fresh_state(&run, label, config, placement.device));
    let target = config.train.epochs;
    let trained = state.status == RunStatus::Done && state.epochs_done >= target;
    if trained && evaluation::is_current(&run, &config.eval, state.epochs_done) {
        return Ok(RunOutcome::AlreadyDone {
            epochs: state.epochs_done,
        });
    }
    state.epochs_target = target;
    state.experiment = experiment.to_string();
    state.label = label.to_string();
    state.host = crate::host_name();
    state.pid = std::process::id();
    state.device = device_name(placement.device);
    state.vaelab_version = env!("CARGO_PKG_VERSION").to_string();
    state.libtorch_version = libtorch_version().to_string();
    state.error = None;
    state.slurm = crate::slurm::SlurmIds::from_env();
    state.status = RunStatus::Running;
    state.started_at = Some(Utc::now());
    state.updated_at = Utc::now();
    run.write_state(&state)?;

    let shown = format!("{experiment}/{label}");
    let result = Trainer::new(&run, config, &shown, placement, reporter)
        .and_then(|mut t| t.train(&mut state));
    match result {
        Ok(from_epoch) => {
            state.status = RunStatus::Done;
            state.finished_at = Some(Utc::now());
            state.updated_at = Utc::now();
            run.write_state(&state)?;
            Ok(if trained {
                RunOutcome::Evaluated {
                    epochs: state.epochs_done,
                }
            } else {
                RunOutcome::Trained {
                    from_epoch,
                    to_epoch: state.epochs_done,
                }
            })
        }
        Err(error @ TrainError::Interrupted { .. }) => {
            state.status = RunStatus::Interrupted;
            state.updated_at = Utc::now();
            run.write_state(&state)?;
            Err(error)
        }
        Err(error) => {
            state.status = RunStatus::Failed;
            state.error = Some(error.to_string());
            state.updated_at = Utc::now();
            run.write_state(&state)?;
            Err(error)
        }
    }
}

struct Trainer<'a> {
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
    val_attributes: Tensor,
    attribute_names: Vec<String>,
    fixed_noise: Tensor,
    metrics: Vec<EpochMetrics>,
    start: CheckpointRef,
    start_sums: [f64; 3],
}

impl<'a> Trainer<'a> {
    fn new(
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
            channels_last: false,
        });
        if precision == Precision::Bf16 && device == Device::Cpu && !crate::info::cpu_has_bf16() {
            reporter.warn(&format!(
                "{label}: train.precision bf16 on a CPU without avx512_bf16 or amx_bf16 is emulated and many times slower than fp32; use fp32 here, or a GPU"
            ));
        }
        if device.is_cuda() {
            // Fixed shapes every step: let cuDNN time its algorithms once and keep the best.
            tch::Cuda::cudnn_set_benchmark(true);
        }
        let mut optimizer = Adam::new(&vs, config.adam());
        let (start, start_sums) = restore_checkpoint(run, &mut vs, &mut optimizer, reporter)?;
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
            val_attributes: dataset.val_attributes,
            attribute_names: dataset.attribute_names,
            fixed_noise,
            metrics,
            start,
            start_sums,
        })
    }

    /// Runs the remaining epochs; returns the epoch it started from.
    fn train(&mut self, state: &mut RunState) -> Result<u32, TrainError> {
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
                    run: self.run.path().display().to_string(),
                    epoch: epoch - 1,
                    step: 0,
                });
            }
            let started = Instant::now();
            let resume = if epoch == start_epoch + 1 {
                (self.start.step, self.start_sums)
            } else {
                (0, [0.0; 3])
            };
            let (train_loss, train_recon, train_kl, images_per_second) =
                self.train_epoch(epoch, resume)?;
            let (val_loss, val_recon, val_kl, val_psnr) = self.validate(epoch)?;
            self.write_samples(epoch)?;
            let seconds = started.elapsed().as_secs_f64();
            self.metrics.push(EpochMetrics {
                epoch,
                train_loss,
                train_recon,
                train_kl,
                val_loss,
                val_recon,
                val_kl,
                beta: self.config.train.beta,
                lr: self.config.train.lr,
                epoch_seconds: seconds,
                images_per_second,
                val_psnr,
                finished_at: Utc::now(),
            });
            // Metrics first, checkpoint second: the checkpoint is the commit point, and rows
            // past the newest checkpoint are dropped on resume.
            self.run.write_metrics(&self.metrics)?;
            self.save_checkpoint(CheckpointRef { epoch, step: 0 }, [0.0; 3])?;
            self.run
                .prune_checkpoints(self.placement.keep_checkpoints)?;
            state.epochs_done = epoch;
            state.updated_at = Utc::now();
            self.run.write_state(state)?;
            self.reporter.epoch(&EpochSummary {
                label: self.label.to_string(),
                epoch,
                epochs: target,
                train_loss,
                val_loss,
                val_recon,
                val_kl,
                seconds,
                images_per_second,
            });
        }
        let final_epoch = state.epochs_done.max(start_epoch);
        if !evaluation::is_current(self.run, &self.config.eval, final_epoch) {
            self.final_evaluation(final_epoch)?;
        }
        Ok(start_epoch)
    }

    /// Evaluates in fp32 whatever the training precision: the weights are fp32, and the
    /// bounds in bits/dim are differences of large sums that bf16 would blur.
    fn final_evaluation(&mut self, epoch: u32) -> Result<(), TrainError> {
        let trained_with = self.model.compute();
        self.model.set_compute(model::Compute::default());
        let result = self.evaluate_final_weights(epoch);
        self.model.set_compute(trained_with);
        result
    }

    fn evaluate_final_weights(&self, epoch: u32) -> Result<(), TrainError> {
        let held_out = EvalData {
            images: &self.val_images,
            attributes: (!self.attribute_names.is_empty())
                .then_some((&self.val_attributes, self.attribute_names.as_slice())),
        };
        let context = EvalContext {
            run: self.run,
            device: self.placement.device,
            reporter: self.reporter,
            label: self.label,
        };
        let (result, _) =
            evaluation::evaluate(&self.model, self.config, epoch, &held_out, &context).map_err(
                |source| TrainError::Eval {
                    run: self.run.path().display().to_string(),
                    source,
                },
            )?;
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
            .map_err(|e: tch::TchError| TrainError::Torch {
                run: self.run.path().display().to_string(),
                detail: e.to_string(),
            })
    }

    fn non_finite(&self, epoch: u32, value: f64) -> TrainError {
        TrainError::NonFinite {
            run: self.run.path().display().to_string(),
            epoch,
            value,
        }
    }

    /// Trains one epoch from `resume` = (steps already done, their running sums); returns
    /// the mean (loss, recon, kl) and the images per second of the steps run here.
    fn train_epoch(
        &mut self,
        epoch: u32,
        resume: (u32, [f64; 3]),
    ) -> Result<(f64, f64, f64, f64), TrainError> {
        let device = self.placement.device;
        let seed = self.config.seed;
        let n = self.train_images.size()[0];
        let batch = self.config.train.batch_size as i64;
        let order = Tensor::from_slice(&rng::epoch_permutation(seed, epoch as u64, n as usize))
            .to_device(device);
        let steps = (n + batch - 1) / batch;
        let latent = self.model.latent_dim();
        let beta = self.config.train.beta;
        let mut sums = Tensor::from_slice(&resume.1).to_device(device);
        let first_step = resume.0 as i64;
        let started = Instant::now();
        self.reporter.start(
            &format!("{} epoch {epoch}/{}", self.label, self.config.train.epochs),
            n as u64,
            "img",
        );
        for step in first_step..steps {
            let start = step * batch;
            let len = batch.min(n - start);
            let mut x = data::to_unit_float(
                &self
                    .train_images
                    .index_select(0, &order.narrow(0, start, len)),
            );
            if self.config.data.hflip {
                x = data::random_hflip(&x, seed, epoch as u64, step as u64);
            }
            tch::manual_seed(rng::torch_seed(
                seed,
                Stream::TrainNoise,
                &[epoch as u64, step as u64],
            ));
            let eps = Tensor::randn([len, latent], (Kind::Float, device));
            let (recon, mu, logvar) = self.model.forward_with_noise(&x, &eps);
            let terms = model::vae_loss(&recon, &x, &mu, &logvar, beta);
            self.optimizer.minimize(&terms.loss);
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
                self.save_checkpoint(at, [partial[0], partial[1], partial[2]])?;
                return Err(TrainError::Interrupted {
                    run: self.run.path().display().to_string(),
                    epoch: at.epoch,
                    step: at.step,
                });
            }
        }
        self.reporter.finish();
        let seconds = started.elapsed().as_secs_f64();
        let images_here = (n - (first_step * batch).min(n)) as f64;
        let sums: Vec<f64> = self.host_values(&(sums / n as f64))?;
        Ok((sums[0], sums[1], sums[2], images_here / seconds.max(1e-9)))
    }

    /// Mean validation (loss, recon, kl, PSNR) with the sampled z the loss sees.
    fn validate(&self, epoch: u32) -> Result<(f64, f64, f64, f64), TrainError> {
        let device = self.placement.device;
        let n = self.val_images.size()[0];
        if n == 0 {
            return Ok((f64::NAN, f64::NAN, f64::NAN, f64::NAN));
        }
        let batch = self.config.train.batch_size as i64;
        let latent = self.model.latent_dim();
        let mut sums = Tensor::zeros([4], (Kind::Double, device));
        tch::no_grad(|| {
            for (i, start) in (0..n).step_by(batch as usize).enumerate() {
                let len = batch.min(n - start);
                let x = data::to_unit_float(&self.val_images.narrow(0, start, len));
                tch::manual_seed(rng::torch_seed(
                    self.config.seed,
                    Stream::EvalNoise,
                    &[epoch as u64, i as u64],
                ));
                let eps = Tensor::randn([len, latent], (Kind::Float, device));
                let (recon, mu, logvar) = self.model.forward_with_noise(&x, &eps);
                let terms = model::vae_loss(&recon, &x, &mu, &logvar, self.config.train.beta);
                let psnr = evaluation::psnr_per_image(&recon, &x).mean(Kind::Float);
                sums += Tensor::stack(&[&terms.loss, &terms.recon, &terms.kl, &psnr], 0)
                    .to_kind(Kind::Double)
                    * len as f64;
            }
        });
        let means: Vec<f64> = self.host_values(&(sums / n as f64))?;
        if !means[0].is_finite() {
            return Err(self.non_finite(epoch, means[0]));
        }
        Ok((means[0], means[1], means[2], means[3]))
    }

    fn write_samples(&self, epoch: u32) -> Result<(), TrainError> {
        let dir = self.run.samples_dir();
        tch::no_grad(|| -> Result<(), TrainError> {
            let prior = self.model.decode(&self.fixed_noise);
            images::write_grid(&prior, 4, &dir.join(format!("epoch-{epoch:04}-prior.png")))?;
            let shown = self.val_images.size()[0].min(8);
            if shown > 0 {
                let originals = data::to_unit_float(&self.val_images.narrow(0, 0, shown));
                let (mu, _) = self.model.encode(&originals);
                let recon = self.model.decode(&mu);
                let grid = Tensor::cat(&[originals, recon], 0);
                images::write_grid(
                    &grid,
                    shown as usize,
                    &dir.join(format!("epoch-{epoch:04}-recon.png")),
                )?;
            }
            Ok(())
        })
    }

    fn save_checkpoint(&self, at: CheckpointRef, partial_sums: [f64; 3]) -> Result<(), TrainError> {
        let progress = Progress {
            run_id: self.run.id().full().to_string(),
            epoch: at.epoch,
            step: at.step,
            partial_sums,
            optimizer_steps: self.optimizer.step_count(),
            saved_at: Utc::now(),
        };
        self.run
            .write_checkpoint(at, |dir: &Path| -> Result<(), TrainError> {
                model::save_weights(&self.vs, &dir.join(MODEL_FILE))?;
                self.optimizer.save(&dir.join(OPTIMIZER_FILE))?;
                let json =
                    serde_json::to_vec_pretty(&progress).expect("Progress always serializes");
                write_atomic(&dir.join(PROGRESS_FILE), &json)?;
                Ok(())
            })
    }
}

pub const MODEL_FILE: &str = "model.safetensors";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const PROGRESS_FILE: &str = "progress.json";

/// Loads the newest checkpoint into the model and optimizer; returns where it stands and
/// the running loss sums of a mid-epoch checkpoint.
fn restore_checkpoint(
    run: &RunDir,
    vs: &mut nn::VarStore,
    optimizer: &mut Adam,
    reporter: &dyn Reporter,
) -> Result<(CheckpointRef, [f64; 3]), TrainError> {
    let Some(checkpoint) = run.latest_checkpoint()? else {
        return Ok((CheckpointRef { epoch: 0, step: 0 }, [0.0; 3]));
    };
    let dir = run.checkpoint_path(checkpoint);
    let progress_path = dir.join(PROGRESS_FILE);
    let progress: Progress = std::fs::read(&progress_path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
        .map_err(|detail| TrainError::Checkpoint {
            path: progress_path.display().to_string(),
            detail,
        })?;
    if progress.run_id != run.id().full()
        || progress.epoch != checkpoint.epoch
        || progress.step != checkpoint.step
    {
        return Err(TrainError::Checkpoint {
            path: progress_path.display().to_string(),
            detail: format!(
                "belongs to run {} epoch {}",
                progress.run_id, progress.epoch
            ),
        });
    }
    let corrupt = |path: &Path, detail: String| TrainError::Checkpoint {
        path: path.display().to_string(),
        detail,
    };
    let model_path = dir.join(MODEL_FILE);
    model::load_weights(vs, &model_path).map_err(|e| corrupt(&model_path, e.to_string()))?;
    let optimizer_path = dir.join(OPTIMIZER_FILE);
    optimizer
        .load(&optimizer_path)
        .map_err(|e| corrupt(&optimizer_path, e.to_string()))?;
    if optimizer.step_count() != progress.optimizer_steps {
        return Err(corrupt(
            &optimizer_path,
            format!(
                "step {} but progress says {}",
                optimizer.step_count(),
                progress.optimizer_steps
            ),
        ));
    }
    reporter.note(&format!("loaded checkpoint {}", dir.display()));
    Ok((checkpoint, progress.partial_sums))
}
