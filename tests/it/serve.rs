//! `vaelab serve`: the dashboard's JSON and files over a real store, its refusals (paths
//! out of the store, unknown ids and names), that it never writes, and a live page in
//! headless Chromium that shows a new epoch of a run while it trains.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::common::{Workspace, tiny_spec};

/// A running `vaelab serve --port 0` and the address it printed.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start(ws: &Workspace, extra: &[&str]) -> Self {
        let runs = ws.runs();
        let mut args = vec!["--runs-dir", runs.to_str().unwrap(), "serve", "--port", "0"];
        args.extend(extra);
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("vaelab"))
            .current_dir(ws.path())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vaelab serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .strip_prefix("http://")
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("no URL printed: {line:?}"))
            .to_string();
        Self { child, address }
    }

    /// Status code and body of `GET path`, sent as written (no normalisation).
    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a header");
        let head = String::from_utf8_lossy(&response[..split]).into_owned();
        let code = head.split(' ').nth(1).unwrap().parse().unwrap();
        (code, response[split + 4..].to_vec())
    }

    fn json(&self, path: &str) -> serde_json::Value {
        let (code, body) = self.get(path);
        assert_eq!(code, 200, "{path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    fn stderr(mut self) -> String {
        let _ = self.child.kill();
        let mut text = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every file under `dir` with its size and modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                out.push((entry.path(), meta.len(), meta.modified().unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// One damaged `state.json` and one damaged `metrics.parquet` leave the experiment page
/// answering 200: those runs are marked damaged with why, the others intact; status
/// words are the ones `vaelab status` uses.
#[test]
fn damaged_runs_are_marked_and_never_take_the_page_down() {
    let ws = Workspace::new();
    let spec = ws.write(
        "three.yaml",
        &tiny_spec("three", 1).replace("seed: 3\n", "seeds: [1, 2, 3]\n"),
    );
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success();
    let store = vaelab::store::RunStore::new(ws.runs());
    let dirs = store.list().unwrap();
    let label = |d: &vaelab::store::RunDir| d.read_state().unwrap().unwrap().label;
    let by_seed = |seed: &str| {
        dirs.iter()
            .find(|d| label(d) == format!("seed={seed}"))
            .unwrap()
            .clone()
    };
    let (bad_metrics, bad_state, intact) = (by_seed("1"), by_seed("2"), by_seed("3"));
    std::fs::write(bad_metrics.metrics_path(), b"not parquet").unwrap();
    std::fs::write(bad_state.state_path(), b"{ torn").unwrap();

    let server = Server::start(&ws, &[]);
    let runs = server.json("/api/experiments/three");
    let find = |id: &str| {
        runs.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing: {runs}"))
            .clone()
    };
    let intact_view = find(intact.id().dir_name());
    assert_eq!(intact_view["status"], "done");
    assert_eq!(intact_view["curves"]["epoch"], serde_json::json!([1]));
    let metrics_view = find(bad_metrics.id().dir_name());
    assert_eq!(metrics_view["status"], "damaged");
    assert!(
        metrics_view["problem"]
            .as_str()
            .unwrap()
            .contains("metrics.parquet"),
        "{metrics_view}"
    );
    let state_view = find(bad_state.id().dir_name());
    assert_eq!(state_view["status"], "damaged");
    assert!(
        state_view["problem"]
            .as_str()
            .unwrap()
            .contains("state.json"),
        "{state_view}"
    );
    let detail = server.json(&format!("/api/runs/{}", bad_state.id().dir_name()));
    assert_eq!(detail["state"]["status"], "damaged", "{detail}");
    let experiments = server.json("/api/experiments");
    assert_eq!(experiments[0]["statuses"]["done"], 2, "{experiments}");
    assert_eq!(experiments[0]["statuses"]["damaged"], 1, "{experiments}");
}

#[test]
fn the_dashboard_serves_the_store_and_refuses_everything_else() {
    let ws = Workspace::new();
    let spec = ws.write("tiny.yaml", &tiny_spec("served", 2));
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success();
    let run = ws.single_run_dir();
    let id = run.file_name().unwrap().to_str().unwrap().to_string();
    // A sample replaced by a link to a file outside the store.
    let outside = ws.path().join("secret.png");
    std::fs::write(&outside, b"\x89PNG secret").unwrap();
    let linked = run.join("samples/epoch-0001-recon.png");
    std::fs::remove_file(&linked).unwrap();
    std::os::unix::fs::symlink(&outside, &linked).unwrap();
    let before = snapshot(&ws.runs());

    let server = Server::start(&ws, &[]);
    let experiments = server.json("/api/experiments");
    assert_eq!(experiments[0]["name"], "served");
    assert_eq!(experiments[0]["statuses"]["done"], 1);
    let runs = server.json("/api/experiments/served");
    assert_eq!(runs[0]["id"], id.as_str());
    assert_eq!(runs[0]["curves"]["epoch"], serde_json::json!([1, 2]));
    let metrics = vaelab::store::read_metrics_file(&run.join("metrics.parquet")).unwrap();
    // serde_json's default parser may be off by one ulp in the last digit it reads.
    let served = runs[0]["curves"]["val_loss"][1].as_f64().unwrap();
    assert!(
        (served - metrics[1].val_loss).abs() <= 4.0 * f64::EPSILON * metrics[1].val_loss.abs(),
        "{served} vs {}",
        metrics[1].val_loss
    );
    // Every chart the page draws names columns the curves carry, one value per epoch.
    let charts = server.json("/api/charts");
    let charts = charts.as_array().unwrap();
    assert_eq!(charts[0]["validation"], "val_loss");
    assert_eq!(charts.len(), vaelab::store::metric_curves().len());
    for chart in charts {
        for column in [&chart["train"], &chart["validation"]] {
            if let Some(name) = column.as_str() {
                assert_eq!(
                    runs[0]["curves"][name].as_array().unwrap().len(),
                    2,
                    "{name}"
                );
            }
        }
    }
    let detail = server.json(&format!("/api/runs/{id}"));
    assert!(detail["config"].as_str().unwrap().contains("latent_dim: 8"));
    assert!(detail["pictures"].as_array().unwrap().len() >= 4);
    let (code, png) = server.get(&format!("/runs/{id}/files/epoch-0002-prior.png"));
    assert_eq!((code, &png[..4]), (200, &b"\x89PNG"[..]));
    for page in [
        "/",
        "/experiments/served",
        &format!("/runs/{id}"),
        "/assets/dashboard.js",
    ] {
        assert_eq!(server.get(page).0, 200, "{page}");
    }
    for refused in [
        format!("/runs/{id}/files/epoch-0001-recon.png"), // a link out of the store
        format!("/runs/{id}/files/..%2Fconfig.yaml"),
        format!("/runs/{id}/files/config.yaml"),
        format!("/runs/{id}/files/../config.yaml"),
        format!("/runs/{id}/files/%2Fetc%2Fpasswd"),
        "/runs/0123456789abcdef/files/prior.png".to_string(),
        "/runs/..%2F..%2Fetc/files/passwd".to_string(),
        "/api/runs/0123456789abcdef".to_string(),
        "/etc/passwd".to_string(),
        "/../../etc/passwd".to_string(),
    ] {
        assert_eq!(server.get(&refused).0, 404, "{refused}");
    }
    assert_eq!(
        snapshot(&ws.runs()),
        before,
        "the server wrote to the store"
    );
    drop(server);

    // The warning is written before the URL, which `start` has read: it is in the pipe.
    let open = Server::start(&ws, &["--host", "0.0.0.0"]);
    assert!(
        open.stderr()
            .contains("anyone who can reach this machine can read every run")
    );
}

#[test]
fn the_experiment_page_shows_a_new_epoch_while_a_run_trains_without_reloading() {
    let Some(browser) = crate::common::headless_browser(1280, 900) else {
        return;
    };
    let ws = Workspace::new();
    let spec = ws.write("live.yaml", &tiny_spec("live", 100_000));
    let mut trainer = ws.spawn(
        &[
            "run",
            spec.to_str().unwrap(),
            "--device",
            "cpu",
            "--threads",
            "1",
        ],
        Stdio::null(),
    );
    let started = Instant::now();
    let run = loop {
        let found = std::fs::read_dir(ws.runs()).ok().and_then(|mut d| d.next());
        if let Some(run) = found
            .map(|e| e.unwrap().path())
            .filter(|r| r.join("metrics.parquet").is_file())
        {
            break run;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no epoch appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let id = run.file_name().unwrap().to_str().unwrap().to_string();
    let server = Server::start(&ws, &[]);
    let tab = browser.new_tab().unwrap();
    let errors = crate::common::console_errors(&tab);
    tab.navigate_to(&format!("http://{}/experiments/live", server.address))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    let epoch_shown = |tab: &headless_chrome::Tab| -> Option<u64> {
        let text = tab
            .evaluate(
                &format!("(document.getElementById('epoch-{id}') || {{}}).textContent || ''"),
                false,
            )
            .ok()?
            .value?
            .as_str()?
            .to_string();
        text.split('/').next()?.parse().ok()
    };
    let waited = Instant::now();
    let first = loop {
        if let Some(epoch) = epoch_shown(&tab) {
            break epoch;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the run never showed"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // A page that reloaded itself to show the new epoch would lose this marker, and its
    // chart would not gain points in place.
    let points = |tab: &headless_chrome::Tab| -> u64 {
        tab.evaluate(
            "Number((document.querySelector('canvas') || {dataset: {}}).dataset.points || 0)",
            false,
        )
        .unwrap()
        .value
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
    };
    tab.evaluate("window.__vaelabMarker = 'set before the wait'", false)
        .unwrap();
    let points_before = points(&tab);
    let later = loop {
        let epoch = epoch_shown(&tab).unwrap_or(first);
        if epoch > first {
            break epoch;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "epoch {first} never moved"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(later > first);
    let marker = tab
        .evaluate("window.__vaelabMarker || 'gone'", false)
        .unwrap()
        .value
        .and_then(|v| v.as_str().map(String::from))
        .unwrap();
    assert_eq!(
        marker, "set before the wait",
        "the page reloaded instead of updating"
    );
    let grew = Instant::now();
    while points(&tab) <= points_before {
        assert!(
            grew.elapsed() < Duration::from_secs(10),
            "the first chart stayed at {points_before} points"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let charts = tab
        .evaluate("document.querySelectorAll('canvas').length", false)
        .unwrap()
        .value
        .and_then(|v| v.as_u64())
        .unwrap();
    assert_eq!(charts, 4, "loss, reconstruction, KL and PSNR");

    // The run's page: every picture decodes.
    tab.navigate_to(&format!("http://{}/runs/{id}", server.address))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    let waited = Instant::now();
    let (images, broken) = loop {
        let value = tab
            .evaluate(
                "JSON.stringify([document.images.length, Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length])",
                false,
            )
            .unwrap()
            .value
            .and_then(|v| v.as_str().map(String::from))
            .unwrap();
        let counts: Vec<u64> = serde_json::from_str(&value).unwrap();
        if counts[0] > 0 && counts[1] == 0 || waited.elapsed() > Duration::from_secs(20) {
            break (counts[0], counts[1]);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(images > 0, "the samples strip shows pictures");
    assert_eq!(broken, 0, "every image decodes");
    let errors = crate::common::console_errors_so_far(&tab, &errors);
    assert!(errors.is_empty(), "console errors: {errors:?}");
    trainer.kill().unwrap();
    trainer.wait().unwrap();
}

/// `vaelab serve` without `--host` listens on the loopback address only, as the README
/// says: others on the network cannot read the store unless asked for.
#[test]
fn serve_listens_on_loopback_by_default() {
    let ws = Workspace::new();
    let server = Server::start(&ws, &[]);
    assert!(
        server.address.starts_with("127.0.0.1:"),
        "{}",
        server.address
    );
    let (code, _) = server.get("/api/experiments");
    assert_eq!(code, 200);
}
