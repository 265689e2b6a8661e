//! vaelab checkpoints load into the seed's PyTorch model with `strict=True`, and weights
//! exported from that model load into vaelab's.

use std::path::PathBuf;
use std::process::Command;

use crate::common::Workspace;
use tch::nn::Module;
use tch::{Device, Kind, Tensor};
use vaelab::experiment::config::{Likelihood, ModelConfig, Norm};
use vaelab::model;

/// The Python that carries torch, exported by `scripts/libtorch-env.sh` (the README's
/// test command sources it).
fn torch_python() -> PathBuf {
    PathBuf::from(std::env::var("VAELAB_TORCH_PYTHON").expect(
        "VAELAB_TORCH_PYTHON is not set: run the tests with `make test`, which provisions torch",
    ))
}

fn seed_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed_model.py")
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
    let output = Command::new(torch_python())
        .arg(seed_script())
        .args(args)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "seed_model.py {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn max_difference(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// The seed model, and with batch or group norm and the learned likelihood, a vaelab model
/// (running statistics moved) loads into the equivalent PyTorch module with `strict=True`,
/// and in evaluation mode both compute the same posterior mean and reconstruction (within
/// 1e-5) from the same input; PyTorch's weights load back into vaelab.
#[test]
fn seed_norm_and_learned_likelihood_models_match_pytorch_strictly_and_numerically() {
    let ws = Workspace::new();
    let size = 64;
    for (norm, likelihood) in [
        (Norm::None, Likelihood::Fixed),
        (Norm::Batch, Likelihood::Learned),
        (Norm::Group, Likelihood::Fixed),
    ] {
        let config = variant_config(norm, likelihood);
        let (vs, mut vae) = model::build(&config, size, Device::Cpu, 4);
        tch::manual_seed(9);
        vae.set_training(true);
        tch::no_grad(|| {
            for _ in 0..2 {
                let _ = vae.forward(&Tensor::rand(
                    [4, 3, size, size],
                    (Kind::Float, Device::Cpu),
                ));
            }
        });
        vae.set_training(false);
        let tag = format!("{norm:?}-{likelihood:?}");
        let weights = ws.path().join(format!("{tag}.safetensors"));
        model::save_weights(&vs, &weights).unwrap();
        let names = (
            format!("{norm:?}").to_lowercase(),
            format!("{likelihood:?}").to_lowercase(),
        );
        let size_text = size.to_string();
        let common = ["true", size_text.as_str(), "128", &names.0, &names.1];
        let mut check = vec!["check", weights.to_str().unwrap()];
        check.extend(common);
        let stdout = run_seed_script(&check);
        assert!(
            stdout.contains(&format!("{} parameters", model::parameter_count(&vs))),
            "{stdout}"
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
        let (mu, _) = tch::no_grad(|| vae.encode(&x));
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
        let (mut ours, _) = model::build(&config, size, Device::Cpu, 5);
        model::load_weights(&mut ours, &exported).unwrap();
        let saved = Tensor::read_safetensors(&exported).unwrap();
        let variables = ours.variables();
        assert_eq!(saved.len(), variables.len(), "{tag}: same state dict");
        for (name, tensor) in saved {
            assert!(variables[&name].equal(&tensor), "{tag}: {name} not loaded");
        }
        let tracked = "encoder.down.1.num_batches_tracked";
        if norm == Norm::Batch {
            // The seed's shape probe in `Encoder.__init__` runs in training mode too: 1 + 3.
            assert_eq!(
                variables[tracked].int64_value(&[]),
                4,
                "PyTorch's count arrives"
            );
        }
    }
}
