//! Train-step throughput: forward, backward and optimizer step on synthetic inputs.
use std::time::Instant;

mod data;
pub mod fid;
pub mod fingerprint;
mod plan;
mod store;

use data::epoch_seconds;
pub use data::{DataBenchResult, data_speed, generate_celeba_tree, write_celeba_tree};
pub use plan::{PlanBenchResult, plan_speed};
pub use store::{ReportBenchResult, ServeBenchResult, report_speed, serve_speed};

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::experiment::config::{ModelConfig, Precision, TrainConfig};
use crate::model::{self, Compute};
use crate::optim::adam::{Adam, AdamConfig};
use crate::train::schedule::StepSettings;
use crate::train::step;

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub model: ModelConfig,
    pub image_size: i64,
    pub batch_size: i64,
    pub warmup: usize,
    pub steps: usize,
    pub device: Device,
    pub compute: Compute,
    /// On CUDA: let cuDNN time its convolution algorithms for these shapes (training does).
    pub cudnn_benchmark: bool,
    /// Also time one full epoch over this many uint8 images resident on the device.
    pub epoch_images: Option<usize>,
    /// Time the forward pass, backward pass and optimizer update of each step apart (on
    /// a GPU this waits for the device between them).
    pub phases: bool,
    /// fp32 convolutions and matmuls may run as TF32 (libtorch's default for convolutions;
    /// only Ampere and later GPUs have it). Set before the first step.
    pub tf32: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub residual: bool,
    pub image_size: i64,
    pub batch_size: i64,
    pub precision: Precision,
    pub channels_last: bool,
    pub device: String,
    pub cudnn_benchmark: bool,
    /// TF32 for convolutions (cuDNN) and matmuls (cuBLAS), as libtorch reports it after the
    /// benchmark set it: whether an "fp32" row really ran fp32 on a GPU.
    pub tf32_convolutions: bool,
    pub tf32_matmuls: bool,
    pub threads: i32,
    pub parameters: i64,
    /// sha256 of the initial weights (names and values in name order, read back on the
    /// CPU): equal on every device, since models are built on the CPU from their seed.
    pub init_digest: String,
    pub median_step_seconds: f64,
    pub median_images_per_second: f64,
    pub step_seconds: Vec<f64>,
    /// With `--phases`: where a step's time goes.
    pub phases: Option<PhaseSeconds>,
    pub epoch: Option<EpochBenchResult>,
}

/// Median seconds of each part of a step over the timed steps.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseSeconds {
    /// Encoder, reparameterisation, decoder and the loss.
    pub forward: f64,
    /// Backpropagation into the flat gradient.
    pub backward: f64,
    /// Adam's update.
    pub update: f64,
}

/// One epoch as training runs it: shuffled gathers from the uint8 dataset on the device,
/// conversion to [0, 1], forward, backward and Adam, a host read at the end.
#[derive(Debug, Clone, Serialize)]
pub struct EpochBenchResult {
    pub images: usize,
    pub seconds: f64,
    pub images_per_second: f64,
    /// The first step at the last, smaller batch's shape, taken before the timed epoch
    /// (none when the images are a multiple of the batch).
    pub last_batch_warmup_seconds: Option<f64>,
}

/// The benchmarked model with PyTorch's default Adam settings, initialised from seed 0.
pub(super) fn bench_model(config: &BenchConfig) -> (tch::nn::VarStore, model::Vae, Adam) {
    if config.device.is_cuda() {
        crate::runtime::switches::set_benchmark(config.cudnn_benchmark);
    }
    crate::runtime::switches::set_tf32(config.tf32);
    let (vs, mut vae) = model::build(&config.model, config.image_size, config.device, 0);
    vae.set_compute(config.compute);
    vae.set_training(true);
    let optimizer = Adam::new(&vs, AdamConfig::from(&TrainConfig::default()));
    (vs, vae, optimizer)
}

/// sha256 of every weight's name and little-endian f32 values, in name order.
fn weights_digest(vs: &tch::nn::VarStore) -> String {
    use sha2::{Digest, Sha256};
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hasher = Sha256::new();
    for (name, tensor) in named {
        hasher.update(name.as_bytes());
        let values: Vec<f32> = tensor
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .reshape([-1])
            .try_into()
            .unwrap_or_default();
        for value in values {
            hasher.update(value.to_le_bytes());
        }
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn default_settings() -> StepSettings {
    let defaults = TrainConfig::default();
    StepSettings {
        lr: defaults.lr,
        objective: model::Objective::beta(defaults.beta),
    }
}

fn noise(vae: &model::Vae, x: &Tensor) -> Tensor {
    Tensor::randn([x.size()[0], vae.latent_dim()], (Kind::Float, x.device()))
}

/// One training step on `x` with fresh noise and the default settings; returns the loss,
/// still on the device.
pub(super) fn train_step(vae: &model::Vae, optimizer: &mut Adam, x: &Tensor) -> Tensor {
    step::train_step(vae, optimizer, x, &noise(vae, x), default_settings()).loss
}

/// Waits until the device has run everything issued so far.
pub(super) fn wait_for(device: Device) {
    if let Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
}

/// [`train_step`] with the seconds each phase took, waiting for the device after each.
fn train_step_in_phases(vae: &model::Vae, optimizer: &mut Adam, x: &Tensor) -> [f64; 3] {
    let eps = noise(vae, x);
    let mut seconds = [0.0; 3];
    let mut started = Instant::now();
    step::train_step_in_phases(vae, optimizer, x, &eps, default_settings(), |phase| {
        wait_for(x.device());
        seconds[phase as usize] = started.elapsed().as_secs_f64();
        started = Instant::now();
    });
    seconds
}

pub(super) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Median seconds per phase over `steps` steps, each timed apart.
fn phase_seconds(vae: &model::Vae, optimizer: &mut Adam, x: &Tensor, steps: usize) -> PhaseSeconds {
    let timed: Vec<[f64; 3]> = (0..steps)
        .map(|_| train_step_in_phases(vae, optimizer, x))
        .collect();
    let of = |phase: step::Phase| median(timed.iter().map(|t| t[phase as usize]).collect());
    PhaseSeconds {
        forward: of(step::Phase::Forward),
        backward: of(step::Phase::Backward),
        update: of(step::Phase::Update),
    }
}

pub fn run(config: &BenchConfig) -> BenchResult {
    let device = config.device;
    let (vs, vae, mut optimizer) = bench_model(config);
    let init_digest = weights_digest(&vs);
    let x = Tensor::rand(
        [config.batch_size, 3, config.image_size, config.image_size],
        (Kind::Float, device),
    );
    // Reading the loss waits for the device, so each timing covers the whole step.
    let step = |optimizer: &mut Adam| train_step(&vae, optimizer, &x).double_value(&[]);
    for _ in 0..config.warmup {
        step(&mut optimizer);
    }
    let step_seconds: Vec<f64> = (0..config.steps.max(1))
        .map(|_| {
            let started = Instant::now();
            step(&mut optimizer);
            started.elapsed().as_secs_f64()
        })
        .collect();
    let median_step_seconds = median(step_seconds.clone());
    // Apart from the whole steps, so that waiting between phases does not slow those.
    let phases = config
        .phases
        .then(|| phase_seconds(&vae, &mut optimizer, &x, config.steps.max(1)));
    let epoch = config.epoch_images.map(|images| {
        tch::manual_seed(1);
        let dataset = Tensor::randint(
            256,
            [images as i64, 3, config.image_size, config.image_size],
            (Kind::Uint8, device),
        );
        let timing = epoch_seconds(&dataset, config);
        EpochBenchResult {
            images,
            seconds: timing.seconds,
            images_per_second: images as f64 / timing.seconds,
            last_batch_warmup_seconds: timing.last_batch_warmup_seconds,
        }
    });
    let numerics = crate::runtime::switches::current();
    BenchResult {
        tf32_convolutions: numerics.tf32_convolutions,
        tf32_matmuls: numerics.tf32_matmuls,
        residual: config.model.residual,
        image_size: config.image_size,
        batch_size: config.batch_size,
        precision: config.compute.precision,
        channels_last: config.compute.channels_last,
        device: crate::runtime::device::device_name(device),
        cudnn_benchmark: device.is_cuda() && config.cudnn_benchmark,
        threads: tch::get_num_threads(),
        parameters: model::parameter_count(&vs),
        init_digest,
        median_step_seconds,
        median_images_per_second: config.batch_size as f64 / median_step_seconds,
        step_seconds,
        phases,
        epoch,
    }
}
