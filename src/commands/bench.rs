//! `vaelab bench`: median train-step throughput of one model configuration.
use anyhow::{Result, bail};

use crate::cli::{BenchArgs, ModelChoice};
use vaelab::bench::{self, BenchConfig};
use vaelab::config::ModelConfig;
use vaelab::plan::DEFAULT_CHANNELS;

pub fn execute(args: &BenchArgs) -> Result<()> {
    let device = super::placement_device(&args.placement)?;
    let factor = 1i64 << DEFAULT_CHANNELS.len();
    if args.image_size < factor || args.image_size % factor != 0 {
        bail!(
            "--image-size: expected a positive multiple of {factor}, got {}",
            args.image_size
        );
    }
    if args.batch_size < 1 {
        bail!(
            "--batch-size: expected a positive integer, got {}",
            args.batch_size
        );
    }
    let config = BenchConfig {
        model: ModelConfig {
            residual: args.model == ModelChoice::Residual,
            latent_dim: args.latent_dim,
            channels: DEFAULT_CHANNELS.to_vec(),
        },
        image_size: args.image_size,
        batch_size: args.batch_size,
        warmup: args.warmup,
        steps: args.steps,
        device,
    };
    let result = bench::run(&config);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "{} {}x{} batch {} on {} ({} threads, {} parameters): median {:.1} img/s ({:.3} s/step over {} steps)",
            if result.residual { "residual" } else { "plain" },
            result.image_size,
            result.image_size,
            result.batch_size,
            result.device,
            result.threads,
            result.parameters,
            result.median_images_per_second,
            result.median_step_seconds,
            result.step_seconds.len()
        );
    }
    Ok(())
}
