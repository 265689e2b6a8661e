//! `vaelab bench --report-runs` and `--serve-runs`: `vaelab report` and the dashboard's
//! experiment page over a made-up store of finished runs.
use std::time::Instant;

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use super::median;
use crate::experiment::config::Likelihood;

#[derive(Debug, Clone, Serialize)]
pub struct ReportBenchResult {
    pub runs: usize,
    pub epochs: u32,
    pub figures: usize,
    pub files: usize,
    pub bytes: usize,
    /// Reading the store, drawing, composing and writing the report.
    pub seconds: f64,
}

/// A made-up store of finished runs in a temporary directory.
struct FakeStore {
    _temp: tempfile::TempDir,
    root: std::path::PathBuf,
    store: crate::store::RunStore,
    plan: crate::experiment::plan::Plan,
}

/// `runs` finished runs (residual and plain, seeds pooled) of `epochs` epochs each:
/// metrics, state, evaluation and, with `pictures`, every picture a real run leaves.
fn fake_store(
    runs: usize,
    epochs: u32,
    pictures: bool,
) -> Result<FakeStore, crate::report::ReportError> {
    use crate::store::{
        EpochMetrics, Evaluation, EvaluationPicture, LatentStats, RunState, RunStatus, RunStore,
        SampleKind,
    };

    let seeds: Vec<String> = (0..runs.div_ceil(2).max(1))
        .map(|s| s.to_string())
        .collect();
    let text = format!(
        "name: report-bench\nseeds: [{}]\ndata:\n  image_size: 64\nmodel:\n  latent_dim: 64\ntrain:\n  epochs: {epochs}\nvariants:\n  - name: residual\n    model.residual: true\n  - name: plain\n    model.residual: false\n",
        seeds.join(", ")
    );
    let loaded = crate::experiment::spec::parse(std::path::Path::new("report-bench.yaml"), &text)
        .expect("the benchmark spec is valid");
    let plan = crate::experiment::plan::plan(&loaded, &crate::experiment::plan::synthetic_only)
        .expect("the benchmark spec plans");
    let temp = tempfile::tempdir().map_err(|source| crate::report::ReportError::Io {
        path: std::env::temp_dir(),
        action: "create a temporary directory",
        source,
    })?;
    let store = RunStore::new(temp.path().join("runs"));
    tch::manual_seed(0);
    let picture = |path: &std::path::Path, count: i64, columns: usize| {
        crate::data::png::write_grid(
            &Tensor::rand([count, 3, 64, 64], (Kind::Float, Device::Cpu)),
            columns,
            path,
        )
    };
    let sample = temp.path().join("sample.png");
    picture(&sample, 16, 4)?;
    let sample = std::fs::read(&sample).map_err(|source| crate::report::ReportError::Io {
        path: sample.clone(),
        action: "read",
        source,
    })?;
    let mut rng = crate::rng::SplitMix::new(7);
    let runs_planned: Vec<&crate::experiment::plan::PlannedRun> =
        plan.runs.iter().take(runs).collect();
    for planned in &runs_planned {
        let dir = store.run_dir(&planned.id);
        dir.write_or_check_config(&planned.config)?;
        let offset = if planned.config.model.residual {
            4.0
        } else {
            0.0
        };
        let metrics: Vec<EpochMetrics> = (1..=epochs)
            .map(|epoch| {
                let t = epoch as f64;
                let noise = rng.range(-0.5, 0.5) as f64;
                EpochMetrics {
                    epoch,
                    train_loss: 90.0 + offset + 60.0 / t + noise,
                    train_recon: 60.0 + offset + 50.0 / t + noise,
                    train_kl: 30.0 + 10.0 / t,
                    val_loss: 92.0 + offset + 60.0 / t + noise,
                    val_recon: 62.0 + offset + 50.0 / t + noise,
                    val_kl: 30.0 + 10.0 / t,
                    beta: 1.0,
                    lr: 1e-3,
                    epoch_seconds: 10.0 + noise,
                    images_per_second: 1000.0,
                    val_psnr: 20.0 + t.ln() - offset / 4.0,
                    finished_at: chrono::Utc::now(),
                }
            })
            .collect();
        dir.write_metrics(&metrics)?;
        let now = chrono::Utc::now();
        dir.write_state(&RunState {
            experiment: plan.experiment.clone(),
            status: RunStatus::Done,
            epochs_done: epochs,
            started_at: Some(now),
            finished_at: Some(now),
            slurm: None,
            ..RunState::fresh(
                planned.id.full(),
                &planned.label,
                epochs,
                crate::runtime::device::libtorch_version(),
                "cpu",
            )
        })?;
        let evaluation = Evaluation {
            epoch: epochs,
            split: "validation".into(),
            images: 256,
            recon_mse: 0.01 + offset / 1000.0,
            psnr: 20.0 - offset / 4.0 + rng.range(-0.2, 0.2) as f64,
            ssim: 0.6 - offset / 40.0,
            kl: 30.0,
            active_units: 20 + rng.below(5) as u32,
            latent_dim: 64,
            elbo_bpd: 8.82 + offset / 1000.0 + rng.range(-0.001, 0.001) as f64,
            iwae_bpd: 8.81 + offset / 1000.0,
            likelihood: Likelihood::Fixed,
            decoder_sigma: [std::f64::consts::FRAC_1_SQRT_2; 3],
            calibrated_sigma: [0.1; 3],
            calibrated_elbo_bpd: 4.1 + offset / 1000.0,
            calibrated_iwae_bpd: 4.0 + offset / 1000.0,
            iwae_samples: 16,
            iwae_images: 256,
            discretized: true,
            fid: None,
            attribute: Some("Smiling".into()),
            evaluated_at: now,
        };
        let stats = LatentStats {
            kl: (0..64).map(|d| 2.0 / (1.0 + d as f64)).collect(),
            mean_variance: (0..64).map(|d| 1.0 / (1.0 + d as f64)).collect(),
        };
        dir.write_evaluation(&evaluation, &stats)?;
        if !pictures {
            continue;
        }
        for (kind, count, columns) in [
            (EvaluationPicture::Reconstructions, 16, 8),
            (EvaluationPicture::Prior, 16, 8),
            (EvaluationPicture::Interpolation, 40, 10),
            (EvaluationPicture::Attribute, 28, 7),
            (EvaluationPicture::Traversal, 56, 7),
        ] {
            picture(&dir.evaluation_picture(kind), count, columns)?;
        }
        for epoch in 1..=epochs {
            crate::store::write_atomic(&dir.sample_path(epoch, SampleKind::Prior), &sample)?;
        }
    }
    let root = temp.path().to_path_buf();
    Ok(FakeStore {
        _temp: temp,
        root,
        store,
        plan,
    })
}

/// Times `vaelab report` on [`fake_store`]'s runs: reading the store, drawing, composing
/// and writing.
pub fn report_speed(
    runs: usize,
    epochs: u32,
) -> Result<ReportBenchResult, crate::report::ReportError> {
    let fake = fake_store(runs, epochs, true)?;
    let runs_planned: Vec<&crate::experiment::plan::PlannedRun> =
        fake.plan.runs.iter().take(runs).collect();
    let out = fake.root.join("report").join("report-bench");
    let started = Instant::now();
    let selection = crate::experiment::plan::Selection {
        plan: &fake.plan,
        runs: &runs_planned,
    };
    let (_, files) = crate::report::build(&fake.store, selection, &crate::progress::Silent)?;
    crate::report::write(&out, &files)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(ReportBenchResult {
        runs: runs_planned.len(),
        epochs,
        figures: files.figures,
        files: files.files.len(),
        bytes: files.files.iter().map(|(_, b)| b.len()).sum(),
        seconds,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct ServeBenchResult {
    pub runs: usize,
    pub epochs: u32,
    /// The experiment page's data with every metrics file read for the first time.
    pub cold_seconds: f64,
    /// The same with nothing changed on disk (median of 5): what a refreshing page costs.
    pub warm_seconds: f64,
}

/// Times the dashboard's experiment page data (`/api/experiments/NAME`: listing, states,
/// metrics, JSON) over [`fake_store`]'s runs, cold and then with the metrics cache warm.
pub fn serve_speed(
    runs: usize,
    epochs: u32,
) -> Result<ServeBenchResult, crate::report::ReportError> {
    let fake = fake_store(runs, epochs, false)?;
    let cache = crate::serve::views::MetricsCache::default();
    let page = || -> Result<f64, crate::report::ReportError> {
        let started = Instant::now();
        let views = crate::serve::views::experiment(&fake.store, &cache, &fake.plan.experiment)?;
        let json = serde_json::to_vec(&views).expect("views always serialize");
        std::hint::black_box(json);
        Ok(started.elapsed().as_secs_f64())
    };
    let cold_seconds = page()?;
    let warm: Vec<f64> = (0..5).map(|_| page()).collect::<Result<_, _>>()?;
    Ok(ServeBenchResult {
        runs: fake.plan.runs.len().min(runs),
        epochs,
        cold_seconds,
        warm_seconds: median(warm),
    })
}
