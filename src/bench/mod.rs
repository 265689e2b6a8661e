//! Train-step throughput: forward, backward and optimizer step on synthetic inputs.
use std::time::Instant;

pub mod fingerprint;

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::experiment::config::{Likelihood, ModelConfig, Precision, TrainConfig};
use crate::model::adam::{Adam, AdamConfig};
use crate::model::{self, Compute};
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
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanBenchResult {
    pub runs: usize,
    pub seconds: f64,
    pub runs_per_second: f64,
}

/// Times `plan::plan` on a spec whose grid expands to at least `runs` runs (10 seeds, a
/// latent-size axis and a beta axis), parsing included.
pub fn plan_speed(runs: usize) -> Result<PlanBenchResult, crate::experiment::spec::SpecError> {
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
    let loaded = crate::experiment::spec::parse(std::path::Path::new("plan-bench.yaml"), &text)?;
    let plan = crate::experiment::plan::plan(&loaded, &crate::experiment::plan::synthetic_only)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(PlanBenchResult {
        runs: plan.runs.len(),
        seconds,
        runs_per_second: plan.runs.len() as f64 / seconds,
    })
}

/// The benchmarked model with PyTorch's default Adam settings, initialised from seed 0.
fn bench_model(config: &BenchConfig) -> (tch::nn::VarStore, model::Vae, Adam) {
    if config.device.is_cuda() {
        model::switches::set_benchmark(config.cudnn_benchmark);
    }
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
fn train_step(vae: &model::Vae, optimizer: &mut Adam, x: &Tensor) -> Tensor {
    step::train_step(vae, optimizer, x, &noise(vae, x), default_settings()).loss
}

/// Waits until the device has run everything issued so far.
fn wait_for(device: Device) {
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

fn median(mut values: Vec<f64>) -> f64 {
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
        let seconds = epoch_seconds(&dataset, config);
        EpochBenchResult {
            images,
            seconds,
            images_per_second: images as f64 / seconds,
        }
    });
    BenchResult {
        residual: config.model.residual,
        image_size: config.image_size,
        batch_size: config.batch_size,
        precision: config.compute.precision,
        channels_last: config.compute.channels_last,
        device: crate::model::device::device_name(device),
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

/// Writes `count` synthetic faces as 178×218 JPEGs in CelebA's official layout (all in the
/// training partition), for benchmarks and tests of the disk pipeline.
pub fn generate_celeba_tree(root: &std::path::Path, count: usize) -> std::io::Result<()> {
    write_celeba_tree(root, count, |i| {
        let (chw, _) =
            crate::data::synthetic::generate(7, crate::data::synthetic::Split::Train, i, 218);
        let plane = 218 * 218;
        image::RgbImage::from_fn(178, 218, |x, y| {
            let at = (y * 218 + x + 20) as usize;
            image::Rgb([chw[at], chw[plane + at], chw[2 * plane + at]])
        })
    })
}

/// Writes `image(i)` for i in 0..count as `img_align_celeba/NNNNNN.jpg`, in parallel, and a
/// `list_eval_partition.txt` that puts them all in the training partition.
pub fn write_celeba_tree(
    root: &std::path::Path,
    count: usize,
    image: impl Fn(usize) -> image::RgbImage + Sync,
) -> std::io::Result<()> {
    use rayon::prelude::*;
    let images = root.join("img_align_celeba");
    std::fs::create_dir_all(&images)?;
    (0..count).into_par_iter().try_for_each(|i| {
        image(i)
            .save(images.join(format!("{:06}.jpg", i + 1)))
            .map_err(std::io::Error::other)
    })?;
    let partition: String = (0..count)
        .map(|i| format!("{:06}.jpg 0\n", i + 1))
        .collect();
    std::fs::write(root.join("list_eval_partition.txt"), partition)
}

#[derive(Debug, Clone, Serialize)]
pub struct DataBenchResult {
    pub images: usize,
    pub decode_seconds: f64,
    pub decode_images_per_second: f64,
    pub epoch_seconds_cached: f64,
    pub epoch_seconds_in_memory: f64,
    pub cached_overhead_percent: f64,
}

/// Seconds for one epoch over `images` (uint8, NCHW) after `config.warmup` untimed steps,
/// ending with a host read of the last loss so that device work is inside the timing.
fn epoch_seconds(images: &Tensor, config: &BenchConfig) -> f64 {
    let device = config.device;
    let (_vs, vae, mut optimizer) = bench_model(config);
    let n = images.size()[0];
    let order =
        Tensor::from_slice(&crate::rng::epoch_permutation(0, 1, n as usize)).to_device(device);
    let images = images.to_device(device);
    let batch =
        |start: i64| step::gather_batch(&images, &order, start, config.batch_size.min(n - start));
    for _ in 0..config.warmup {
        train_step(&vae, &mut optimizer, &batch(0)).double_value(&[]);
    }
    let started = Instant::now();
    let mut last = None;
    for start in (0..n).step_by(config.batch_size as usize) {
        last = Some(train_step(&vae, &mut optimizer, &batch(start)));
    }
    if let Some(loss) = last {
        loss.double_value(&[]);
    }
    started.elapsed().as_secs_f64()
}

/// Decode rate of a CelebA tree, then one training epoch on the tensor its cache loads
/// into against the same epoch on a fresh copy of it.
pub fn data_speed(
    root: &std::path::Path,
    config: &BenchConfig,
    crop: Option<u32>,
    reporter: &dyn crate::progress::Reporter,
) -> Result<DataBenchResult, crate::data::DataError> {
    use rayon::prelude::*;
    let (_, list) = crate::data::files::celeba_files(root, 0)?;
    let filter = crate::experiment::config::ResizeFilter::Triangle;
    let started = Instant::now();
    let decoded = list
        .files
        .par_iter()
        .filter(|f| {
            crate::data::disk::preprocess(
                &list.root.join(f),
                config.image_size as u32,
                crop,
                filter,
            )
            .is_ok()
        })
        .count();
    let decode_seconds = started.elapsed().as_secs_f64();
    let decode_rate = decoded as f64 / decode_seconds;
    let data_config = crate::experiment::config::DataConfig {
        source: crate::experiment::config::DataSource::Celeba,
        image_size: config.image_size as u32,
        dataset_seed: 0,
        train_images: list.files.len(),
        val_images: 0,
        limit: None,
        root: Some(root.to_path_buf()),
        fingerprint: None,
        crop,
        resize_filter: Some(filter),
        val_ratio: None,
        split: None,
        hflip: false,
    };
    let cache = crate::data::files::cache_dir();
    let cached =
        crate::data::disk::decode_cached(&cache, &list, &data_config, "training", reporter)?.images;
    let in_memory = cached.copy();
    // Warm both once (page cache, allocator), then time.
    let cached_seconds = epoch_seconds(&cached, config);
    let memory_seconds = epoch_seconds(&in_memory, config);
    Ok(DataBenchResult {
        images: decoded,
        decode_seconds,
        decode_images_per_second: decode_rate,
        epoch_seconds_cached: cached_seconds,
        epoch_seconds_in_memory: memory_seconds,
        cached_overhead_percent: 100.0 * (cached_seconds / memory_seconds - 1.0),
    })
}

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
                crate::model::device::libtorch_version(),
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
    let (_, files) = crate::report::build(
        &fake.store,
        &fake.plan,
        &runs_planned,
        None,
        None,
        &crate::progress::Silent,
    )?;
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
