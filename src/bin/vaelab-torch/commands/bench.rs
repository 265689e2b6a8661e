//! `vaelab bench`: median train-step throughput of one model configuration, or the speed
//! of planning, data decoding or report rendering.
use anyhow::Result;

use super::usage;
use crate::cli::{BenchArgs, ModelChoice, OnOff, PrecisionChoice};
use vaelab::bench::{self, BenchConfig};
use vaelab::experiment::config::DEFAULT_CHANNELS;
use vaelab::experiment::config::{ModelConfig, Precision};
use vaelab::model::Compute;

pub fn execute(args: &BenchArgs) -> Result<()> {
    if let Some(samples) = args.fid_samples {
        if samples < 2 {
            return Err(usage("--fid-samples: expected at least 2".into()));
        }
        let device = super::placement_device(&args.placement)?;
        let result = bench::fid::fid_speed(samples, 2048, args.fid_extractor.as_deref(), device)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&result)?);
        } else {
            println!(
                "eval.fid for {} samples ({} features): extraction {:.2} s per set, FID {:.2} s, KID {:.2} s, precision/recall {:.2} s",
                result.samples,
                result.feature_width,
                result.extraction_seconds,
                result.fid_seconds,
                result.kid_seconds,
                result.precision_recall_seconds
            );
        }
        return Ok(());
    }
    if let Some(runs) = args.plan_runs {
        let result = bench::plan_speed(runs)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&result)?);
        } else {
            println!(
                "planned {} runs in {:.3} s ({:.0} runs/s, parsing, expansion, validation and hashing)",
                result.runs, result.seconds, result.runs_per_second
            );
        }
        return Ok(());
    }
    if let Some(root) = &args.fingerprint_dir {
        if let Some(count) = args.generate
            && !root.join("list_eval_partition.txt").is_file()
        {
            bench::fingerprint::generate_small_celeba_tree(root, count)?;
        }
        let cache = tempfile::tempdir()?;
        let result = bench::fingerprint::fingerprint_speed(root, cache.path())?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&result)?);
        } else {
            println!(
                "fingerprint of {} images ({:.1} MB): {:.2} s the first time, {:.3} s memoized; plan on it {:.3} s",
                result.images,
                result.bytes as f64 / 1e6,
                result.first_seconds,
                result.memoized_seconds,
                result.plan_seconds
            );
        }
        return Ok(());
    }
    if let Some(runs) = args.serve_runs {
        if runs < 1 || args.report_epochs < 1 {
            return Err(usage(
                "--serve-runs and --report-epochs: expected positive integers".into(),
            ));
        }
        let result = bench::serve_speed(runs, args.report_epochs)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&result)?);
        } else {
            println!(
                "dashboard page over {} runs x {} epochs: {:.1} ms cold, {:.1} ms warm",
                result.runs,
                result.epochs,
                result.cold_seconds * 1e3,
                result.warm_seconds * 1e3
            );
        }
        return Ok(());
    }
    if let Some(runs) = args.report_runs {
        if runs < 1 || args.report_epochs < 1 {
            return Err(usage(
                "--report-runs and --report-epochs: expected positive integers".into(),
            ));
        }
        let result = bench::report_speed(runs, args.report_epochs)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&result)?);
        } else {
            println!(
                "report of {} runs x {} epochs: {:.2} s ({} figures, {} files, {:.1} MB)",
                result.runs,
                result.epochs,
                result.seconds,
                result.figures,
                result.files,
                result.bytes as f64 / 1e6
            );
        }
        return Ok(());
    }
    let device = super::placement_device(&args.placement)?;
    let factor = 1i64 << DEFAULT_CHANNELS.len();
    if args.image_size < factor || args.image_size % factor != 0 {
        return Err(usage(format!(
            "--image-size: expected a positive multiple of {factor}, got {}",
            args.image_size
        )));
    }
    if args.batch_size < 1 {
        return Err(usage(format!(
            "--batch-size: expected a positive integer, got {}",
            args.batch_size
        )));
    }
    let config = BenchConfig {
        model: ModelConfig {
            residual: args.model == ModelChoice::Residual,
            latent_dim: args.latent_dim,
            channels: DEFAULT_CHANNELS.to_vec(),
            ..Default::default()
        },
        image_size: args.image_size,
        batch_size: args.batch_size,
        warmup: args.warmup,
        steps: args.steps,
        device,
        compute: Compute {
            precision: match args.precision {
                PrecisionChoice::Fp32 => Precision::Fp32,
                PrecisionChoice::Bf16 => Precision::Bf16,
            },
            channels_last: args.channels_last,
        },
        cudnn_benchmark: !args.no_cudnn_benchmark,
        epoch_images: args.epoch_images.filter(|&n| n > 0),
        phases: args.phases,
        tf32: args.tf32 == OnOff::On,
    };
    if let Some(root) = &args.data_dir {
        if let Some(count) = args.generate {
            bench::generate_celeba_tree(root, count)?;
        }
        let reporter = vaelab::progress::Console::new(false);
        let result = bench::data_speed(root, &config, args.crop, &reporter)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&result)?);
        } else {
            println!(
                "{} images: decode {:.0} img/s; epoch on the memory-mapped cache {:.2} s, in memory {:.2} s ({:+.1}%)",
                result.images,
                result.decode_images_per_second,
                result.epoch_seconds_cached,
                result.epoch_seconds_in_memory,
                result.cached_overhead_percent
            );
        }
        return Ok(());
    }
    let result = bench::run(&config);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "{} {}x{} batch {} {}{} on {}{}{} ({} threads, {} parameters): median {:.1} img/s ({:.3} s/step over {} steps)",
            if result.residual { "residual" } else { "plain" },
            result.image_size,
            result.image_size,
            result.batch_size,
            result.precision.name(),
            if result.channels_last {
                " channels-last"
            } else {
                ""
            },
            result.device,
            if result.cudnn_benchmark {
                " (cuDNN benchmark)"
            } else {
                ""
            },
            if result.device != "cpu" && (result.tf32_convolutions || result.tf32_matmuls) {
                " (TF32 allowed)"
            } else {
                ""
            },
            result.threads,
            result.parameters,
            result.median_images_per_second,
            result.median_step_seconds,
            result.step_seconds.len()
        );
        if let Some(phases) = &result.phases {
            println!(
                "per step: forward and loss {:.1} ms, backward {:.1} ms, Adam update {:.1} ms",
                phases.forward * 1e3,
                phases.backward * 1e3,
                phases.update * 1e3
            );
        }
        if let Some(epoch) = &result.epoch {
            println!(
                "one epoch of {} images held on the device: {:.2} s ({:.1} img/s)",
                epoch.images, epoch.seconds, epoch.images_per_second
            );
            if let Some(warmup) = epoch.last_batch_warmup_seconds {
                println!(
                    "  its last, smaller batch's first step, before the timing: {:.3} s",
                    warmup
                );
            }
        }
    }
    Ok(())
}
