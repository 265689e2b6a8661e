//! `vaelab run` end to end on a tiny spec: layout, skip, extend, bad input.

use crate::common::{Workspace, read_state, tiny_spec};
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

#[test]
fn a_run_writes_its_directory_and_a_second_run_does_nothing() {
    let ws = Workspace::new();
    let spec = ws.write("tiny.yaml", &tiny_spec("tiny", 2));
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success()
        .stderr(contains("tiny/seed=3 epoch 2/2: train"))
        .stderr(contains("trained epochs 1..=2 on cpu"));

    let run = ws.single_run_dir();
    for file in [
        "config.yaml",
        "state.json",
        "metrics.parquet",
        "checkpoints/epoch-0002/model.safetensors",
        "checkpoints/epoch-0002/optimizer.safetensors",
        "checkpoints/epoch-0002/progress.json",
        "samples/epoch-0001-prior.png",
        "samples/epoch-0002-recon.png",
    ] {
        assert!(run.join(file).is_file(), "missing {file}");
    }
    let state = read_state(&run);
    assert_eq!(state["status"], "done");
    assert_eq!(state["epochs_done"], 2);
    assert_eq!(state["device"], "cpu");
    assert!(
        state["libtorch_version"]
            .as_str()
            .unwrap()
            .starts_with("2.11.0")
    );
    assert_eq!(run.file_name().unwrap().len(), 16);

    let config_text = std::fs::read_to_string(run.join("config.yaml")).unwrap();
    assert!(config_text.contains("latent_dim: 8"), "{config_text}");

    let metrics_before = std::fs::read(run.join("metrics.parquet")).unwrap();
    let rows = read_metrics_at(&run);
    assert_eq!(rows.len(), 2);
    assert!(
        rows[1].train_loss < rows[0].train_loss,
        "training should lower the loss: {rows:?}"
    );
    for row in &rows {
        assert!((row.train_loss - (row.train_recon + row.train_kl)).abs() < 1e-3 * row.train_loss);
        assert!(row.images_per_second > 0.0 && row.epoch_seconds > 0.0);
    }

    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success()
        .stderr(contains("already done (2 epochs), nothing to do"));
    assert_eq!(
        std::fs::read(run.join("metrics.parquet")).unwrap(),
        metrics_before
    );
}

fn read_metrics_at(dir: &std::path::Path) -> Vec<vaelab::store::EpochMetrics> {
    vaelab::store::read_metrics_file(&dir.join("metrics.parquet")).expect("metrics.parquet")
}

/// Raising `train.epochs` extends the same run, bit-identical to a run trained that far.
#[test]
fn raising_epochs_extends_the_same_run() {
    let ws = Workspace::new();
    let spec = ws.write("tiny.yaml", &tiny_spec("grow", 1));
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success();
    let run = ws.single_run_dir();
    let first = read_metrics_at(&run);

    ws.write("tiny.yaml", &tiny_spec("grow", 2));
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success()
        .stderr(contains("resuming from epoch 1 of 2"))
        .stderr(contains("trained epochs 2..=2"));
    assert_eq!(ws.single_run_dir(), run);
    let rows = read_metrics_at(&run);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], first[0]);
    assert_eq!(read_state(&run)["epochs_target"], 2);

    // Extended from 1 to 2 epochs, it ends where a run trained to 2 directly ends.
    let direct = Workspace::new();
    let spec = direct.write("tiny.yaml", &tiny_spec("grow", 2));
    direct
        .vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success();
    let direct_run = direct.single_run_dir();
    for file in ["model.safetensors", "optimizer.safetensors"] {
        let read = |dir: &std::path::Path| {
            tch::Tensor::read_safetensors(dir.join("checkpoints/epoch-0002").join(file))
                .unwrap()
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let (extended, trained) = (read(&run), read(&direct_run));
        assert_eq!(extended.len(), trained.len());
        for (name, tensor) in &extended {
            assert!(tensor.equal(&trained[name]), "{file}: {name} differs");
        }
    }
    let learned =
        |rows: &[vaelab::store::EpochMetrics]| rows.iter().map(|m| m.learned()).collect::<Vec<_>>();
    assert_eq!(learned(&rows), learned(&read_metrics_at(&direct_run)));
}

#[test]
fn unknown_fields_are_a_usage_error_naming_file_line_and_field() {
    let ws = Workspace::new();
    let spec = ws.write("bad.yaml", "name: bad\nmodel:\n  latent_dims: 3\n");
    ws.vaelab(&["run", spec.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(contains("bad.yaml:3: model: unknown field `latent_dims`"));
    assert!(!ws.runs().exists(), "an invalid spec must write nothing");
}

#[test]
fn invalid_values_are_a_usage_error() {
    let ws = Workspace::new();
    let spec = ws.write("bad.yaml", "name: bad\ndata:\n  image_size: 100\n");
    ws.vaelab(&["run", spec.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(contains(
            "bad.yaml:3: data.image_size: expected a multiple of 32",
        ))
        .stderr(contains("got 100"));
}

#[test]
fn a_missing_spec_names_the_file() {
    let ws = Workspace::new();
    ws.vaelab(&["run", "nope.yaml"])
        .assert()
        .code(2)
        .stderr(contains("nope.yaml: file: cannot read the spec"));
}

#[test]
fn a_corrupt_checkpoint_is_named_and_finished_work_is_kept() {
    let ws = Workspace::new();
    let spec = ws.write("tiny.yaml", &tiny_spec("corrupt", 1));
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success();
    let run = ws.single_run_dir();
    let model = run.join("checkpoints/epoch-0001/model.safetensors");
    std::fs::write(&model, b"garbage").unwrap();
    let metrics = std::fs::read(run.join("metrics.parquet")).unwrap();

    ws.write("tiny.yaml", &tiny_spec("corrupt", 2));
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .failure()
        .stderr(contains("epoch-0001/model.safetensors"))
        .stderr(contains("checkpoint unreadable"));
    assert_eq!(std::fs::read(run.join("metrics.parquet")).unwrap(), metrics);
    let state = read_state(&run);
    assert_eq!(state["status"], "failed");
    assert!(
        state["error"]
            .as_str()
            .unwrap()
            .contains("model.safetensors")
    );
}

#[test]
fn info_reports_versions_and_devices() {
    let ws = Workspace::new();
    ws.vaelab(&["info"])
        .env_remove("GLIBC_TUNABLES")
        .assert()
        .success()
        .stdout(contains("libtorch         2.11.0"))
        .stdout(contains("cuda devices"))
        .stdout(contains("cpu threads"))
        .stdout(contains("cpu bf16"))
        .stdout(contains("cpu malloc       freed memory kept for reuse"));
    // A user's own malloc settings stay in charge.
    let output = ws
        .vaelab(&["info", "--json"])
        .env("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=1048576")
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).expect("info --json");
    assert_eq!(info["malloc"], "user_tunables", "{info}");
}

/// cuBLAS's fixed workspace is in the training process's environment from its start,
/// whether it came through `vaelab` or `vaelab-torch` was started directly (it then runs
/// itself again with it); a value the user set is kept.
#[test]
fn the_training_process_starts_with_the_cublas_workspace_set() {
    let ws = Workspace::new();
    let workspace_of = |mut command: assert_cmd::Command| -> serde_json::Value {
        let output = command
            .env_remove("CUBLAS_WORKSPACE_CONFIG")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
            ["cublas_workspace_config"]
            .clone()
    };
    let mut through_vaelab = ws.vaelab(&["info", "--json"]);
    through_vaelab.env_remove("CUBLAS_WORKSPACE_CONFIG");
    assert_eq!(workspace_of(through_vaelab), ":4096:8");
    let mut direct = assert_cmd::Command::cargo_bin("vaelab-torch").unwrap();
    direct.args(["info", "--json"]);
    assert_eq!(workspace_of(direct), ":4096:8");
    let output = ws
        .vaelab(&["info", "--json"])
        .env("CUBLAS_WORKSPACE_CONFIG", ":16:8")
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(info["cublas_workspace_config"], ":16:8");
}

/// `vaelab-torch` runs only for a `vaelab` of its own build: handed another build's id
/// (a launcher rebuilt alone, beside an old `vaelab-torch`), it refuses with what to do;
/// through its own launcher it runs.
#[test]
fn the_training_binary_refuses_a_launcher_of_another_build() {
    let ws = Workspace::new();
    let mut stale = assert_cmd::Command::cargo_bin("vaelab-torch").unwrap();
    stale
        .args(["info"])
        .env("VAELAB_LAUNCHER_BUILD", "0123456789abcdef")
        .assert()
        .code(2)
        .stderr(contains(
            "is from another build than the `vaelab` that started it",
        ))
        .stderr(contains("build both again"));
    ws.vaelab(&["info"]).assert().success();
}

/// `--tf32` sets libtorch's switch and every result reports the state read back.
#[test]
fn bench_reports_the_tf32_state_it_ran_with() {
    let ws = Workspace::new();
    for (flag, state) in [("off", false), ("on", true)] {
        let output = ws
            .tiny_bench(2)
            .args(["--warmup", "0", "--steps", "1", "--json", "--tf32", flag])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(result["tf32_convolutions"], state, "{result}");
        assert_eq!(result["tf32_matmuls"], state, "{result}");
    }
    ws.tiny_bench(2)
        .args(["--tf32", "maybe"])
        .assert()
        .code(2)
        .stderr(contains("possible values: on, off"));
}

#[test]
fn bench_prints_a_median_throughput() {
    let ws = Workspace::new();
    ws.tiny_bench(4)
        .args(["--warmup", "1", "--steps", "3"])
        .assert()
        .success()
        .stdout(contains("plain 32x32 batch 4 fp32 on cpu"))
        .stdout(contains("img/s"))
        .stdout(contains("per step:").not());
    ws.tiny_bench(4)
        .args(["--warmup", "1", "--steps", "3", "--phases"])
        .assert()
        .success()
        .stdout(contains("per step: forward and loss "))
        .stdout(contains(" ms, backward "))
        .stdout(contains(" ms, Adam update "));
}

#[test]
fn bench_reports_precision_layout_and_a_full_epoch_as_json() {
    let ws = Workspace::new();
    let output = ws
        .tiny_bench(4)
        .args([
            "--warmup",
            "1",
            "--steps",
            "2",
            "--precision",
            "bf16",
            "--channels-last",
            "--epoch-images",
            "10",
            "--phases",
            "--json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let result: serde_json::Value = serde_json::from_slice(&output).expect("bench --json");
    assert_eq!(result["precision"], "bf16");
    assert_eq!(result["channels_last"], true);
    assert_eq!(result["device"], "cpu");
    assert_eq!(result["cudnn_benchmark"], false);
    assert_eq!(result["epoch"]["images"], 10);
    for phase in ["forward", "backward", "update"] {
        let seconds = result["phases"][phase].as_f64().unwrap_or(0.0);
        assert!(seconds > 0.0, "{phase}: {result}");
    }
    let seconds = result["epoch"]["seconds"].as_f64().unwrap();
    let rate = result["epoch"]["images_per_second"].as_f64().unwrap();
    assert!(
        seconds > 0.0 && (rate * seconds - 10.0).abs() < 1e-6,
        "{result}"
    );
}

#[test]
fn the_binary_links_libtorch_cuda_and_runs_without_ld_library_path() {
    let ldd = |name: &str| {
        let output = std::process::Command::new("ldd")
            .arg(assert_cmd::cargo::cargo_bin(name))
            .env_remove("LD_LIBRARY_PATH")
            .output()
            .expect("ldd");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // `vaelab` loads no libtorch (so `plan`, `status` and `--help` start at once); the
    // training binary it hands `run`, `bench` and `info` to loads it, CUDA included.
    let thin = ldd("vaelab");
    assert!(
        !thin.contains("libtorch") && !thin.contains("libc10"),
        "{thin}"
    );
    let listing = ldd("vaelab-torch");
    let cuda = listing
        .lines()
        .find(|l| l.contains("libtorch_cuda.so"))
        .unwrap_or_else(|| panic!("no libtorch_cuda:\n{listing}"));
    assert!(!cuda.contains("not found"), "{cuda}");
    assert!(!listing.contains("not found"), "{listing}");
    let ws = Workspace::new();
    ws.vaelab(&["info"])
        .env_remove("LD_LIBRARY_PATH")
        .assert()
        .success()
        .stdout(contains("libtorch         2.11.0"));
}

#[test]
fn bf16_is_its_own_run_and_learns_what_fp32_learns() {
    let ws = Workspace::new();
    let spec = ws.write(
        "precision.yaml",
        &tiny_spec("precision", 2).replace(
            "name: precision\n",
            "name: precision\ngrid:\n  train.precision: [fp32, bf16]\n",
        ),
    );
    let assert = ws
        .vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert_eq!(
        stderr.contains("bf16 on a CPU without avx512_bf16 or amx_bf16"),
        !vaelab::runtime::device::cpu_has_bf16(),
        "{stderr}"
    );
    let mut final_val = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(ws.runs()).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("config.yaml").is_file() {
            continue;
        }
        let config = std::fs::read_to_string(dir.join("config.yaml")).unwrap();
        let precision = if config.contains("precision: bf16") {
            "bf16"
        } else {
            assert!(!config.contains("precision"), "fp32 is left out: {config}");
            "fp32"
        };
        assert_eq!(read_state(&dir)["status"], "done");
        assert!(dir.join("evaluation.parquet").is_file());
        let weights =
            tch::Tensor::read_safetensors(dir.join("checkpoints/epoch-0002/model.safetensors"))
                .expect("final weights");
        assert!(
            weights.iter().all(|(_, w)| w.kind() == tch::Kind::Float),
            "master weights are fp32"
        );
        let rows = read_metrics_at(&dir);
        assert_eq!(rows.len(), 2);
        final_val.insert(precision, rows[1].val_loss);
    }
    let (fp32, bf16) = (final_val["fp32"], final_val["bf16"]);
    assert!(
        ((bf16 - fp32) / fp32).abs() < 0.02,
        "final validation loss: bf16 {bf16} vs fp32 {fp32}"
    );
    // Close, but not the same numbers: bf16 really computed in bf16 (a run that ignored
    // the setting would match fp32 bit for bit).
    assert_ne!(
        bf16.to_bits(),
        fp32.to_bits(),
        "bf16 must not train as fp32"
    );
    assert!(
        ((bf16 - fp32) / fp32).abs() > 1e-7,
        "bf16 {bf16} vs fp32 {fp32}"
    );
}

#[test]
fn an_unknown_precision_names_the_field_and_the_choices() {
    let ws = Workspace::new();
    let spec = ws.write("bad.yaml", "name: bad\ntrain:\n  precision: fp16\n");
    ws.vaelab(&["run", spec.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(contains("bad.yaml:3"))
        .stderr(contains("fp16"))
        .stderr(contains("`fp32` or `bf16`"));
}

/// The trainer records the model's parameter count in `state.json` when it builds the
/// model; it equals the number of values in the saved weights.
#[test]
fn the_parameter_count_is_recorded_when_the_model_is_built() {
    let ws = Workspace::new();
    let spec = ws.write("p.yaml", &tiny_spec("p", 1));
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success();
    let run = ws.single_run_dir();
    let weights =
        tch::Tensor::read_safetensors(run.join("checkpoints/epoch-0001/model.safetensors"))
            .unwrap();
    let stored: i64 = weights.iter().map(|(_, t)| t.numel() as i64).sum();
    assert!(stored > 1000, "{stored}");
    assert_eq!(read_state(&run)["parameters"], stored);
}

/// After `eval:` changes, a trained run is "trained, not evaluated" for `plan`, still work
/// for `vaelab slurm` (which used to call it done), and `run` evaluates it without training.
#[test]
fn a_changed_evaluation_leaves_work_that_plan_slurm_and_run_all_see() {
    let ws = Workspace::new();
    let spec = ws.write("e.yaml", &tiny_spec("e", 1));
    let spec = spec.to_str().unwrap();
    ws.vaelab(&["run", spec, "--device", "cpu"])
        .assert()
        .success();
    let id = ws
        .single_run_dir()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    ws.vaelab(&["slurm", spec])
        .assert()
        .success()
        .stderr(contains("every selected run is done; nothing to submit"));

    let changed = format!("{}eval:\n  iwae_samples: 3\n", tiny_spec("e", 1));
    std::fs::write(spec, changed).unwrap();
    ws.vaelab(&["plan", spec])
        .assert()
        .success()
        .stdout(contains("trained, not evaluated"))
        .stdout(contains("1 trained but not evaluated"));
    let script = ws.vaelab(&["slurm", spec]).assert().success();
    let script = String::from_utf8_lossy(&script.get_output().stdout)
        .trim()
        .to_string();
    let manifest = std::path::Path::new(&script).with_file_name("manifest.json");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let tasks = manifest["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1);
    assert!(tasks[0]["id"].as_str().unwrap().starts_with(&id));

    ws.vaelab(&["run", spec, "--device", "cpu"])
        .assert()
        .success()
        .stderr(contains("already trained (1 epochs); evaluation made"));
    ws.vaelab(&["slurm", spec])
        .assert()
        .success()
        .stderr(contains("nothing to submit"));
}

#[test]
fn a_cuda_device_that_is_not_there_is_a_usage_error() {
    let ws = Workspace::new();
    let spec = ws.write("c.yaml", &tiny_spec("c", 1));
    let visible = tch::Cuda::device_count();
    let missing = format!("cuda:{}", visible + 7);
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", &missing])
        .assert()
        .code(2)
        .stderr(contains(format!("--device {missing}:")))
        .stderr(contains("see `vaelab info`"));
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "gpu"])
        .assert()
        .code(2)
        .stderr(contains("expected auto, cpu, cuda or cuda:N"));
    assert!(!ws.runs().exists() || std::fs::read_dir(ws.runs()).unwrap().next().is_none());
}

/// A checkpoint records the hardware that wrote it (device kind, CPU model and threads, or
/// GPU model); resuming on other hardware warns once and the run's state keeps the change.
#[test]
fn resuming_on_other_hardware_warns_and_is_recorded() {
    let ws = Workspace::new();
    let spec = ws.write("d.yaml", &tiny_spec("d", 1));
    let run_with = |threads: &str| {
        ws.vaelab(&[
            "run",
            spec.to_str().unwrap(),
            "--device",
            "cpu",
            "--threads",
            threads,
        ])
        .assert()
        .success()
    };
    run_with("2");
    let run = ws.single_run_dir();
    let progress_path = run.join("checkpoints/epoch-0001/progress.json");
    let mut progress: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&progress_path).unwrap()).unwrap();
    assert_eq!(progress["device_kind"], "cpu");
    let hardware = progress["hardware"].as_str().unwrap().to_string();
    assert!(
        hardware.starts_with("cpu (") && hardware.ends_with(", 2 threads)"),
        "{hardware}"
    );
    assert!(read_state(&run).get("device_changes").is_none());

    // As if a GPU had trained the first epoch.
    progress["device_kind"] = "cuda".into();
    progress["hardware"] = "cuda (NVIDIA H200, 143771 MiB)".into();
    std::fs::write(&progress_path, serde_json::to_vec(&progress).unwrap()).unwrap();
    std::fs::write(&spec, tiny_spec("d", 2)).unwrap();
    let change = format!("epoch 1 step 0: cuda (NVIDIA H200, 143771 MiB) → {hardware}");
    run_with("2").stderr(contains(format!("resuming on other hardware ({change})")));
    // Fewer threads: another summation order in oneDNN's kernels, so it is said too.
    std::fs::write(&spec, tiny_spec("d", 3)).unwrap();
    let fewer = format!(
        "epoch 2 step 0: {hardware} → {}",
        hardware.replace(", 2 threads)", ", 1 threads)")
    );
    run_with("1").stderr(contains(format!("resuming on other hardware ({fewer})")));
    assert_eq!(
        read_state(&run)["device_changes"],
        serde_json::json!([change, fewer])
    );
    let resumed: serde_json::Value = serde_json::from_slice(
        &std::fs::read(run.join("checkpoints/epoch-0002/progress.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(resumed["device_kind"], "cpu");
}

/// `train.deterministic` and `train.tf32` are placement: the run's id does not change, and
/// `config.yaml` keeps what the last training used.
#[test]
fn cuda_numerics_switches_change_no_run_id_and_are_recorded() {
    let ws = Workspace::new();
    let plain = ws.write("n.yaml", &tiny_spec("n", 1));
    let exact = ws.write(
        "x.yaml",
        &tiny_spec("n", 1).replace(
            "  lr: 0.002\n",
            "  lr: 0.002\n  deterministic: true\n  tf32: false\n",
        ),
    );
    let id = |spec: &std::path::Path| {
        let out = ws
            .vaelab(&["plan", spec.to_str().unwrap(), "--json"])
            .assert()
            .success();
        let view: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        view["runs"][0]["id"].as_str().unwrap().to_string()
    };
    assert_eq!(id(&plain), id(&exact));
    ws.vaelab(&["run", exact.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success();
    let config = std::fs::read_to_string(ws.single_run_dir().join("config.yaml")).unwrap();
    assert!(
        config.contains("deterministic: true") && config.contains("tf32: false"),
        "{config}"
    );
    ws.vaelab(&["run", plain.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success()
        .stderr(contains("nothing to do"));
}

/// Every step of the GPU check in the order it runs them at the dry run's sizes:
/// correctness, then the headline figures, then the rest.
const GPU_CHECK_STEPS: [&str; 22] = [
    "info",
    "init-weights",
    "first-step",
    "exact-resume",
    "bench-bf16-8-nhwc",
    "bench-fp32-8-nhwc",
    "pytorch-bf16-8-nhwc-tensors",
    "epoch-72",
    "train-epoch-nchw",
    "train-epoch-channels_last",
    "pytorch-fp32-8-nhwc-tensors",
    "pytorch-bf16-8-nhwc-dataloader",
    "bench-tf32-8-nhwc",
    "bench-bf16-8-nchw",
    "bench-fp32-8-nchw",
    "pytorch-bf16-8-nchw-tensors",
    "bench-bf16-16-nhwc",
    "pytorch-bf16-16-nhwc-tensors",
    "phases-vaelab",
    "phases-pytorch",
    "jobs-1",
    "jobs-2",
];

/// The checks of a GPU check's `summary.json`, in order.
fn gpu_check_rows(out: &std::path::Path) -> Vec<serde_json::Value> {
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    summary["checks"].as_array().unwrap().clone()
}

/// `scripts/gpu-check.sh --dry-run` runs every CPU-safe part of the GPU check on the CPU and
/// writes its files as it goes; every check that runs passes (the deterministic
/// kill-and-resume for real), and the three that need a GPU (CUDA seen by `vaelab info`,
/// initial weights and first-step loss against the CPU's) are rows "not run: no GPU",
/// counted neither as passed nor as failed. Every throughput row says the TF32 state
/// libtorch reported, off for the fp32 and bf16 rows and on for the TF32 one.
#[test]
fn the_gpu_check_script_runs_its_cpu_safe_parts() {
    let ws = Workspace::new();
    let out = ws.path().join("gpu-check");
    let run = gpu_check_dry_run(&out)
        .env("GPU_CHECK_DEADLINE", "1200")
        .output()
        .expect("bash runs the script");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("\n19 passed, 0 failed, 3 skipped\n"),
        "{stdout}"
    );
    // What the binaries need of a machine, before the first step.
    assert!(
        stdout.contains("vaelab-torch: needs GLIBC_2.") && stdout.contains("GLIBCXX_3.4."),
        "{stdout}"
    );
    for gpu_only in ["info", "init-weights", "first-step"] {
        assert!(
            stdout.contains(&format!("| {gpu_only} | not run |")),
            "{gpu_only}: {stdout}"
        );
    }
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["log.txt", "rows.jsonl", "summary.json", "summary.md"]
    );
    let rows = gpu_check_rows(&out);
    let checks: Vec<&str> = rows.iter().map(|c| c["check"].as_str().unwrap()).collect();
    assert_eq!(checks, GPU_CHECK_STEPS);
    let row = |name: &str| rows.iter().find(|c| c["check"] == name).unwrap();
    for (name, tf32) in [
        ("bench-fp32-8-nhwc", "tf32 off"),
        ("bench-bf16-8-nchw", "tf32 off"),
        ("bench-tf32-8-nhwc", "tf32 on"),
        ("pytorch-fp32-8-nhwc-tensors", "tf32 off"),
        ("pytorch-bf16-8-nhwc-tensors", "tf32 off"),
    ] {
        let note = row(name)["note"].as_str().unwrap();
        assert!(note.starts_with(tf32), "{name}: {note}");
        let rate: f64 = row(name)["value"].as_str().unwrap().parse().unwrap();
        assert!(rate.is_finite() && rate > 0.0, "{name}: {rate}");
    }
    // 72 images in batches of 16: the last batch of 8 is warmed before the timing.
    let epoch_note = row("epoch-72")["note"].as_str().unwrap();
    let warmed: f64 = epoch_note
        .split("last batch's shape warmed first (")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(" s)"))
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or_else(|| panic!("no warm-up seconds in {epoch_note:?}"));
    assert!(warmed.is_finite() && warmed > 0.0, "{epoch_note}");
    let milliseconds: Vec<f64> = row("phases-vaelab")["value"]
        .as_str()
        .unwrap()
        .split('/')
        .map(|ms| ms.parse().unwrap())
        .collect();
    assert!(
        milliseconds.len() == 3 && milliseconds.iter().all(|&ms| ms > 0.0),
        "{milliseconds:?}"
    );
}

/// With a deadline too short for the whole check, the steps not started by then are rows
/// "not run: deadline" and the summary still lists every step in order; nothing that ran
/// failed, and the script ends within the deadline and one step's kill grace.
#[test]
fn a_gpu_check_past_its_deadline_lists_every_step_and_ends() {
    let ws = Workspace::new();
    let out = ws.path().join("gpu-check");
    let started = std::time::Instant::now();
    let run = gpu_check_dry_run(&out)
        .env("GPU_CHECK_DEADLINE", "20")
        .output()
        .expect("bash runs the script");
    let seconds = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}");
    let rows = gpu_check_rows(&out);
    let checks: Vec<&str> = rows.iter().map(|c| c["check"].as_str().unwrap()).collect();
    assert_eq!(checks, GPU_CHECK_STEPS);
    let past_deadline: Vec<&str> = rows
        .iter()
        .filter(|c| c["note"].as_str().unwrap().starts_with("not run: deadline"))
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert!(!past_deadline.is_empty(), "{stdout}");
    assert_eq!(
        past_deadline.last(),
        Some(&"jobs-2"),
        "every later step is not run: {past_deadline:?}"
    );
    assert_eq!(rows[0]["note"], "not run: no GPU", "the first step ran");
    assert!(rows.iter().all(|c| c["ok"] != false), "{stdout}");
    // The deadline, a step's 10 s kill grace, and the summary's rewrite per row.
    assert!(seconds < 20.0 + 10.0 + 30.0, "took {seconds:.0} s");
    assert!(stdout.contains(" skipped\n"), "{stdout}");
}

/// `bash scripts/gpu-check.sh <vaelab> --dry-run` writing into `out`.
fn gpu_check_dry_run(out: &std::path::Path) -> std::process::Command {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gpu-check.sh");
    let mut command = std::process::Command::new("bash");
    command
        .arg(&script)
        .arg(assert_cmd::cargo::cargo_bin("vaelab"))
        .arg("--dry-run")
        .env("OUT", out)
        // Its scratch stores go in the test's workspace, so a killed check leaves none.
        .env("TMPDIR", out.parent().unwrap());
    command
}

/// The GPU check killed in the middle of a step (SIGKILL to its whole process group, as a
/// call's time limit would) leaves every row it had finished in its output folder, and
/// the summary lists exactly those.
#[test]
fn a_gpu_check_killed_mid_step_keeps_every_finished_row() {
    use std::os::unix::process::CommandExt;
    let ws = Workspace::new();
    let out = ws.path().join("gpu-check");
    let mut child = gpu_check_dry_run(&out)
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let rows_path = out.join("rows.jsonl");
    let rows = || {
        std::fs::read_to_string(&rows_path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect::<Vec<String>>()
    };
    let started = std::time::Instant::now();
    let summarized = || {
        std::fs::read(out.join("summary.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .map_or(0, |v| v["checks"].as_array().map_or(0, Vec::len))
    };
    // Four rows summarized (info, init-weights, first-step, exact-resume); then a benchmark
    // is running.
    while summarized() < 4 {
        assert!(started.elapsed().as_secs() < 120, "no fourth row");
        assert!(child.try_wait().unwrap().is_none(), "the check ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    child.wait().unwrap();
    let kept = rows();
    assert!(
        kept.len() >= 4 && kept.len() < GPU_CHECK_STEPS.len(),
        "{kept:?}"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let listed: Vec<serde_json::Value> = summary["checks"].as_array().unwrap().clone();
    let parsed: Vec<serde_json::Value> = kept
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The summary is rewritten after each row: whole, with every row, or (killed while
    // rewriting it) every row but the last, which rows.jsonl holds.
    assert!(
        listed == parsed || listed[..] == parsed[..parsed.len() - 1],
        "{listed:?}\n{parsed:?}"
    );
    assert_eq!(parsed[3]["check"], "exact-resume");
    assert_eq!(parsed[3]["ok"], true, "{}", parsed[3]);
    let table = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(table.contains("| exact-resume | ok |"), "{table}");
}

#[test]
fn select_best_evaluates_the_epoch_with_the_lowest_validation_loss_without_retraining() {
    let ws = Workspace::new();
    // lr 0.03 for 6 epochs from He's initialisation: the validation loss is lowest at
    // epoch 5, not at the last.
    let text = tiny_spec("select", 6)
        .replace("lr: 0.002", "lr: 0.03")
        .replace("  channels: [8, 16]\n", "  channels: [8, 16]\n  init: he\n");
    let spec = ws.write("s.yaml", &text);
    let args = [
        "run",
        spec.to_str().unwrap(),
        "--device",
        "cpu",
        "--threads",
        "2",
    ];
    ws.vaelab(&args).assert().success();
    let store = vaelab::store::RunStore::new(ws.runs());
    let run = store.list().unwrap().pop().unwrap();
    let last = run.read_evaluation().unwrap().unwrap();
    assert_eq!(last.epoch, 6);
    let metrics = run.read_metrics().unwrap();
    let lowest = metrics
        .iter()
        .min_by(|a, b| a.val_loss.total_cmp(&b.val_loss))
        .unwrap()
        .epoch;
    assert_ne!(lowest, 6, "the spec must make best and last differ");

    // Measurement, not identity: the same run, evaluated again on the best weights only.
    let spec = ws.write(
        "s.yaml",
        &text.replace("lr: 0.03", "lr: 0.03\n  select: best"),
    );
    ws.vaelab(&["plan", spec.to_str().unwrap()])
        .assert()
        .success()
        .stdout(contains("trained, not evaluated"));
    ws.vaelab(&args)
        .assert()
        .success()
        .stderr(contains(format!(
            "evaluating epoch {lowest}, the lowest validation loss"
        )))
        .stderr(contains("epoch 1/6").not());
    let best = run.read_evaluation().unwrap().unwrap();
    assert_eq!(best.epoch, lowest);
    assert_ne!(best.psnr, last.psnr, "measured on other weights");
    assert_eq!(
        run.read_metrics().unwrap(),
        metrics,
        "nothing was retrained"
    );
    ws.vaelab(&args)
        .assert()
        .success()
        .stderr(contains("already done (6 epochs), nothing to do"));
}

/// While one process trains a run: `plan` says "running on host:pid", `status` shows its
/// last losses and an ETA (text and JSON), the report lists it as running k/N, and a second
/// `vaelab run` skips it naming the holder. `--quiet`, `$VAELAB_RUNS_DIR` and
/// `$VAELAB_REPORT_DIR` are honoured along the way.
#[test]
fn a_run_in_progress_is_seen_by_plan_status_report_and_a_second_run() {
    let ws = Workspace::new();
    let spec = ws.write("long.yaml", &tiny_spec("long", 400));
    let spec = spec.to_str().unwrap();
    // Held at the start of epoch 3 (two epochs done) until the checks are over.
    let (held, release) = (ws.path().join("held"), ws.path().join("release"));
    let hold = crate::common::hold_at_epoch(3, &held, &release);
    let hold: Vec<(&str, &str)> = hold.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut trainer = ws.spawn_with(
        &["run", spec, "--device", "cpu", "--threads", "1"],
        std::process::Stdio::null(),
        &hold,
    );
    let pid = trainer.id();
    crate::common::wait_for_file(&held, std::time::Duration::from_secs(120));
    let run = ws.single_run_dir();
    let host = vaelab::store::host_name();
    // The environment variables stand in for --runs-dir and --report-dir.
    let env_only = |args: &[&str]| {
        let mut cmd = assert_cmd::Command::cargo_bin("vaelab").unwrap();
        cmd.current_dir(ws.path())
            .env("VAELAB_RUNS_DIR", ws.runs())
            .env("VAELAB_REPORT_DIR", ws.path().join("elsewhere"))
            .args(args);
        cmd
    };
    env_only(&["plan", spec])
        .assert()
        .success()
        .stdout(contains(format!("running on {host}:{pid}")));
    let status = env_only(&["status", "--json"]).assert().success();
    let rows: serde_json::Value = serde_json::from_slice(&status.get_output().stdout).unwrap();
    let row = &rows[0];
    assert_eq!(row["standing"]["status"], "running");
    assert_eq!(row["last"]["epoch"], 2, "{row}");
    assert!(row["last"]["val_loss"].as_f64().unwrap().is_finite());
    assert!(row["eta_seconds"].as_f64().unwrap() > 0.0, "{row}");
    env_only(&["status"])
        .assert()
        .success()
        .stdout(contains(format!("running on {host}:{pid}")));
    env_only(&["report", spec]).assert().success();
    let report = std::fs::read_to_string(ws.path().join("elsewhere/long/report.md")).unwrap();
    assert!(report.contains("seed=3 (running ("), "{report}");
    assert!(
        report.contains("seed=3 (running (2/400))"),
        "running k/N: {report}"
    );
    let second = env_only(&["run", spec, "--device", "cpu"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&second.get_output().stderr).into_owned();
    assert!(
        stderr.contains(&format!("being trained by pid {pid} on {host}; skipped")),
        "{stderr}"
    );
    // --quiet: only warnings and errors, and skipping a held run is neither.
    env_only(&["--quiet", "run", spec, "--device", "cpu"])
        .assert()
        .success()
        .stderr("");
    trainer.kill().unwrap();
    trainer.wait().unwrap();
    assert!(run.join("metrics.parquet").is_file());
}

#[test]
fn bench_times_the_dashboard_page_cold_and_warm() {
    let ws = Workspace::new();
    let out = ws
        .vaelab(&[
            "bench",
            "--serve-runs",
            "6",
            "--report-epochs",
            "3",
            "--json",
        ])
        .assert()
        .success();
    let result: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(result["runs"], 6);
    assert!(result["warm_seconds"].as_f64().unwrap() > 0.0);
    assert!(result["cold_seconds"].as_f64().unwrap() > 0.0);
}

/// `vaelab slurm` without `--submit` writes the script and manifest and prints the
/// script's path; editing the spec afterwards changes neither (a later `vaelab slurm`
/// writes a job of its own beside it).
#[test]
fn a_written_slurm_job_stays_fixed_when_the_spec_is_edited() {
    let ws = Workspace::new();
    let spec = ws.write("s.yaml", &crate::common::tiny_sweep("fixed", 1));
    let spec = spec.to_str().unwrap();
    let out = ws.vaelab(&["slurm", spec]).assert().success();
    let script = std::path::PathBuf::from(String::from_utf8_lossy(&out.get_output().stdout).trim());
    let manifest = script.with_file_name("manifest.json");
    let (script_bytes, manifest_bytes) = (
        std::fs::read(&script).unwrap(),
        std::fs::read(&manifest).unwrap(),
    );
    let tasks: serde_json::Value = serde_json::from_slice(&manifest_bytes).unwrap();
    let ids: Vec<&str> = tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);
    let script_text = String::from_utf8_lossy(&script_bytes);
    assert!(
        ids.iter().all(|id| script_text.contains(id)),
        "{script_text}"
    );

    std::fs::write(
        spec,
        crate::common::tiny_sweep("fixed", 1).replace("seeds: [0, 1]", "seeds: [7]"),
    )
    .unwrap();
    let again = ws.vaelab(&["slurm", spec]).assert().success();
    let other = String::from_utf8_lossy(&again.get_output().stdout)
        .trim()
        .to_string();
    assert_ne!(
        std::path::PathBuf::from(other),
        script,
        "a new job of its own"
    );
    assert_eq!(std::fs::read(&script).unwrap(), script_bytes);
    assert_eq!(std::fs::read(&manifest).unwrap(), manifest_bytes);
    // The first job's task, as its script starts it, refuses the edited spec instead of
    // training other settings, and says what to do.
    assert!(script_text.contains("--manifest "), "{script_text}");
    let task = |spec_text: &str| {
        std::fs::write(spec, spec_text).unwrap();
        let manifest = manifest.to_str().unwrap();
        ws.vaelab(&[
            "run",
            spec,
            "--only",
            ids[0],
            "--manifest",
            manifest,
            "--device",
            "cpu",
        ])
        .assert()
    };
    task(&crate::common::tiny_sweep("fixed", 1).replace("seeds: [0, 1]", "seeds: [7]"))
        .code(2)
        .stderr(predicates::str::contains(
            "changed since the Slurm job was submitted",
        ))
        .stderr(predicates::str::contains("submit the sweep again"));
    assert!(!ws.runs().join(&ids[0][..16]).exists(), "nothing trained");
    task(&crate::common::tiny_sweep("fixed", 1)).success();
    assert!(ws.runs().join(&ids[0][..16]).join("config.yaml").is_file());
}
