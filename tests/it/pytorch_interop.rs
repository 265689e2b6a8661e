//! vaelab checkpoints load into the seed's PyTorch model with `strict=True`, and weights
//! exported from that model load into vaelab's.

use std::path::PathBuf;
use std::process::Command;

use crate::common::Workspace;
use tch::nn::Module;
use tch::{Device, Kind, Tensor};
use vaelab::experiment::capacity::capacity;
use vaelab::experiment::config::{
    BlockDesign, BlocksIn, Likelihood, ModelConfig, ModelKind, Norm, choice_name,
};
use vaelab::model;

/// The Python that carries torch, exported by `scripts/libtorch-env.sh` (the README's
/// test command sources it).
fn torch_python() -> PathBuf {
    PathBuf::from(std::env::var("VAELAB_TORCH_PYTHON").expect(
        "VAELAB_TORCH_PYTHON is not set: run the tests with `make test`, which provisions torch",
    ))
}

fn seed_config(residual: bool) -> ModelConfig {
    ModelConfig {
        residual,
        latent_dim: 128,
        channels: vec![32, 64, 128, 256, 512],
        ..Default::default()
    }
}

#[test]
fn vaelab_weights_load_into_the_seed_model_strictly() {
    let ws = Workspace::new();
    for (residual, size) in [(true, 64), (false, 64), (true, 128)] {
        let (vs, _) = model::build(&seed_config(residual), size, Device::Cpu, 1);
        let path = ws
            .path()
            .join(format!("vaelab-{residual}-{size}.safetensors"));
        model::save_weights(&vs, &path).unwrap();
        let stdout = run_seed_script(&[
            "check",
            path.to_str().unwrap(),
            &residual.to_string(),
            &size.to_string(),
            "128",
        ]);
        let expected = model::parameter_count(&vs);
        assert!(
            stdout.contains(&format!("{expected} parameters")),
            "residual={residual} size={size}: {stdout}"
        );
    }
}

#[test]
fn seed_model_weights_load_into_vaelab() {
    let ws = Workspace::new();
    let path = ws.path().join("seed.safetensors");
    run_seed_script(&["export", path.to_str().unwrap(), "true", "64", "128"]);
    let (mut vs, _) = model::build(&seed_config(true), 64, Device::Cpu, 2);
    model::load_weights(&mut vs, &path).unwrap();
    let exported = tch::Tensor::read_safetensors(&path).unwrap();
    let ours = vs.variables();
    assert_eq!(exported.len(), ours.len());
    for (name, tensor) in exported {
        assert!(ours[&name].equal(&tensor), "{name} not loaded");
    }
}

fn variant_config(norm: Norm, likelihood: Likelihood) -> ModelConfig {
    ModelConfig {
        norm,
        likelihood,
        ..seed_config(true)
    }
}

fn run_seed_script(args: &[&str]) -> String {
    run_fixture("seed_model.py", args)
}

/// Runs `tests/fixtures/NAME` with the torch Python; its stdout, or a failure naming it.
fn run_fixture(name: &str, args: &[&str]) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let output = Command::new(torch_python())
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{name} {args:?}: {} (`make test` installs what the fixtures import)",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn max_difference(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// The fixture's RESIDUAL argument for `config`: `true`, `false`, DESIGN:PLACEMENT:DEPTH,
/// or `mlp:W1,W2` for the fully connected model.
fn blocks_argument(config: &ModelConfig) -> String {
    let defaults = ModelConfig::default();
    if config.kind == ModelKind::Mlp {
        let widths: Vec<String> = config.hidden.iter().map(usize::to_string).collect();
        format!("mlp:{}", widths.join(","))
    } else if !config.residual {
        "false".into()
    } else if (config.block, config.blocks_in, config.blocks_per_stage)
        == (
            defaults.block,
            defaults.blocks_in,
            defaults.blocks_per_stage,
        )
    {
        "true".into()
    } else {
        format!(
            "{}:{}:{}",
            choice_name(&config.block),
            choice_name(&config.blocks_in),
            config.blocks_per_stage
        )
    }
}

/// A vaelab model built from `config` (running statistics moved, every SkipInit α away
/// from 0) loads into the equivalent PyTorch module with `strict=True`, and in evaluation
/// mode both compute the same posterior mean and reconstruction (within 1e-5) from the same
/// input; PyTorch's weights load back into vaelab.
fn matches_pytorch(ws: &Workspace, config: &ModelConfig, tag: &str) {
    let size = 64;
    let (vs, mut vae) = model::build(config, size, Device::Cpu, 4);
    tch::manual_seed(9);
    vae.set_training(true);
    tch::no_grad(|| {
        for _ in 0..2 {
            let _ = vae.forward(&Tensor::rand(
                [4, 3, size, size],
                (Kind::Float, Device::Cpu),
            ));
        }
        for (name, mut alpha) in vs.variables() {
            if name.ends_with(".alpha") {
                let _ = alpha.fill_(0.5);
            }
        }
    });
    vae.set_training(false);
    let weights = ws.path().join(format!("{tag}.safetensors"));
    model::save_weights(&vs, &weights).unwrap();
    let names = (
        blocks_argument(config),
        choice_name(&config.norm),
        choice_name(&config.likelihood),
    );
    let size_text = size.to_string();
    let common = [
        names.0.as_str(),
        size_text.as_str(),
        "128",
        &names.1,
        &names.2,
    ];
    let mut check = vec!["check", weights.to_str().unwrap()];
    check.extend(common);
    let stdout = run_seed_script(&check);
    assert!(
        stdout.contains(&format!("{} parameters", model::parameter_count(&vs))),
        "{tag}: {stdout}"
    );

    let x = Tensor::rand([3, 3, size, size], (Kind::Float, Device::Cpu));
    let input = ws.path().join(format!("{tag}-x.safetensors"));
    let output = ws.path().join(format!("{tag}-out.safetensors"));
    Tensor::write_safetensors(&[("x", &x)], &input).unwrap();
    let mut forward = vec!["forward", weights.to_str().unwrap()];
    forward.extend(common);
    forward.extend([input.to_str().unwrap(), output.to_str().unwrap()]);
    run_seed_script(&forward);
    let theirs: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&output)
        .unwrap()
        .into_iter()
        .collect();
    let mu = tch::no_grad(|| vae.encode(&x)).mu;
    let recon = tch::no_grad(|| vae.decode(&mu));
    assert!(
        max_difference(&mu, &theirs["mu"]) < 1e-5,
        "{tag}: posterior means differ"
    );
    assert!(
        max_difference(&recon, &theirs["recon"]) < 1e-5,
        "{tag}: reconstructions differ"
    );

    // And back: PyTorch's weights, running statistics and counters load into vaelab.
    let exported = ws.path().join(format!("{tag}-torch.safetensors"));
    let mut export = vec!["export", exported.to_str().unwrap()];
    export.extend(common);
    run_seed_script(&export);
    let (mut ours, _) = model::build(config, size, Device::Cpu, 5);
    model::load_weights(&mut ours, &exported).unwrap();
    let saved = Tensor::read_safetensors(&exported).unwrap();
    let variables = ours.variables();
    assert_eq!(saved.len(), variables.len(), "{tag}: same state dict");
    for (name, tensor) in saved {
        assert!(variables[&name].equal(&tensor), "{tag}: {name} not loaded");
    }
    let tracked = "encoder.down.1.num_batches_tracked";
    if config.norm == Norm::Batch {
        // The seed's shape probe in `Encoder.__init__` runs in training mode too: 1 + 3.
        assert_eq!(
            variables[tracked].int64_value(&[]),
            4,
            "{tag}: PyTorch's count arrives"
        );
    }
}

/// The seed model, and with batch or group norm and the learned likelihood.
#[test]
fn seed_norm_and_learned_likelihood_models_match_pytorch_strictly_and_numerically() {
    let ws = Workspace::new();
    for (norm, likelihood) in [
        (Norm::None, Likelihood::Fixed),
        (Norm::Batch, Likelihood::Learned),
        (Norm::Group, Likelihood::Fixed),
    ] {
        let config = variant_config(norm, likelihood);
        matches_pytorch(&ws, &config, &format!("{norm:?}-{likelihood:?}"));
    }
}

/// Every block design, each placement and two blocks per stage, with and without norm.
#[test]
fn every_block_design_and_placement_matches_pytorch_strictly_and_numerically() {
    let ws = Workspace::new();
    let cases = [
        (BlockDesign::Preact, BlocksIn::Both, 1, Norm::None),
        (BlockDesign::Preact, BlocksIn::Encoder, 2, Norm::Batch),
        (BlockDesign::Skipinit, BlocksIn::Both, 1, Norm::None),
        (BlockDesign::Skipinit, BlocksIn::Decoder, 1, Norm::Group),
        (BlockDesign::Seed, BlocksIn::Decoder, 2, Norm::None),
    ];
    for (block, blocks_in, blocks_per_stage, norm) in cases {
        let config = ModelConfig {
            block,
            blocks_in,
            blocks_per_stage,
            ..variant_config(norm, Likelihood::Fixed)
        };
        let tag = format!("{block:?}-{blocks_in:?}-{blocks_per_stage}-{norm:?}");
        matches_pytorch(&ws, &config, &tag);
    }
}

/// Kingma & Welling's fully connected VAE (`model.kind: mlp`), with the fixed and the
/// learned likelihood: vaelab's weights load into the PyTorch twin with `strict=True`,
/// both compute the same posterior mean and reconstruction, and PyTorch's load back.
#[test]
fn the_mlp_matches_its_pytorch_twin_strictly_and_numerically() {
    let ws = Workspace::new();
    for likelihood in [Likelihood::Fixed, Likelihood::Learned] {
        let config = ModelConfig {
            kind: ModelKind::Mlp,
            hidden: vec![64, 32],
            residual: false,
            ..variant_config(Norm::None, likelihood)
        };
        matches_pytorch(&ws, &config, &format!("mlp-{likelihood:?}"));
    }
}

/// `plan`'s parameter count equals the built model's and PyTorch's, and its forward FLOPs
/// per image equal `torch.utils.flop_counter`'s, for every design, placement and norm.
#[test]
fn counted_parameters_and_flops_match_the_built_models_and_pytorch_s_counter() {
    let size = 64;
    let plain = seed_config(false);
    let cases = [
        plain.clone(),
        seed_config(true),
        ModelConfig {
            block: BlockDesign::Preact,
            blocks_in: BlocksIn::Encoder,
            blocks_per_stage: 2,
            ..variant_config(Norm::Batch, Likelihood::Fixed)
        },
        ModelConfig {
            block: BlockDesign::Skipinit,
            blocks_in: BlocksIn::Decoder,
            ..variant_config(Norm::Group, Likelihood::Learned)
        },
        ModelConfig {
            channels: vec![24, 48, 96, 184, 360],
            ..plain.clone()
        },
        ModelConfig {
            kind: ModelKind::Mlp,
            hidden: vec![256, 64],
            ..variant_config(Norm::None, Likelihood::Learned)
        },
        ModelConfig {
            kind: ModelKind::Mlp,
            hidden: vec![96],
            ..plain
        },
    ];
    for config in cases {
        let counted = capacity(&config, size as usize);
        let (vs, _) = model::build(&config, size, Device::Cpu, 1);
        assert_eq!(
            counted.parameters,
            model::parameter_count(&vs) as u64,
            "{config:?}"
        );
        let blocks = blocks_argument(&config);
        let (norm, likelihood) = (choice_name(&config.norm), choice_name(&config.likelihood));
        let size_text = size.to_string();
        let mut args = vec![
            "flops",
            "-",
            blocks.as_str(),
            &size_text,
            "128",
            &norm,
            &likelihood,
        ];
        let widths: Vec<String> = config.channels.iter().map(|c| c.to_string()).collect();
        let widths = widths.join(",");
        if config.channels != seed_config(false).channels {
            args.push(&widths);
        }
        let theirs: serde_json::Value =
            serde_json::from_str(run_seed_script(&args).trim()).unwrap();
        assert_eq!(theirs["parameters"], counted.parameters, "{config:?}");
        assert_eq!(theirs["flops"], counted.forward_flops, "{config:?}");
    }
}

/// A freshly built vaelab model and a freshly initialised PyTorch fixture (PyTorch's own
/// defaults) agree parameter by parameter: the same bound (max |value| · √fan_in, just
/// under 1 for every layer large enough to come near it) and the same standard deviation
/// within sampling error (1/√3 of the bound for uniform values); norm weights 1, biases 0.
#[test]
fn initial_weights_are_distributed_as_pytorch_initialises_the_seed_model() {
    let ws = Workspace::new();
    let stats_path = ws.path().join("stats.json");
    for norm in [Norm::None, Norm::Batch] {
        let norm_name = format!("{norm:?}").to_lowercase();
        run_seed_script(&[
            "init-stats",
            stats_path.to_str().unwrap(),
            "true",
            "64",
            "128",
            &norm_name,
            "fixed",
        ]);
        let theirs: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&stats_path).unwrap()).unwrap();
        let theirs = theirs.as_object().unwrap();
        let (vs, _) = model::build(&variant_config(norm, Likelihood::Fixed), 64, Device::Cpu, 8);
        let ours = vs.variables();
        let mut compared = 0;
        for (name, stats) in theirs {
            let tensor = &ours[name];
            let numel = stats["numel"].as_f64().unwrap();
            assert_eq!(tensor.numel() as f64, numel, "{name}");
            let max_abs = tensor.abs().max().double_value(&[]);
            let std = if numel > 1.0 {
                tensor.std(true).double_value(&[])
            } else {
                0.0
            };
            let (their_max, their_std) = (
                stats["max_abs"].as_f64().unwrap(),
                stats["std"].as_f64().unwrap(),
            );
            let weight = name
                .strip_suffix(".bias")
                .map_or(name.clone(), |layer| format!("{layer}.weight"));
            let fan_in = theirs[&weight]["fan_in"].as_f64();
            match fan_in {
                // A convolution's or linear layer's weight or bias.
                Some(fan_in) => {
                    let bound = 1.0 / fan_in.sqrt();
                    assert!(
                        max_abs <= bound * (1.0 + 1e-6),
                        "{name}: {max_abs} > {bound}"
                    );
                    if numel >= 1000.0 {
                        assert!(max_abs > 0.99 * bound && their_max > 0.99 * bound, "{name}");
                    }
                    // The standard error of a sample standard deviation of uniform values.
                    let expected = bound / 3f64.sqrt();
                    let tolerance = 5.0 * expected * (0.8 / numel).sqrt();
                    assert!(
                        (std - expected).abs() < tolerance,
                        "{name}: std {std} vs {expected}"
                    );
                    assert!(
                        (their_std - expected).abs() < tolerance,
                        "{name}: PyTorch's std {their_std} vs {expected}"
                    );
                    assert!(max_abs > 0.0, "{name} is all zero");
                }
                // Norm layers and running statistics: as PyTorch sets them.
                None => assert!(
                    (max_abs - their_max).abs() < 1e-12 && (std - their_std).abs() < 1e-12,
                    "{name}: {max_abs}/{std} vs {their_max}/{their_std}"
                ),
            }
            compared += 1;
        }
        assert!(compared >= 62, "{norm:?}: compared {compared} parameters");
    }
}

/// Training equals PyTorch's: from the same initial weights (vaelab's, loaded into the
/// fixture), the same batches and the same reparameterisation noise, 20 Adam steps of
/// vaelab's train step and of a PyTorch loop over the seed's loss give the same losses
/// within float32 tolerance (1e-4 relative), for the residual and the plain model. With
/// batch norm, training is so sensitive that a loss one ulp larger drifts PyTorch from
/// itself by about 1e-3 within four steps (measured with the fixture's `with-floor` run),
/// so there the first three losses must agree to 1e-5 and every later one to within ten
/// times that floor; a changed loss, β or Adam setting misses both by orders of magnitude.
/// The final weights must agree within ten times the same run's drift per tensor.
#[test]
fn twenty_adam_steps_match_pytorch_from_the_same_weights_and_noise() {
    use vaelab::experiment::config::TrainConfig;
    use vaelab::optim::adam::{Adam, AdamConfig};
    use vaelab::train::schedule::StepSettings;
    let ws = Workspace::new();
    let (size, latent, steps) = (64, 16, 20);
    for (residual, norm) in [
        (true, Norm::None),
        (false, Norm::None),
        (true, Norm::Batch),
        (false, Norm::Batch),
    ] {
        let tag = format!("{residual}-{norm:?}");
        let batch = 2;
        let config = ModelConfig {
            residual,
            latent_dim: latent as usize,
            norm,
            ..seed_config(residual)
        };
        let (vs, mut vae) = model::build(&config, size, Device::Cpu, 12);
        let initial = ws.path().join(format!("{tag}-initial.safetensors"));
        model::save_weights(&vs, &initial).unwrap();
        tch::manual_seed(21);
        let batches: Vec<(Tensor, Tensor)> = (0..steps)
            .map(|_| {
                (
                    Tensor::rand([batch, 3, size, size], (Kind::Float, Device::Cpu)),
                    Tensor::randn([batch, latent], (Kind::Float, Device::Cpu)),
                )
            })
            .collect();
        let names: Vec<(String, String)> = (0..steps)
            .map(|i| (format!("x.{i}"), format!("eps.{i}")))
            .collect();
        let named: Vec<(&str, &Tensor)> = names
            .iter()
            .zip(&batches)
            .flat_map(|((xn, en), (x, eps))| [(xn.as_str(), x), (en.as_str(), eps)])
            .collect();
        let data = ws.path().join(format!("{tag}-data.safetensors"));
        Tensor::write_safetensors(&named, &data).unwrap();

        let train = TrainConfig::default();
        let mut optimizer = Adam::new(&vs, AdamConfig::from(&train));
        vae.set_training(true);
        let settings = StepSettings {
            lr: train.lr,
            objective: model::Objective::beta(train.beta),
        };
        let losses: Vec<f64> = batches
            .iter()
            .map(|(x, eps)| {
                vaelab::train::step::train_step(&vae, &mut optimizer, x, eps, settings)
                    .loss
                    .double_value(&[])
            })
            .collect();

        let output = ws.path().join(format!("{tag}-torch.safetensors"));
        let batch_norm = norm == Norm::Batch;
        run_seed_script(&[
            "train",
            initial.to_str().unwrap(),
            &residual.to_string(),
            &size.to_string(),
            &latent.to_string(),
            &format!("{norm:?}").to_lowercase(),
            "fixed",
            data.to_str().unwrap(),
            output.to_str().unwrap(),
            "with-floor",
        ]);
        let theirs: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&output)
            .unwrap()
            .into_iter()
            .collect();
        let their_losses: Vec<f64> = Vec::try_from(&theirs["losses"]).unwrap();
        assert_eq!(their_losses.len(), losses.len());
        let tolerance: Vec<f64> = if batch_norm {
            let floor: Vec<f64> = Vec::try_from(&theirs["floor.losses"]).unwrap();
            let mut widest = 0f64;
            their_losses
                .iter()
                .zip(&floor)
                .enumerate()
                .map(|(step, (exact, nudged))| {
                    widest = widest.max((exact - nudged).abs());
                    if step < 3 {
                        1e-5 * exact.abs()
                    } else {
                        10.0 * widest + 1e-5 * exact.abs()
                    }
                })
                .collect()
        } else {
            their_losses.iter().map(|l| 1e-4 * l.abs()).collect()
        };
        for (step, ((ours, theirs), allowed)) in
            losses.iter().zip(&their_losses).zip(&tolerance).enumerate()
        {
            assert!(
                (ours - theirs).abs() <= *allowed,
                "{tag}: step {step} loss {ours} vs PyTorch's {theirs} (allowed {allowed})"
            );
        }
        assert!(
            losses[steps as usize - 1] < losses[0],
            "{tag}: training lowered the loss"
        );
        // Adam moves a weight whose gradient is rounding noise by about lr per step
        // whatever the noise's size, so after 20 steps PyTorch itself, with the loss one
        // ulp larger, ends up to 2% away in some tensors (measured with this fixture).
        // Each tensor may differ by ten times its own floor (tensors with strong gradients
        // have a floor near 1e-5 of their norm, and stay that close); the losses above
        // are the sharp check of the update rule.
        for (name, ours) in vs.variables() {
            let exact = &theirs[&name];
            if ours.kind() != Kind::Float {
                assert!(ours.equal(exact), "{tag}: {name}");
                continue;
            }
            let scale = exact.norm().double_value(&[]).max(1e-12);
            let floor = (exact - &theirs[&format!("floor.{name}")])
                .norm()
                .double_value(&[]);
            let difference = (&ours - exact).norm().double_value(&[]);
            assert!(
                difference <= 1e-4 * scale + 10.0 * floor,
                "{tag}: {name} differs by {difference} (norm {scale}, PyTorch's floor {floor})"
            );
        }
    }
}

/// FID, KID and precision/recall on fixed features agree with the references: pytorch-fid's
/// own `calculate_frechet_distance` (to 1e-6 relative), clean-fid's KID formula on the same
/// subsets, and a direct NumPy k-NN computation (`tests/fixtures/feature_metrics.py`).
#[test]
fn feature_metrics_match_pytorch_fid_clean_fid_and_numpy() {
    use vaelab::evaluate::features::{
        FeatureStats, frechet_distance, kernel_distance, kid_subsets, precision_recall,
    };
    let ws = Workspace::new();
    tch::manual_seed(21);
    // Correlated features, as a network's are: a random linear map of normal draws.
    let mixing = Tensor::randn([24, 32], (Kind::Double, Device::Cpu)) * 0.4;
    let real = Tensor::randn([300, 24], (Kind::Double, Device::Cpu)).matmul(&mixing);
    let fake = (Tensor::randn([280, 24], (Kind::Double, Device::Cpu)) * 1.3 + 0.2).matmul(&mixing);
    let subsets = kid_subsets(300, 280, 5, 100, 3);
    let input = ws.path().join("features.safetensors");
    let mut named: Vec<(String, Tensor)> =
        vec![("real".into(), real.copy()), ("fake".into(), fake.copy())];
    for (i, (r, f)) in subsets.iter().enumerate() {
        named.push((format!("kid.real.{i}"), r.copy()));
        named.push((format!("kid.fake.{i}"), f.copy()));
    }
    Tensor::write_safetensors(&named, &input).unwrap();
    let output = ws.path().join("reference.json");
    run_fixture(
        "feature_metrics.py",
        &[input.to_str().unwrap(), output.to_str().unwrap()],
    );
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    let number = |key: &str| reference[key].as_f64().unwrap();

    let fid = frechet_distance(&FeatureStats::of(&real), &FeatureStats::of(&fake));
    assert!(
        (fid - number("fid")).abs() <= 1e-6 * number("fid"),
        "FID {fid} vs pytorch-fid {}",
        number("fid")
    );
    let (kid, _) = kernel_distance(&real, &fake, &subsets);
    assert!(
        (kid - number("kid")).abs() <= 1e-9 * number("kid").abs().max(1e-3),
        "KID {kid} vs {}",
        number("kid")
    );
    let pr = precision_recall(&real, &fake, 3);
    // The same counts; the shares may differ in the last bit of the division.
    assert!((pr.precision - number("precision")).abs() < 1e-12, "{pr:?}");
    assert!((pr.recall - number("recall")).abs() < 1e-12, "{pr:?}");
    assert!(
        pr.precision < 1.0 && pr.recall < 1.0,
        "a test that can tell: {pr:?}"
    );
}

/// The sha256 of a file, in hex.
fn sha256_of(path: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `eval.fid` end to end with a stand-in extractor (a small random TorchScript network with
/// the standard file's call signature): every run's evaluation holds FID, rFID, KID and
/// precision/recall with their protocol; four runs on one dataset extract the reference
/// once; a changed `eval.fid` evaluates the finished runs again without training them; the
/// report compares FID with paired intervals and states the protocol.
#[test]
fn fid_is_measured_cached_re_evaluated_and_reported() {
    let ws = Workspace::new();
    let extractor = ws.path().join("stand-in.pt");
    run_fixture("stand_in_extractor.py", &[extractor.to_str().unwrap()]);
    let spec_with = |samples: u32| {
        format!(
            "{}eval:\n  fid:\n    extractor: {}\n    samples: {samples}\n",
            crate::common::tiny_sweep("fid", 1),
            extractor.display()
        )
    };
    let spec = ws.write("fid.yaml", &spec_with(40));
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success();
    let references: Vec<_> = std::fs::read_dir(ws.runs().join(".fid-reference"))
        .unwrap()
        .collect();
    assert_eq!(references.len(), 1, "one dataset, one reference extraction");
    let hash = sha256_of(&extractor);
    let evaluations = |samples: u32| {
        let runs = vaelab::store::RunStore::new(ws.runs()).list().unwrap();
        assert_eq!(runs.len(), 4);
        for dir in runs {
            let e = dir.read_evaluation().unwrap().expect("evaluation.parquet");
            let f = e.fid.expect("FID scores");
            assert!(f.fid.is_finite() && f.fid >= 0.0, "{f:?}");
            assert!(f.reconstruction_fid.is_finite() && f.reconstruction_fid >= 0.0);
            assert!(f.kid.is_finite() && f.kid_std >= 0.0);
            assert!((0.0..=1.0).contains(&f.precision) && (0.0..=1.0).contains(&f.recall));
            assert_eq!(
                (
                    f.extractor_sha256.as_str(),
                    f.samples,
                    f.reference.as_str(),
                    f.reference_images
                ),
                (hash.as_str(), samples, "train", samples.min(48))
            );
        }
    };
    evaluations(40);

    // Another sample count: evaluated again, not trained again.
    let metrics_before = snapshot_metrics(&ws);
    ws.write("fid.yaml", &spec_with(24));
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success()
        .stderr(predicates::prelude::PredicateBooleanExt::not(
            predicates::str::contains("epoch 1/1"),
        ));
    evaluations(24);
    assert_eq!(
        snapshot_metrics(&ws),
        metrics_before,
        "no run trained again"
    );

    ws.vaelab(&["--report-dir", "report", "report", spec.to_str().unwrap()])
        .assert()
        .success();
    let report = ws.path().join("report/fid");
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(
        md.contains(&format!("through the extractor with SHA-256 {hash}")),
        "{md}"
    );
    assert!(md.contains("| FID |") || md.contains("| FID"), "{md}");
    let differences = std::fs::read_to_string(report.join("tables/differences.csv")).unwrap();
    let fid_row = differences
        .lines()
        .find(|l| l.contains(",fid,"))
        .expect("a paired FID difference");
    assert!(fid_row.contains(",2,"), "two seeds paired: {fid_row}");

    // The benchmark of the same path times this extractor.
    let bench = ws
        .vaelab(&[
            "bench",
            "--fid-samples",
            "64",
            "--fid-extractor",
            extractor.to_str().unwrap(),
            "--device",
            "cpu",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        bench.status.success(),
        "{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    let timed: serde_json::Value = serde_json::from_slice(&bench.stdout).unwrap();
    assert_eq!(
        (timed["samples"].as_i64(), timed["feature_width"].as_i64()),
        (Some(64), Some(2048))
    );
    for key in [
        "extraction_seconds",
        "fid_seconds",
        "kid_seconds",
        "precision_recall_seconds",
    ] {
        assert!(
            timed[key].as_f64().is_some_and(|s| s > 0.0),
            "{key}: {timed}"
        );
    }
}

/// Every run's metrics file, by run directory, as bytes.
fn snapshot_metrics(ws: &Workspace) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(ws.runs())
        .unwrap()
        .map(|e| e.unwrap().path().join("metrics.parquet"))
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}
