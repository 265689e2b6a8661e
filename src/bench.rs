//! Train-step throughput: forward, backward and optimizer step on synthetic inputs.
use std::time::Instant;

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::config::ModelConfig;
use crate::model;
use crate::optim::{Adam, AdamConfig};

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub model: ModelConfig,
    pub image_size: i64,
    pub batch_size: i64,
    pub warmup: usize,
    pub steps: usize,
    pub device: Device,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub residual: bool,
    pub image_size: i64,
    pub batch_size: i64,
    pub device: String,
    pub threads: i32,
    pub parameters: i64,
    pub median_step_seconds: f64,
    pub median_images_per_second: f64,
    pub step_seconds: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanBenchResult {
    pub runs: usize,
    pub seconds: f64,
    pub runs_per_second: f64,
}

/// Times `plan::plan` on a spec whose grid expands to at least `runs` runs (10 seeds, a
/// latent-size axis and a beta axis), parsing included.
pub fn plan_speed(runs: usize) -> Result<PlanBenchResult, crate::spec::SpecError> {
    let per_axis = (runs as f64 / 10.0).sqrt().ceil().max(1.0) as usize;
    let latents: Vec<String> = (1..=per_axis).map(|i| i.to_string()).collect();
    let betas: Vec<String> = (1..=per_axis)
        .map(|i| format!("{}", i as f64 / 4.0))
        .collect();
    let text = format!(
        "name: plan-bench\nseeds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\ngrid:\n  model.latent_dim: [{}]\n  train.beta: [{}]\n",
        latents.join(", "),
        betas.join(", ")
    );
    let started = Instant::now();
    let loaded = crate::spec::parse(std::path::Path::new("plan-bench.yaml"), &text)?;
    let plan = crate::plan::plan(&loaded)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(PlanBenchResult {
        runs: plan.runs.len(),
        seconds,
        runs_per_second: plan.runs.len() as f64 / seconds,
    })
}

pub fn run(config: &BenchConfig) -> BenchResult {
    let device = config.device;
    let (vs, vae) = model::build(&config.model, config.image_size, device, 0);
    let mut optimizer = Adam::new(
        &vs,
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
    );
    let x = Tensor::rand(
        [config.batch_size, 3, config.image_size, config.image_size],
        (Kind::Float, device),
    );
    let mut step = || {
        let eps = Tensor::randn([config.batch_size, vae.latent_dim()], (Kind::Float, device));
        let (recon, mu, logvar) = vae.forward_with_noise(&x, &eps);
        let terms = model::vae_loss(&recon, &x, &mu, &logvar, 1.0);
        optimizer.zero_grad();
        terms.loss.backward();
        optimizer.step();
        // Reading the loss waits for the device, so each timing covers the whole step.
        terms.loss.double_value(&[])
    };
    for _ in 0..config.warmup {
        step();
    }
    let mut times: Vec<f64> = (0..config.steps.max(1))
        .map(|_| {
            let started = Instant::now();
            step();
            started.elapsed().as_secs_f64()
        })
        .collect();
    let step_seconds = times.clone();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    BenchResult {
        residual: config.model.residual,
        image_size: config.image_size,
        batch_size: config.batch_size,
        device: crate::train::device_name(device),
        threads: tch::get_num_threads(),
        parameters: model::parameter_count(&vs),
        median_step_seconds: median,
        median_images_per_second: config.batch_size as f64 / median,
        step_seconds,
    }
}
