//! Helpers shared by the integration tests: temp workspaces, tiny specs, the real binary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn runs(&self) -> PathBuf {
        self.dir.path().join("runs")
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write spec");
        path
    }

    /// The workspace's own cache (decoded datasets, remembered fingerprints), so tests
    /// never share one, nor touch the user's.
    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// `vaelab --runs-dir <ws>/runs ARGS...` with the workspace's own cache.
    pub fn vaelab(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("vaelab").expect("vaelab binary");
        cmd.current_dir(self.path())
            .env("VAELAB_CACHE", self.cache())
            .arg("--runs-dir")
            .arg(self.runs())
            .args(args);
        cmd
    }

    /// `vaelab bench` on a plain 32×32 model with 8 latents on the CPU, batch `batch`.
    pub fn tiny_bench(&self, batch: u32) -> Command {
        let batch = batch.to_string();
        self.vaelab(&[
            "bench",
            "--model",
            "plain",
            "--image-size",
            "32",
            "--batch-size",
            &batch,
            "--latent-dim",
            "8",
            "--device",
            "cpu",
        ])
    }

    /// Starts `vaelab --runs-dir <ws>/runs ARGS...` in the background, stdout discarded.
    pub fn spawn(&self, args: &[&str], stderr: std::process::Stdio) -> std::process::Child {
        self.spawn_with(args, stderr, &[])
    }

    /// [`Workspace::spawn`] with extra environment variables (crash points, say).
    pub fn spawn_with(
        &self,
        args: &[&str],
        stderr: std::process::Stdio,
        env: &[(&str, &str)],
    ) -> std::process::Child {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("vaelab"))
            .current_dir(self.path())
            .envs(env.iter().copied())
            .env("VAELAB_CACHE", self.cache())
            .arg("--runs-dir")
            .arg(self.runs())
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn vaelab")
    }

    /// The runs `vaelab plan SPEC --json` lists, as JSON.
    pub fn planned_runs(&self, spec: &Path) -> Vec<serde_json::Value> {
        let out = self
            .vaelab(&["plan", spec.to_str().expect("a UTF-8 path"), "--json"])
            .assert()
            .success();
        let view: serde_json::Value =
            serde_json::from_slice(&out.get_output().stdout).expect("plan --json is JSON");
        view["runs"].as_array().expect("a list of runs").clone()
    }

    /// The only run directory under `runs/`.
    pub fn single_run_dir(&self) -> PathBuf {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(self.runs())
            .expect("runs dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.is_dir())
            .collect();
        assert_eq!(dirs.len(), 1, "expected one run directory, found {dirs:?}");
        dirs.pop().unwrap()
    }
}

/// The crash-point environment that holds a run at step 0 of epoch `epoch` until the
/// file `release` exists, after touching `held`: the run is then at a known place for as
/// long as a test needs, with no sleep to guess it. The line fails once released, so
/// the run carries on. It also gives up when `release`'s folder is gone (the test ended,
/// its workspace removed) or after two minutes, so a failed test leaves no loop behind.
pub fn hold_at_epoch(epoch: u32, held: &Path, release: &Path) -> Vec<(&'static str, String)> {
    vec![
        (
            vaelab::store::crash::CRASH_AT_ENV,
            format!("step:{epoch}:0"),
        ),
        (
            vaelab::store::crash::CRASH_SIGNAL_ENV,
            "COMMAND".to_string(),
        ),
        (
            vaelab::store::crash::CRASH_COMMAND_ENV,
            format!(
                "touch {held}; i=0; until [ -e {release} ] || [ ! -d {folder} ] || [ $i -ge 2400 ]; do sleep 0.05; i=$((i + 1)); done; false",
                held = held.display(),
                release = release.display(),
                folder = release.parent().unwrap_or(release).display()
            ),
        ),
    ]
}

/// Waits (up to `limit`) until `path` exists.
pub fn wait_for_file(path: &Path, limit: std::time::Duration) {
    let started = std::time::Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < limit,
            "{} did not appear in {limit:?}",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A spec small enough to train in about a second on two cores.
pub fn tiny_spec(name: &str, epochs: u32) -> String {
    format!(
        "name: {name}\nseed: 3\ndata:\n  source: synthetic\n  image_size: 16\n  train_images: 96\n  val_images: 16\n\
         model:\n  residual: true\n  latent_dim: 8\n  channels: [8, 16]\ntrain:\n  epochs: {epochs}\n  batch_size: 16\n  lr: 0.002\n"
    )
}

pub fn read_state(run_dir: &Path) -> serde_json::Value {
    let bytes = std::fs::read(run_dir.join("state.json")).expect("state.json");
    serde_json::from_slice(&bytes).expect("state.json is JSON")
}

/// The labels of [`tiny_sweep`]'s runs, sorted.
pub const TINY_SWEEP_LABELS: [&str; 4] = [
    "plain/seed=0",
    "plain/seed=1",
    "residual/seed=0",
    "residual/seed=1",
];

/// A 2 variants × 2 seeds sweep of tiny runs.
pub fn tiny_sweep(name: &str, epochs: u32) -> String {
    format!(
        "name: {name}\nseeds: [0, 1]\ndata:\n  image_size: 16\n  train_images: 64\n  val_images: 16\n\
         model:\n  latent_dim: 8\n  channels: [8, 16]\ntrain:\n  epochs: {epochs}\n  batch_size: 16\n\
         variants:\n  - name: residual\n    model.residual: true\n  - name: plain\n    model.residual: false\n"
    )
}

/// Labels of the runs a `vaelab run` output says it trained.
pub fn trained_labels(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.contains("]: trained epochs"))
        .filter_map(|l| l.split(" [").next().map(str::to_string))
        .collect()
}

/// Skips a test that needs a system package (chromium, Slurm) with a message, or fails it
/// where the package must be there: under `CI` (which `.ci/run` sets) and under
/// `VAELAB_REQUIRE_SYSTEM_TESTS` (which `make test` sets as root, where it installs them).
pub fn skip_or_fail(why: &str) {
    for required in ["CI", "VAELAB_REQUIRE_SYSTEM_TESTS"] {
        assert!(
            std::env::var_os(required).is_none(),
            "{why}, but {required} is set: this test must run here"
        );
    }
    eprintln!("SKIPPED: {why}");
    // nextest hides a passing test's output: the skip is also appended to a file that
    // `make test` prints after the run's summary.
    let list = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(SKIPPED_FILE);
    let line = format!(
        "{}: {why}\n",
        std::thread::current().name().unwrap_or("a test")
    );
    use std::io::Write;
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&list)
    {
        let _ = file.write_all(line.as_bytes());
    }
}

/// Under `target/tmp/`: the tests that skipped in the last run, with why.
pub const SKIPPED_FILE: &str = "skipped-tests.txt";

/// Chromium (or Chrome) on `PATH`, for the browser tests.
pub fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| {
            std::env::var_os("PATH")
                .map(|paths| {
                    std::env::split_paths(&paths)
                        .map(|p| p.join(name))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .find(|p| p.is_file())
}

/// Collects the console errors and uncaught exceptions of `tab` from now on.
pub fn console_errors(tab: &headless_chrome::Tab) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    use headless_chrome::protocol::cdp::types::Event;
    let errors: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let sink = std::sync::Arc::clone(&errors);
    tab.enable_log().unwrap();
    tab.enable_runtime().unwrap();
    tab.add_event_listener(std::sync::Arc::new(move |event: &Event| {
        let text = match event {
            Event::LogEntryAdded(e) => format!("{:?}", e.params.entry),
            Event::RuntimeConsoleAPICalled(e) => format!("{:?}", e.params),
            Event::RuntimeExceptionThrown(e) => format!("{:?}", e.params),
            _ => return,
        };
        let lower = text.to_lowercase();
        if lower.contains("error") || matches!(event, Event::RuntimeExceptionThrown(_)) {
            sink.lock().unwrap().push(text);
        }
    }))
    .unwrap();
    errors
}

/// The console errors of `tab` so far, every one of them: a sentinel is logged and awaited
/// first, and the page's events arrive in order, so nothing logged before this call can
/// still be on its way (a fixed wait would miss a late one).
pub fn console_errors_so_far(
    tab: &headless_chrome::Tab,
    errors: &std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> Vec<String> {
    const SENTINEL: &str = "vaelab-console-sentinel-not-an-error";
    tab.evaluate(&format!("console.log('{SENTINEL}')"), false)
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        let seen = errors.lock().unwrap().iter().any(|e| e.contains(SENTINEL));
        if seen {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the console sentinel never arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut all = errors.lock().unwrap().clone();
    all.retain(|e| !e.contains(SENTINEL));
    all
}

/// Headless Chromium with a window of `width` × `height`, or `None` (skipped with a
/// message, or failed where it must be there: see [`skip_or_fail`]).
pub fn headless_browser(width: u32, height: u32) -> Option<headless_chrome::Browser> {
    let Some(path) = chromium() else {
        skip_or_fail("no chromium on PATH (apt-get install chromium)");
        return None;
    };
    let options = headless_chrome::LaunchOptions::default_builder()
        .path(Some(path))
        .sandbox(false)
        .headless(true)
        .window_size(Some((width, height)))
        .build()
        .unwrap();
    Some(headless_chrome::Browser::new(options).expect("chromium starts"))
}
