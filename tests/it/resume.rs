//! Bit-for-bit reproducibility: two uninterrupted runs agree, and a run killed with SIGKILL
//! mid-epoch and resumed ends with the same weights, optimizer state and metrics.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{Workspace, read_state};
use tch::Tensor;

fn spec(epochs: u32) -> String {
    format!(
        "name: replay\nseed: 11\ndata:\n  image_size: 32\n  train_images: 384\n  val_images: 32\n\
         model:\n  residual: true\n  latent_dim: 16\n  channels: [8, 16, 32]\ntrain:\n  epochs: {epochs}\n  batch_size: 32\n"
    )
}

const ARGS: [&str; 4] = ["--device", "cpu", "--threads", "2"];

fn train_to_end(ws: &Workspace) {
    let spec = ws.write("replay.yaml", &spec(3));
    let mut args = vec!["run", spec.to_str().unwrap()];
    args.extend(ARGS);
    ws.vaelab(&args).assert().success();
}

/// `vaelab run` on `spec` in `ws` with a crash point (and signal) in its environment.
fn run_crashing_at(ws: &Workspace, spec: &str, point: &str, signal: &str) -> std::process::Output {
    let spec_path = ws.write("replay.yaml", spec);
    let mut args = vec!["run", spec_path.to_str().unwrap()];
    args.extend(ARGS);
    ws.vaelab(&args)
        .env(vaelab::store::crash::CRASH_AT_ENV, point)
        .env(vaelab::store::crash::CRASH_SIGNAL_ENV, signal)
        .output()
        .expect("run vaelab")
}

/// The names in a run's `checkpoints/` directory, sorted (`.partial-*` leftovers too).
fn checkpoint_names(run: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `vaelab run` again on the spec [`run_crashing_at`] wrote, to the end.
fn rerun(ws: &Workspace) -> assert_cmd::assert::Assert {
    let spec_path = ws.path().join("replay.yaml");
    let mut args = vec!["run", spec_path.to_str().unwrap()];
    args.extend(ARGS);
    ws.vaelab(&args).assert().success()
}

fn tensors(path: &Path) -> BTreeMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .expect("safetensors")
        .into_iter()
        .collect()
}

fn assert_same_tensors(a: &Path, b: &Path) {
    let (ta, tb) = (tensors(a), tensors(b));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (name, tensor) in &ta {
        assert!(
            tensor.equal(&tb[name]),
            "{name} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

fn learned_metrics(run: &Path) -> Vec<Vec<f64>> {
    vaelab::store::read_metrics_file(&run.join("metrics.parquet"))
        .expect("metrics")
        .iter()
        .map(|m| m.learned())
        .collect()
}

fn assert_same_run(a: &Path, b: &Path) {
    assert_same_run_to(a, b, 3);
}

/// Same final weights, optimizer state and learned metrics after `epochs` epochs.
fn assert_same_run_to(a: &Path, b: &Path, epochs: u32) {
    let last = format!("checkpoints/epoch-{epochs:04}");
    for file in ["model.safetensors", "optimizer.safetensors"] {
        assert_same_tensors(&a.join(&last).join(file), &b.join(&last).join(file));
    }
    let (ma, mb) = (learned_metrics(a), learned_metrics(b));
    assert_eq!(ma.len(), epochs as usize);
    // Bit for bit: compare the f64 bit patterns, not approximately.
    let bits = |m: &Vec<Vec<f64>>| {
        m.iter()
            .flat_map(|r| r.iter().map(|v| v.to_bits()))
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&ma), bits(&mb));
}

#[test]
fn a_run_killed_mid_epoch_resumes_bit_for_bit() {
    let reference = Workspace::new();
    train_to_end(&reference);
    let twin = Workspace::new();
    train_to_end(&twin);
    // Determinism first: without it, the resume comparison would prove nothing.
    assert_same_run(&reference.single_run_dir(), &twin.single_run_dir());

    // SIGKILL at step 5 of epoch 2: mid-epoch, after one checkpoint, named exactly.
    use std::os::unix::process::ExitStatusExt;
    let killed = Workspace::new();
    let output = run_crashing_at(&killed, &spec(3), "step:2:5", "KILL");
    assert_eq!(output.status.signal(), Some(libc::SIGKILL));
    let spec_path = killed.path().join("replay.yaml");
    let run_dir = reference.single_run_dir();
    let run_name = run_dir.file_name().unwrap();
    let killed_run = killed.runs().join(run_name);
    let state = read_state(&killed_run);
    assert_eq!(
        state["status"], "running",
        "killed, so never told otherwise"
    );
    assert_eq!(state["epochs_done"], 1);

    let mut args = vec!["run", spec_path.to_str().unwrap()];
    args.extend(ARGS);
    killed
        .vaelab(&args)
        .assert()
        .success()
        .stderr(predicates::str::contains("resuming from epoch 1 of 3"));
    assert_eq!(read_state(&killed_run)["status"], "done");
    assert_same_run(&run_dir, &killed_run);

    // Ctrl-C (and SIGTERM, SIGUSR1) at step 3 of epoch 1 (of 12): the process finishes its
    // step, writes a mid-epoch checkpoint, exits 130, and the resumed run ends bit-identical.
    for signal in ["INT", "TERM", "USR1"] {
        let interrupted = Workspace::new();
        let output = run_crashing_at(&interrupted, &spec(3), "step:1:3", signal);
        assert_eq!(output.status.code(), Some(130), "SIG{signal}");
        let interrupted_run = interrupted.runs().join(run_name);
        let state = read_state(&interrupted_run);
        assert_eq!(state["status"], "interrupted", "SIG{signal}");
        assert_eq!(state["epochs_done"], 0);
        let mid_epoch = checkpoint_names(&interrupted_run);
        assert!(
            mid_epoch.len() == 1 && mid_epoch[0].starts_with("epoch-0000-step-"),
            "SIG{signal} mid-epoch leaves one mid-epoch checkpoint, found {mid_epoch:?}"
        );
        rerun(&interrupted).stderr(predicates::str::contains("resuming from epoch 0 of 3 plus"));
        assert_same_run(&run_dir, &interrupted_run);
    }
}

/// SIGKILL from outside at moments drawn from a seeded generator (not at named points:
/// wherever the process happens to be, inside a step, a checkpoint write, validation or
/// the evaluation), several times in one run, then a rerun to the end: the final weights,
/// optimizer state, every metrics row and the evaluation equal an uninterrupted run's, bit
/// for bit.
#[test]
fn a_run_killed_at_random_moments_resumes_bit_for_bit() {
    let reference = Workspace::new();
    train_to_end(&reference);
    let killed = Workspace::new();
    let spec_path = killed.write("replay.yaml", &spec(3));
    let mut args = vec!["run", spec_path.to_str().unwrap()];
    args.extend(ARGS);
    // A small linear congruential generator: the same kill times on every run of the test.
    let mut state: u64 = 0x5eed;
    let mut next_delay_ms = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        250 + (state >> 33) % 1_000
    };
    let mut kills = 0;
    for _ in 0..6 {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("vaelab"))
            .current_dir(killed.path())
            .env("VAELAB_CACHE", killed.cache())
            .arg("--runs-dir")
            .arg(killed.runs())
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(next_delay_ms()));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
    }
    assert!(kills >= 3, "only {kills} kills landed before the run ended");
    rerun(&killed);
    let run_dir = reference.single_run_dir();
    let killed_run = killed.runs().join(run_dir.file_name().unwrap());
    assert_eq!(read_state(&killed_run)["status"], "done");
    assert_same_run(&run_dir, &killed_run);
    assert_eq!(evaluation_of(&run_dir), evaluation_of(&killed_run));
}

/// Every schedule and objective knob at once: 6 steps an epoch, 4 epochs, β warming up
/// over 3 of them, the learning rate warming up over 4 steps and then following a cosine;
/// batch norm (its running statistics must resume exactly), a learned decoder σ, and two
/// SkipInit blocks per decoder stage (their learned α too).
const SCHEDULED: &str = "name: scheduled\nseed: 5\ndata:\n  image_size: 16\n  train_images: 96\n  val_images: 16\n\
     model:\n  residual: true\n  latent_dim: 8\n  channels: [8, 16]\n  norm: batch\n  likelihood: learned\n\
     \x20 block: skipinit\n  blocks_in: decoder\n  blocks_per_stage: 2\ntrain:\n  epochs: 4\n  batch_size: 16\n  lr: 0.002\n\
     \x20 kl_warmup_epochs: 3\n  free_bits: 0.02\n  lr_schedule: cosine\n  lr_warmup_steps: 4\n  grad_clip_norm: 0.5\n";

#[test]
fn a_run_killed_mid_warmup_and_mid_schedule_resumes_bit_for_bit() {
    use std::os::unix::process::ExitStatusExt;

    let reference = Workspace::new();
    let spec = reference.write("s.yaml", SCHEDULED);
    let mut args = vec!["run", spec.to_str().unwrap()];
    args.extend(ARGS);
    reference.vaelab(&args).assert().success();
    let run_dir = reference.single_run_dir();

    // β and the learning rate logged per epoch are those of its last step (global step
    // g = 6e − 1): β = g/18 until step 18; lr = 0.001·(1 + cos(π(g − 4)/20)) after warm-up.
    let rows = vaelab::store::read_metrics_file(&run_dir.join("metrics.parquet")).unwrap();
    let logged: Vec<(f64, f64)> = rows.iter().map(|m| (m.beta, m.lr)).collect();
    let lr = |g: f64| 0.001 * (1.0 + (std::f64::consts::PI * (g - 4.0) / 20.0).cos());
    let expected = [
        (5.0 / 18.0, lr(5.0)),
        (11.0 / 18.0, lr(11.0)),
        (17.0 / 18.0, lr(17.0)),
        (1.0, lr(23.0)),
    ];
    assert_eq!(logged.len(), expected.len());
    for ((beta, lr), (want_beta, want_lr)) in logged.iter().zip(expected) {
        assert!((beta - want_beta).abs() < 1e-12, "β {beta} vs {want_beta}");
        assert!((lr - want_lr).abs() < 1e-12, "lr {lr} vs {want_lr}");
    }

    // Killed by SIGKILL inside epoch 2 (β and the cosine both mid-way), then resumed.
    let killed = Workspace::new();
    let output = run_crashing_at(&killed, SCHEDULED, "step:2:3", "KILL");
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGKILL),
        "the crash point fired"
    );
    let killed_run = killed.single_run_dir();
    assert_eq!(read_state(&killed_run)["epochs_done"], 1);
    rerun(&killed).stderr(predicates::str::contains("resuming from epoch 1 of 4"));
    assert_same_run_to(&run_dir, &killed_run, 4);
    let weights = tensors(&killed_run.join("checkpoints/epoch-0004/model.safetensors"));
    for name in [
        "encoder.down.1.running_mean",
        "decoder.up.3.block.4.running_var",
        "decoder.up.4.alpha",
        "decoder.log_sigma",
    ] {
        assert!(weights.contains_key(name), "{name} is checkpointed");
    }
}

/// `train.memory_format: channels_last` trains (NHWC activations and convolution weights)
/// and resumes bit for bit after a SIGKILL mid-epoch, with batch norm and the whole
/// evaluation in that layout too. It is placement: the run has the NCHW run's id.
#[test]
fn a_channels_last_run_killed_mid_epoch_resumes_bit_for_bit_under_the_same_id() {
    use std::os::unix::process::ExitStatusExt;
    let nhwc_spec = SCHEDULED.replace(
        "  epochs: 4\n",
        "  epochs: 3\n  memory_format: channels_last\n",
    );
    assert_ne!(nhwc_spec, SCHEDULED);
    let reference = Workspace::new();
    let spec = reference.write("s.yaml", &nhwc_spec);
    let mut args = vec!["run", spec.to_str().unwrap()];
    args.extend(ARGS);
    reference.vaelab(&args).assert().success();
    let run_dir = reference.single_run_dir();
    let config = std::fs::read_to_string(run_dir.join("config.yaml")).unwrap();
    assert!(config.contains("memory_format: channels_last"), "{config}");

    let nchw = Workspace::new();
    let nchw_spec = nchw.write(
        "s.yaml",
        &nhwc_spec.replace("  memory_format: channels_last\n", ""),
    );
    let plan = nchw
        .vaelab(&["plan", nchw_spec.to_str().unwrap()])
        .output()
        .unwrap();
    let short_id = &run_dir.file_name().unwrap().to_string_lossy()[..8];
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains(short_id),
        "the NCHW spec plans the same run"
    );

    let killed = Workspace::new();
    let output = run_crashing_at(&killed, &nhwc_spec, "step:2:3", "KILL");
    assert_eq!(output.status.signal(), Some(libc::SIGKILL));
    rerun(&killed).stderr(predicates::str::contains("resuming from epoch 1 of 3"));
    let killed_run = killed.single_run_dir();
    assert_same_run_to(&run_dir, &killed_run, 3);
    assert_eq!(evaluation_of(&run_dir), evaluation_of(&killed_run));
}

/// Kingma & Welling's fully connected VAE (`model.kind: mlp`) beside the convolutional
/// model in one spec: it trains, is evaluated (bits/dim, PSNR, SSIM), and a run of it
/// killed mid-epoch resumes bit for bit; its state records the parameters it was built with.
#[test]
fn an_mlp_arm_trains_evaluates_and_resumes_bit_for_bit() {
    use std::os::unix::process::ExitStatusExt;
    let spec = "name: mlp\nseed: 2\ndata:\n  image_size: 16\n  train_images: 96\n  val_images: 16\n\
                model:\n  kind: mlp\n  hidden: [48, 24]\n  latent_dim: 6\n  likelihood: learned\n\
                train:\n  epochs: 3\n  batch_size: 16\n  lr: 0.002\n";
    let reference = Workspace::new();
    let path = reference.write("s.yaml", spec);
    let mut args = vec!["run", path.to_str().unwrap()];
    args.extend(ARGS);
    reference.vaelab(&args).assert().success();
    let run_dir = reference.single_run_dir();
    let (evaluation, _) = evaluation_of(&run_dir);
    assert!(evaluation.elbo_bpd.is_finite() && evaluation.psnr.is_finite());
    // 768·48 + 48 + 48·24 + 24 + 2·(24·6 + 6) + 6·24 + 24 + 24·48 + 48 + 48·768 + 768 + 3
    let parameters = 768 * 48
        + 48
        + 48 * 24
        + 24
        + 2 * (24 * 6 + 6)
        + 6 * 24
        + 24
        + 24 * 48
        + 48
        + 48 * 768
        + 768
        + 3;
    assert_eq!(read_state(&run_dir)["parameters"], parameters);
    let weights = tensors(&run_dir.join("checkpoints/epoch-0003/model.safetensors"));
    for name in [
        "encoder.hidden.1.weight",
        "decoder.out.bias",
        "decoder.log_sigma",
    ] {
        assert!(weights.contains_key(name), "{name} in {:?}", weights.keys());
    }

    let killed = Workspace::new();
    let output = run_crashing_at(&killed, spec, "step:2:3", "KILL");
    assert_eq!(output.status.signal(), Some(libc::SIGKILL));
    rerun(&killed).stderr(predicates::str::contains("resuming from epoch 1 of 3"));
    let killed_run = killed.single_run_dir();
    assert_same_run_to(&run_dir, &killed_run, 3);
    assert_eq!(evaluation_of(&run_dir), evaluation_of(&killed_run));
}

/// The stored evaluation without its timestamp, and the latent statistics.
fn evaluation_of(run: &Path) -> (vaelab::store::Evaluation, vaelab::store::LatentStats) {
    let store = vaelab::store::RunStore::new(run.parent().unwrap());
    let dir = store
        .list()
        .unwrap()
        .into_iter()
        .find(|d| d.path() == run)
        .unwrap();
    let mut evaluation = dir.read_evaluation().unwrap().expect("evaluation.parquet");
    evaluation.evaluated_at = chrono::DateTime::UNIX_EPOCH;
    (
        evaluation,
        dir.read_latent_stats().unwrap().expect("latent.parquet"),
    )
}

/// SIGKILL between the metrics write and the checkpoint rename, inside a `.partial`
/// checkpoint write, and between the two evaluation files: each run resumes and ends
/// bit-identical to an uninterrupted one, its evaluation and latent statistics included,
/// with no `.partial` directory left behind.
#[test]
fn a_run_killed_at_each_commit_point_resumes_bit_for_bit() {
    use std::os::unix::process::ExitStatusExt;

    let reference = Workspace::new();
    train_to_end(&reference);
    let reference_run = reference.single_run_dir();
    let reference_evaluation = evaluation_of(&reference_run);
    for point in [
        "metrics-written:2",
        "checkpoint-partial:epoch-0002",
        "evaluation-partial",
    ] {
        let ws = Workspace::new();
        let output = run_crashing_at(&ws, &spec(3), point, "KILL");
        assert_eq!(output.status.signal(), Some(libc::SIGKILL), "{point} fired");
        let run = ws.single_run_dir();
        assert_eq!(read_state(&run)["status"], "running", "{point}");
        rerun(&ws);
        assert_eq!(read_state(&run)["status"], "done", "{point}");
        assert_same_run(&reference_run, &run);
        assert!(
            evaluation_of(&run) == reference_evaluation,
            "{point}: the evaluation differs"
        );
        let leftovers: Vec<String> = checkpoint_names(&run)
            .into_iter()
            .filter(|name| name.starts_with(".partial"))
            .collect();
        assert!(leftovers.is_empty(), "{point}: {leftovers:?} left behind");
    }
}

/// The disk fills while epoch 2's checkpoint is written: the run fails with an error
/// that says so first, leaves no partial checkpoint, and once space is back a second
/// `vaelab run` ends bit-identical to an uninterrupted run.
#[test]
fn a_full_disk_during_a_checkpoint_is_said_first_and_the_rerun_ends_bit_for_bit() {
    let reference = Workspace::new();
    train_to_end(&reference);
    let ws = Workspace::new();
    let failed = run_crashing_at(&ws, &spec(3), "checkpoint-partial:epoch-0002", "ENOSPC");
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr).into_owned();
    assert!(stderr.contains("failed: no space left on /"), "{stderr}");
    let run = ws.single_run_dir();
    let state = read_state(&run);
    assert_eq!(state["status"], "failed");
    let error = state["error"].as_str().unwrap();
    assert!(error.starts_with("no space left on "), "{error}");
    let checkpoints = checkpoint_names(&run);
    assert_eq!(
        checkpoints,
        vec!["epoch-0001"],
        "no partial checkpoint is left"
    );
    rerun(&ws);
    assert_same_run(&reference.single_run_dir(), &run);
}

/// A tmpfs mounted over a workspace's `runs/` for the length of a test, so the disk can
/// really fill; unmounted on drop.
struct SmallDisk {
    mount_point: std::path::PathBuf,
}

impl SmallDisk {
    /// Mounts `size` (tmpfs syntax, `16m`) over `ws.runs()`; `None` (with the skip said)
    /// where mounting is not allowed, which only root may do.
    fn mount(ws: &Workspace, size: &str) -> Option<Self> {
        let mount_point = ws.runs();
        std::fs::create_dir_all(&mount_point).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount_point)
            .status();
        if !status.is_ok_and(|s| s.success()) {
            crate::common::skip_or_fail("mounting a small tmpfs needs root");
            return None;
        }
        Some(Self { mount_point })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.mount_point)
            .status();
    }
}

/// A real full disk, filled by another writer in the middle of epoch 2: the run fails,
/// and although the disk is still full when it records why, `state.json` says failed
/// with the reason (the run held space back for that write); once space is freed, a
/// second `vaelab run` resumes and ends bit-identical to an uninterrupted run.
#[test]
fn a_run_on_a_disk_that_fills_records_why_it_stopped_and_resumes_bit_for_bit() {
    let reference = Workspace::new();
    train_to_end(&reference);
    let ws = Workspace::new();
    let Some(_disk) = SmallDisk::mount(&ws, "16m") else {
        return;
    };
    let filler = ws.runs().join("filler");
    // At step 0 of epoch 2 another writer takes every free byte (dd stops on ENOSPC);
    // the line then fails, so the run carries on into the full disk.
    let fill = format!(
        "dd if=/dev/zero of={} bs=64k >/dev/null 2>&1; false",
        filler.display()
    );
    let spec_path = ws.write("replay.yaml", &spec(3));
    let mut args = vec!["run", spec_path.to_str().unwrap()];
    args.extend(ARGS);
    let failed = ws
        .vaelab(&args)
        .env(vaelab::store::crash::CRASH_AT_ENV, "step:2:0")
        .env(vaelab::store::crash::CRASH_SIGNAL_ENV, "COMMAND")
        .env(vaelab::store::crash::CRASH_COMMAND_ENV, &fill)
        .output()
        .expect("run vaelab");
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr).into_owned();
    assert!(stderr.contains("failed: no space left on "), "{stderr}");
    let free = std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(ws.runs())
        .output()
        .unwrap();
    let free = String::from_utf8_lossy(&free.stdout).into_owned();
    // All that is free is what the run released: its 64 KiB reserve, less the state.
    assert!(
        free.lines()
            .nth(1)
            .is_some_and(|l| l.trim().parse::<u64>().unwrap() <= 64 * 1024),
        "the disk is still full when the state is read: {free}"
    );
    let run = ws
        .runs()
        .read_dir()
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .unwrap();
    let state = read_state(&run);
    assert_eq!(state["status"], "failed", "{state}");
    let error = state["error"].as_str().unwrap();
    assert!(error.starts_with("no space left on "), "{error}");
    assert!(
        !run.join("space-reserve").exists(),
        "the reserve was released"
    );
    ws.vaelab(&["status"])
        .assert()
        .success()
        .stdout(predicates::str::contains("no space left on"));

    std::fs::remove_file(&filler).unwrap();
    ws.vaelab(&args)
        .assert()
        .success()
        .stderr(predicates::str::contains("resuming from epoch 1 of 3"));
    assert_eq!(read_state(&run)["status"], "done");
    assert_same_run(&reference.single_run_dir(), &run);
}
