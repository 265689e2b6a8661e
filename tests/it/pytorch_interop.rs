//! vaelab checkpoints load into the seed's PyTorch model with `strict=True`, and weights
//! exported from that model load into vaelab's.

use std::path::PathBuf;
use std::process::Command;

use crate::common::Workspace;
use tch::Device;
use vaelab::experiment::config::ModelConfig;
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
        let output = Command::new(torch_python())
            .arg(seed_script())
            .args([
                "check",
                path.to_str().unwrap(),
                &residual.to_string(),
                &size.to_string(),
                "128",
            ])
            .output()
            .expect("run python");
        assert!(
            output.status.success(),
            "strict load failed for residual={residual} size={size}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let expected = model::parameter_count(&vs);
        assert!(
            String::from_utf8_lossy(&output.stdout).contains(&format!("{expected} parameters"))
        );
    }
}

#[test]
fn seed_model_weights_load_into_vaelab() {
    let ws = Workspace::new();
    let path = ws.path().join("seed.safetensors");
    let output = Command::new(torch_python())
        .arg(seed_script())
        .args(["export", path.to_str().unwrap(), "true", "64", "128"])
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (mut vs, _) = model::build(&seed_config(true), 64, Device::Cpu, 2);
    model::load_weights(&mut vs, &path).unwrap();
    let exported = tch::Tensor::read_safetensors(&path).unwrap();
    let ours = vs.variables();
    assert_eq!(exported.len(), ours.len());
    for (name, tensor) in exported {
        assert!(ours[&name].equal(&tensor), "{name} not loaded");
    }
}
