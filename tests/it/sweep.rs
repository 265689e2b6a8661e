//! Sweeps end to end: plan before and after, selection, failure isolation, orphans,
//! and several real processes sharing one sweep.

use std::collections::BTreeSet;
use std::process::{Child, Stdio};

use crate::common::{Workspace, read_state, tiny_spec, tiny_sweep, trained_labels};
use predicates::str::contains;

#[test]
fn plan_lists_every_run_then_run_only_and_max_runs_select() {
    let ws = Workspace::new();
    let spec = ws.write("sweep.yaml", &tiny_sweep("sweep", 1));
    let spec = spec.to_str().unwrap();
    ws.vaelab(&["plan", spec])
        .assert()
        .success()
        .stdout(contains("residual/seed=0"))
        .stdout(contains("plain/seed=1"))
        .stdout(contains(
            "4 runs: 4 new, 0 partial, 0 running, 0 done, 0 failed",
        ))
        .stdout(contains("left: 256 image-epochs"));
    assert!(!ws.runs().exists(), "plan must not write anything");

    let out = ws
        .vaelab(&["run", spec, "--device", "cpu", "--only", "plain/*"])
        .assert()
        .success();
    let trained: BTreeSet<String> = trained_labels(&out.get_output().stderr)
        .into_iter()
        .collect();
    assert_eq!(
        trained,
        ["plain/seed=0", "plain/seed=1"].map(String::from).into()
    );

    ws.vaelab(&["plan", spec])
        .assert()
        .success()
        .stdout(contains(
            "4 runs: 2 new, 0 partial, 0 running, 2 done, 0 failed",
        ))
        .stdout(contains("img/s these runs measured"));

    let out = ws
        .vaelab(&["run", spec, "--device", "cpu", "--max-runs", "1"])
        .assert()
        .success();
    assert_eq!(
        trained_labels(&out.get_output().stderr),
        vec!["residual/seed=0"]
    );

    let json = ws.vaelab(&["plan", spec, "--json"]).assert().success();
    let view: serde_json::Value = serde_json::from_slice(&json.get_output().stdout).unwrap();
    let statuses: Vec<&str> = view["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["standing"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["done", "new", "done", "done"]);

    ws.vaelab(&["run", spec, "--only", "nothing*"])
        .assert()
        .code(2)
        .stderr(contains("matches no run"));
}

/// A run whose images are all unreadable fails with why, is marked failed, and the sweep
/// goes on; a dataset that is not there at all is a spec error before anything trains,
/// since a run's id needs its data's fingerprint.
#[test]
fn a_failing_run_is_marked_and_the_sweep_goes_on() {
    let ws = Workspace::new();
    let broken = ws.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    for i in 0..4 {
        std::fs::write(broken.join(format!("{i}.png")), b"not a png").unwrap();
    }
    let text = format!(
        "name: iso\ndata:\n  image_size: 16\n  train_images: 32\n  val_images: 8\nmodel:\n  latent_dim: 4\n  channels: [4, 8]\n\
         train:\n  epochs: 1\n  batch_size: 16\nvariants:\n  - name: broken\n    data.source: folder\n    data.root: {}\n  - name: fine\n    data.source: synthetic\n",
        broken.display()
    );
    let spec = ws.write("iso.yaml", &text);
    let spec = spec.to_str().unwrap();
    let out = ws
        .vaelab(&["run", spec, "--device", "cpu"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("broken/seed=0 ["), "{stderr}");
    assert!(
        stderr.contains("no usable image in the training split"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 trained, 0 already done, 0 held by other processes, 1 failed"),
        "{stderr}"
    );
    assert_eq!(
        trained_labels(&out.get_output().stderr),
        vec!["fine/seed=0"]
    );
    ws.vaelab(&["plan", spec])
        .assert()
        .success()
        .stdout(contains("failed: "))
        .stdout(contains("no usable image in the training split"));
    ws.vaelab(&["status"])
        .assert()
        .success()
        .stdout(contains("iso/broken/seed=0"))
        .stdout(contains("iso/fine/seed=0"));
    ws.vaelab(&["--report-dir", "report", "report", spec])
        .assert()
        .success();
    let report = std::fs::read_to_string(ws.path().join("report/iso/report.md")).unwrap();
    assert!(report.contains("broken/seed=0 (failed)"), "{report}");

    let missing = ws.write(
        "missing.yaml",
        "name: missing\ndata:\n  source: celeba\n  root: /nonexistent/celeba\n",
    );
    ws.vaelab(&["run", missing.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .code(2)
        .stderr(contains(
            "missing.yaml:4: data.root: /nonexistent/celeba: no CelebA here",
        ));
}

/// A loss that becomes non-finite fails its run with the epoch and what to change; the
/// sweep goes on to the next run.
#[test]
fn a_non_finite_loss_fails_its_run_and_the_sweep_goes_on() {
    let ws = Workspace::new();
    let text = "name: nf
data:
  image_size: 16
  train_images: 32
  val_images: 8
model:
  latent_dim: 4
  channels: [4, 8]
\
                train:
  epochs: 1
  batch_size: 16
variants:
  - name: wild
    train.lr: 1.0e30
  - name: tame
    train.lr: 0.001
";
    let spec = ws.write("nf.yaml", text);
    let out = ws
        .vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("loss became NaN in epoch 1; lower train.lr or train.beta"),
        "{stderr}"
    );
    assert_eq!(
        trained_labels(&out.get_output().stderr),
        vec!["tame/seed=0"]
    );
    let failed = std::fs::read_dir(ws.runs())
        .unwrap()
        .flatten()
        .map(|e| read_state(&e.path()))
        .find(|s| s["label"] == "wild/seed=0")
        .unwrap();
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("loss became NaN")
    );
}

#[test]
fn runs_of_an_earlier_version_of_the_spec_are_reported() {
    let ws = Workspace::new();
    let spec = ws.write("o.yaml", &crate::common::tiny_spec("orph", 1));
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success();
    ws.write(
        "o.yaml",
        &crate::common::tiny_spec("orph", 1).replace("lr: 0.002", "lr: 0.003"),
    );
    ws.vaelab(&["plan", spec.to_str().unwrap()])
        .assert()
        .success()
        .stdout(contains("1 runs: 1 new"))
        .stdout(contains("1 run(s) in"))
        .stdout(contains("were trained for `orph` but are not in this spec"))
        .stdout(contains("seed=3  done"));
}

fn spawn_run(ws: &Workspace, spec: &str) -> Child {
    ws.spawn(
        &["run", spec, "--device", "cpu", "--threads", "1"],
        Stdio::piped(),
    )
}

/// Three processes start on one 4-run sweep and are made to overlap: each holds its
/// first run at step 0 until all three have reached it (a barrier run as the crash
/// command, which then fails so training carries on). Each must have trained a run of its
/// own, none twice.
#[test]
fn concurrent_processes_split_a_sweep_and_never_train_a_run_twice() {
    let ws = Workspace::new();
    let spec = ws.write("par.yaml", &tiny_sweep("par", 2));
    let spec = spec.to_str().unwrap();
    let barrier = ws.path().join("barrier");
    std::fs::create_dir_all(&barrier).unwrap();
    // $PPID is the vaelab process that ran the line: one entry per process. The wait is
    // bounded (60 s) so a broken barrier fails the assertions below instead of hanging.
    let line = format!(
        "touch {b}/$PPID; i=0; while [ $(ls {b} | wc -l) -lt 3 ] && [ $i -lt 1200 ]; \
         do sleep 0.05; i=$((i+1)); done; false",
        b = barrier.display()
    );
    let workers: Vec<Child> = (0..3)
        .map(|_| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("vaelab"))
                .current_dir(ws.path())
                .env("VAELAB_CACHE", ws.cache())
                .env(vaelab::store::crash::CRASH_AT_ENV, "step:1:0")
                .env(vaelab::store::crash::CRASH_SIGNAL_ENV, "COMMAND")
                .env(vaelab::store::crash::CRASH_COMMAND_ENV, &line)
                .args(["--runs-dir", ws.runs().to_str().unwrap()])
                .args(["run", spec, "--device", "cpu", "--threads", "1"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn vaelab")
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        let out = worker.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let trained = trained_labels(&out.stderr);
        assert!(
            !trained.is_empty(),
            "a worker trained nothing although all three met at the barrier:\n{stderr}"
        );
        all.extend(trained);
    }
    assert_eq!(
        std::fs::read_dir(&barrier).unwrap().count(),
        3,
        "three processes reached the barrier"
    );
    all.sort();
    let unique: BTreeSet<String> = all.iter().cloned().collect();
    assert_eq!(all.len(), unique.len(), "a run was trained twice: {all:?}");
    assert_eq!(unique.len(), 4, "{all:?}");
    for dir in std::fs::read_dir(ws.runs()).unwrap() {
        assert_eq!(read_state(&dir.unwrap().path())["status"], "done");
    }
}

/// `--jobs 2`: two worker processes share a 4-run sweep under the run locks; every run is
/// trained exactly once, both workers report, and one summary closes.
#[test]
fn jobs_split_a_sweep_between_workers_with_one_summary() {
    let ws = Workspace::new();
    let spec = ws.write("jobs.yaml", &tiny_sweep("jobs", 2));
    let spec = spec.to_str().unwrap();
    let out = ws
        .vaelab(&["run", spec, "--jobs", "2", "--device", "cpu"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let mut trained = trained_labels(stderr.as_bytes())
        .into_iter()
        .map(|l| l.rsplit("] ").next().unwrap_or(&l).to_string())
        .collect::<Vec<_>>();
    trained.sort();
    assert_eq!(trained, crate::common::TINY_SWEEP_LABELS, "{stderr}");
    for worker in ["[w1 cpu] jobs:", "[w2 cpu] jobs:"] {
        assert!(
            stderr.contains(worker),
            "no summary from {worker}\n{stderr}"
        );
    }
    assert!(
        stderr.contains(
            "jobs: 4 runs over 2 workers: 4 trained now, 4 complete, 0 failed, 0 not finished"
        ),
        "{stderr}"
    );
    for dir in std::fs::read_dir(ws.runs()).unwrap() {
        let dir = dir.unwrap().path();
        assert_eq!(read_state(&dir)["status"], "done");
        let rows = vaelab::store::read_metrics_file(&dir.join("metrics.parquet")).unwrap();
        assert_eq!(rows.iter().map(|r| r.epoch).collect::<Vec<_>>(), [1, 2]);
    }
    // Run again: nothing left, and the workers say so.
    ws.vaelab(&["run", spec, "--jobs", "2", "--device", "cpu"])
        .assert()
        .success()
        .stderr(contains("0 trained now, 4 complete"));
}

/// `--quiet` reaches the workers (their arguments are handed whole): a quiet sweep over two
/// workers prints none of their progress, but a worker's warning still shows, tagged with
/// the worker. (Before, each worker got a command line rebuilt by hand without `--quiet`
/// and its lines were relayed as notes, so under `--quiet` its warnings were lost.)
#[test]
fn quiet_reaches_every_worker_and_their_warnings_still_show() {
    let ws = Workspace::new();
    // A variant that resolves to plain's config: every planner warns that it trains it once.
    let text = format!(
        "{}  - name: plain-again\n    model.residual: false\n",
        tiny_sweep("quietjobs", 1)
    );
    let spec = ws.write("jobs.yaml", &text);
    let out = ws
        .vaelab(&[
            "--quiet",
            "run",
            spec.to_str().unwrap(),
            "--jobs",
            "2",
            "--device",
            "cpu",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("trained epochs"), "{stderr}");
    for worker in ["[w1 cpu]", "[w2 cpu]"] {
        let warned = stderr
            .lines()
            .any(|l| l.contains(worker) && l.contains("same resolved config; training it once"));
        assert!(warned, "{worker}'s warning is missing:\n{stderr}");
    }
    let done = std::fs::read_dir(ws.runs())
        .unwrap()
        .filter(|d| read_state(&d.as_ref().unwrap().path())["status"] == "done")
        .count();
    assert_eq!(done, 4);
}

/// A stop request to `vaelab run --jobs` alone (as `kill` or a scheduler sends it, not the
/// terminal's signal to the whole group) reaches every worker: each checkpoints and marks
/// its run interrupted, and the command exits with 130.
#[test]
fn a_stop_request_to_jobs_reaches_every_worker() {
    let ws = Workspace::new();
    let spec = ws.write("stop.yaml", &tiny_sweep("stop", 60));
    let spec = spec.to_str().unwrap();
    let mut parent = ws.spawn(
        &["run", spec, "--jobs", "2", "--device", "cpu"],
        Stdio::piped(),
    );
    let started = std::time::Instant::now();
    let checkpoints = || {
        std::fs::read_dir(ws.runs())
            .map(|dirs| {
                dirs.flatten()
                    .filter(|d| {
                        d.path()
                            .join("checkpoints")
                            .read_dir()
                            .is_ok_and(|mut c| c.next().is_some())
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    // Both workers have a run under way once two runs have checkpoints.
    while checkpoints() < 2 {
        assert!(started.elapsed().as_secs() < 120, "no checkpoints appeared");
        assert!(
            parent.try_wait().unwrap().is_none(),
            "the sweep ended before the stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(unsafe { libc::kill(parent.id() as i32, libc::SIGTERM) }, 0);
    let out = parent.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    for worker in ["[w1 cpu]", "[w2 cpu]"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(worker) && l.contains("stopped on request")),
            "{worker} did not stop on request:\n{stderr}"
        );
    }
    let interrupted = std::fs::read_dir(ws.runs())
        .unwrap()
        .filter(|d| read_state(&d.as_ref().unwrap().path())["status"] == "interrupted")
        .count();
    assert_eq!(interrupted, 2, "{stderr}");
}

#[test]
fn jobs_refuse_what_they_cannot_honour() {
    let ws = Workspace::new();
    let spec = ws.write("jr.yaml", &tiny_sweep("jr", 1));
    let spec = spec.to_str().unwrap();
    ws.vaelab(&["run", spec, "--jobs", "2", "--max-runs", "1"])
        .assert()
        .code(2)
        .stderr(contains("--jobs: cannot be combined with --max-runs"));
    ws.vaelab(&["run", spec, "--jobs", "0"])
        .assert()
        .code(2)
        .stderr(contains("--jobs: expected a positive integer, got 0"));
    let missing = format!("cuda:{}", tch::Cuda::device_count() + 3);
    ws.vaelab(&[
        "run",
        spec,
        "--jobs",
        "2",
        "--devices",
        &format!("cpu,{missing}"),
    ])
    .assert()
    .code(2)
    .stderr(contains(format!("--device {missing}:")));
}

#[test]
fn a_run_whose_worker_was_killed_is_taken_over() {
    let ws = Workspace::new();
    let spec = ws.write("k.yaml", &tiny_sweep("k", 40));
    let spec = spec.to_str().unwrap();
    let mut victim = spawn_run(&ws, spec);
    // Wait until the first run has a checkpoint, then kill its worker without warning.
    let started = std::time::Instant::now();
    loop {
        let has_checkpoint = std::fs::read_dir(ws.runs())
            .map(|dirs| {
                dirs.flatten().any(|d| {
                    d.path().join("checkpoints").read_dir().is_ok_and(|mut c| {
                        c.any(|e| {
                            e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("epoch-"))
                        })
                    })
                })
            })
            .unwrap_or(false);
        if has_checkpoint {
            break;
        }
        assert!(started.elapsed().as_secs() < 120, "no checkpoint appeared");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    victim.kill().unwrap();
    victim.wait().unwrap();
    let out = ws
        .vaelab(&["run", spec, "--device", "cpu", "--only", "residual/seed=0"])
        .assert()
        .success()
        .stderr(contains("resuming from epoch"));
    assert_eq!(
        trained_labels(&out.get_output().stderr),
        vec!["residual/seed=0"]
    );
}

#[test]
fn shipped_quickstart_ids_are_pinned() {
    // Every default of the resolved config is identity: if one changes, these change, and
    // `plan` then lists the old runs as belonging to an earlier version of the spec. (The
    // ids before `model.init` existed, He-initialised, are what `model.init: he` gives.)
    let ws = Workspace::new();
    let planned = shipped_plan(&ws, "quickstart.yaml");
    let ids: Vec<(&str, &str)> = planned
        .iter()
        .map(|(label, id)| (label.as_str(), id.as_str()))
        .collect();
    assert_eq!(
        ids,
        vec![
            (
                "residual/seed=0",
                "585d3450cd020a16c90cfbdd8fbe86d9e394386268062cdf5ea10204dbb3c80b"
            ),
            (
                "residual/seed=1",
                "a135e01c85cb3db39f0da8675c1acce9a930b29ab66533f546122651860fad1e"
            ),
            (
                "plain/seed=0",
                "89dbe5124e243bb1b394797a177f149a247080985554ffd06adf4af50991c1ef"
            ),
            (
                "plain/seed=1",
                "cfb6de30ce9756351e6ee1ee96a54863b9753a1656f43467d81d3311724b35cc"
            ),
        ]
    );
}

/// (label, id) of every run `vaelab plan` lists for a shipped experiment.
fn shipped_plan(ws: &Workspace, name: &str) -> Vec<(String, String)> {
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("experiments")
        .join(name);
    ws.planned_runs(&spec)
        .iter()
        .map(|r| {
            (
                r["label"].as_str().unwrap().to_string(),
                r["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_precision_experiment_reuses_the_quickstart_runs_for_fp32() {
    let ws = Workspace::new();
    let quickstart = shipped_plan(&ws, "quickstart.yaml");
    let precision = shipped_plan(&ws, "precision.yaml");
    assert_eq!(precision.len(), 8);
    for (label, id) in &precision {
        let shared = quickstart.iter().any(|(_, q)| q == id);
        assert_eq!(shared, label.starts_with("fp32/"), "{label} {id}");
    }
}

#[test]
fn shipped_celeba_experiments_fail_cleanly_without_the_data() {
    let ws = Workspace::new();
    let spec =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/seed-reproduction.yaml");
    // The data's fingerprint is part of every id, so a missing dataset stops the sweep at
    // planning, as a spec error, before anything is written.
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .env("VAELAB_CELEBA_ROOT", ws.path().join("no-celeba"))
        .assert()
        .code(2)
        .stderr(contains("seed-reproduction.yaml:"))
        .stderr(contains("no-celeba: no CelebA here (expected"))
        .stderr(contains("img_align_celeba"))
        .stderr(contains("VAELAB_CELEBA_ROOT"));
    assert!(!ws.runs().exists(), "nothing written");
}

#[test]
fn bench_times_planning_a_large_grid() {
    let ws = Workspace::new();
    let out = ws
        .vaelab(&["bench", "--plan-runs", "1000", "--json"])
        .assert()
        .success();
    let result: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let runs = result["runs"].as_u64().unwrap();
    assert_eq!(
        runs, 1000,
        "10 seeds x 10 latent sizes x 10 betas: {result}"
    );
    let (seconds, rate) = (
        result["seconds"].as_f64().unwrap(),
        result["runs_per_second"].as_f64().unwrap(),
    );
    assert!(
        ((rate * seconds) - runs as f64).abs() < 1e-6 * runs as f64,
        "{result}"
    );
}

/// `vaelab gc SPEC` lists runs the spec does not produce, failed runs and old
/// checkpoints, with sizes, and touches nothing; with `--apply` it removes exactly those,
/// never a run that a process is training, and never a failed run that can resume from
/// its checkpoint unless that run is named (`--run ID`): such a run then resumes.
#[test]
fn gc_lists_then_removes_what_can_go_and_never_a_running_or_resumable_run() {
    let ws = Workspace::new();
    let keep = ws.write(
        "keep.yaml",
        &tiny_spec("keep", 3).replace("seed: 3\n", "seeds: [3, 5, 7]\n"),
    );
    let keep = keep.to_str().unwrap();
    let gone = ws.write(
        "gone.yaml",
        &tiny_spec("gone", 1).replace("seed: 3", "seed: 9"),
    );
    let busy = ws.write(
        "busy.yaml",
        &tiny_spec("busy", 400).replace("seed: 3", "seed: 11"),
    );
    ws.vaelab(&["run", keep, "--only", "seed=3", "--device", "cpu"])
        .assert()
        .success();
    // Seeds 5 and 7 fail on a full disk while writing their second epoch's checkpoint:
    // the first one is there to resume from.
    for seed in ["seed=5", "seed=7"] {
        ws.vaelab(&["run", keep, "--only", seed, "--device", "cpu"])
            .env(
                vaelab::store::crash::CRASH_AT_ENV,
                "checkpoint-partial:epoch-0002",
            )
            .env(vaelab::store::crash::CRASH_SIGNAL_ENV, "ENOSPC")
            .assert()
            .code(1);
    }
    ws.vaelab(&["run", gone.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success();
    let mut trainer = ws.spawn(
        &[
            "run",
            busy.to_str().unwrap(),
            "--device",
            "cpu",
            "--threads",
            "1",
        ],
        Stdio::null(),
    );
    let store = vaelab::store::RunStore::new(ws.runs());
    let by_label = |label: &str| {
        store
            .list()
            .unwrap()
            .into_iter()
            .find(|d| d.read_state().unwrap().is_some_and(|s| s.label == label))
    };
    let started = std::time::Instant::now();
    let busy_run = loop {
        if let Some(run) = by_label("seed=11").filter(|r| r.is_locked()) {
            break run;
        }
        assert!(
            started.elapsed().as_secs() < 60,
            "the busy run did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // An older checkpoint than the newest two (and not the best) beside seed 3's.
    let kept = by_label("seed=3").unwrap();
    let old = kept.checkpoints_dir().join("epoch-0000-step-000002");
    std::fs::create_dir(&old).unwrap();
    std::fs::write(old.join("model.safetensors"), vec![0u8; 4096]).unwrap();
    let orphan = by_label("seed=9").unwrap();
    let (resumable, named) = (by_label("seed=5").unwrap(), by_label("seed=7").unwrap());

    let listed = ws.vaelab(&["gc", keep]).assert().success();
    let text = String::from_utf8_lossy(&listed.get_output().stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        6,
        "four places, the resumable note and a total:\n{text}"
    );
    for (path, reason) in [
        (orphan.path(), "no spec produces it"),
        (resumable.path(), "failed, resumable"),
        (named.path(), "failed, resumable"),
        (old.as_path(), "old checkpoint"),
    ] {
        let path = path.display().to_string();
        assert!(
            lines
                .iter()
                .any(|l| l.contains(reason) && l.contains(&format!("  {path}  ("))),
            "{reason}: {path}\n{text}"
        );
    }
    assert!(
        lines
            .iter()
            .filter(|l| l.contains("failed, resumable"))
            .all(|l| l.contains("no space left on")),
        "the reason is shown:\n{text}"
    );
    assert!(
        text.contains("2 failed run(s) can resume from a checkpoint"),
        "{text}"
    );
    assert!(
        !text.contains(&busy_run.path().display().to_string()),
        "{text}"
    );
    assert!(text.contains("run again with --apply"));
    assert!(orphan.path().exists() && resumable.path().exists() && old.exists());

    let named_id = named.id().dir_name().to_string();
    ws.vaelab(&["gc", keep, "--apply", "--run", &named_id])
        .assert()
        .success();
    assert!(!orphan.path().exists() && !old.exists() && !named.path().exists());
    assert!(
        resumable.checkpoints_dir().join("epoch-0001").is_dir(),
        "a resumable run stays with its checkpoint"
    );
    assert!(kept.checkpoints_dir().join("epoch-0003").is_dir());
    assert!(
        busy_run.path().join("config.yaml").is_file(),
        "the running run is untouched"
    );
    ws.vaelab(&["run", keep, "--only", "seed=3", "--device", "cpu"])
        .assert()
        .success()
        .stderr(contains("already done (3 epochs)"));
    ws.vaelab(&["run", keep, "--only", "seed=5", "--device", "cpu"])
        .assert()
        .success()
        .stderr(contains("seed=5: resuming from epoch 1 of 3"));
    trainer.kill().unwrap();
    trainer.wait().unwrap();
}

/// Out of memory inside libtorch (tch raises it as a panic; injected here at a step of the
/// first variant only, whose epochs have two steps) fails that run with advice, without a
/// panic message, and the sweep trains the next run.
#[test]
fn out_of_memory_fails_its_run_and_the_sweep_goes_on() {
    let ws = Workspace::new();
    let text = "name: oom\ndata:\n  image_size: 16\n  train_images: 32\n  val_images: 8\nmodel:\n  latent_dim: 4\n  channels: [4, 8]\n\
                train:\n  epochs: 1\nvariants:\n  - name: big\n    train.batch_size: 16\n  - name: small\n    train.batch_size: 32\n";
    let spec = ws.write("oom.yaml", text);
    let out = ws
        .vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .env(vaelab::store::crash::CRASH_AT_ENV, "step:1:1")
        .env(vaelab::store::crash::CRASH_SIGNAL_ENV, "OOM")
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("big/seed=0 [") && stderr.contains("out of memory (CUDA out of memory."),
        "{stderr}"
    );
    assert!(stderr.contains("lower train.batch_size"), "{stderr}");
    assert!(!stderr.contains("panicked at"), "{stderr}");
    assert_eq!(
        trained_labels(&out.get_output().stderr),
        vec!["small/seed=0"]
    );
    let big = std::fs::read_dir(ws.runs())
        .unwrap()
        .flatten()
        .map(|e| read_state(&e.path()))
        .find(|s| s["label"] == "big/seed=0")
        .unwrap();
    assert_eq!(big["status"], "failed");
    assert!(
        big["error"].as_str().unwrap().contains("out of memory"),
        "{big}"
    );
}

/// Every spec in `experiments/` parses and plans: the synthetic ones to their runs, the
/// CelebA ones to the error that names `data.root` (no CelebA is on this machine), so a
/// spec the README points at cannot rot unread.
#[test]
fn every_spec_in_experiments_parses_and_plans() {
    let ws = Workspace::new();
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut specs: Vec<std::path::PathBuf> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    specs.sort();
    assert!(specs.len() >= 9, "{specs:?}");
    for spec in &specs {
        let text = std::fs::read_to_string(spec).unwrap();
        let output = ws
            .vaelab(&["plan", spec.to_str().unwrap()])
            .env("VAELAB_CELEBA_ROOT", ws.path().join("no-celeba"))
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        if text.contains("source: celeba") {
            assert_eq!(
                output.status.code(),
                Some(2),
                "{}: {stderr}",
                spec.display()
            );
            assert!(stderr.contains("data.root"), "{}: {stderr}", spec.display());
        } else {
            assert!(output.status.success(), "{}: {stderr}", spec.display());
            assert!(stdout.contains(" runs: "), "{}: {stdout}", spec.display());
        }
    }
}

/// `plan` shows each run's parameters and forward FLOPs per image (the PARAMS and
/// FLOPS/IMG columns), and residual-controls' plain-wide arm has the width-matched count
/// docs/studies.md states: 3,482,819 parameters against the residual model's 3,434,627.
#[test]
fn plan_counts_parameters_and_flops_and_matches_residual_controls_widths() {
    let ws = Workspace::new();
    let spec =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/residual-controls.yaml");
    let out = ws
        .vaelab(&["plan", spec.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let parameters_of = |label: &str| {
        view["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["label"] == label)
            .unwrap_or_else(|| panic!("{label} planned"))["capacity"]["parameters"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(parameters_of("plain-wide/seed=0"), 3_482_819);
    assert_eq!(parameters_of("residual/seed=0"), 3_434_627);
    assert_eq!(parameters_of("plain/seed=0"), 1_479_427);
    let text = ws
        .vaelab(&["plan", spec.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    let header = text.lines().find(|l| l.starts_with("ID ")).unwrap();
    assert!(
        header.contains("PARAMS") && header.contains("FLOPS/IMG"),
        "{header}"
    );
    let wide = text
        .lines()
        .find(|l| l.contains("plain-wide/seed=0"))
        .unwrap();
    assert!(wide.contains("3.48M"), "{wide}");
}

/// `--jobs` splits the CPU's threads between the workers: `--threads 4 --jobs 2` trains
/// each run on 2 threads, which the run records as the hardware it trained on.
#[test]
fn jobs_split_the_threads_between_the_workers() {
    let ws = Workspace::new();
    let spec = ws.write("split.yaml", &tiny_sweep("split", 1));
    ws.vaelab(&[
        "run",
        spec.to_str().unwrap(),
        "--jobs",
        "2",
        "--threads",
        "4",
        "--device",
        "cpu",
    ])
    .assert()
    .success();
    let dirs: Vec<_> = std::fs::read_dir(ws.runs()).unwrap().collect();
    assert_eq!(dirs.len(), 4);
    for dir in dirs {
        let state = read_state(&dir.unwrap().path());
        let hardware = state["hardware"].as_str().unwrap();
        assert!(hardware.ends_with(", 2 threads)"), "{hardware}");
    }
}

/// `export` carries each run's provenance: the vaelab and libtorch versions it was
/// trained with, and the commit of the repository holding its spec, with the dirty flag.
#[test]
fn export_carries_each_run_s_provenance() {
    let ws = Workspace::new();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .current_dir(ws.path())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    let spec = ws.write("prov.yaml", &crate::common::tiny_spec("prov", 1));
    git(&["add", "prov.yaml"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-qm",
        "spec",
    ]);
    let head = git(&["rev-parse", "HEAD"]);
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success();
    let table = ws.path().join("runs.csv");
    ws.vaelab(&["export", "--to", table.to_str().unwrap()])
        .assert()
        .success();
    let mut reader = csv::Reader::from_path(&table).unwrap();
    let headers = reader.headers().unwrap().clone();
    let row = reader.records().next().unwrap().unwrap();
    let cell = |name: &str| {
        let index = headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name} column"));
        row[index].to_string()
    };
    assert_eq!(cell("vaelab_version"), env!("CARGO_PKG_VERSION"));
    assert!(
        cell("libtorch_version").starts_with("2.11.0"),
        "{}",
        cell("libtorch_version")
    );
    assert_eq!(cell("spec_commit"), head);
    assert_eq!(cell("spec_dirty"), "false");
}
