//! `vaelab report`: the tables against numbers recomputed from the runs' Parquet files,
//! agreement of CSV, Markdown and HTML, partial sweeps, and the page in a real browser.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::common::{Workspace, tiny_sweep};
use polars::prelude::*;
use vaelab::report::Metric;

fn sweep_spec(name: &str) -> String {
    format!(
        "{}eval:\n  iwae_samples: 4\n  iwae_images: 8\n",
        tiny_sweep(name, 2)
    )
}

fn read_parquet(path: &Path) -> DataFrame {
    ParquetReader::new(File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .finish()
        .expect("parquet")
}

fn column(frame: &DataFrame, name: &str) -> Vec<f64> {
    frame
        .column(name)
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect()
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Columns of `evaluation.parquet` that the comparison table summarises.
const EVALUATED: [&str; 8] = [
    "psnr",
    "ssim",
    "kl",
    "elbo_bpd",
    "iwae_bpd",
    "calibrated_iwae_bpd",
    "recon_mse",
    "active_units",
];

/// Per-run numbers straight from the Parquet files: label → metric → value.
fn recompute(runs: &Path) -> BTreeMap<String, BTreeMap<&'static str, f64>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(runs).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("metrics.parquet").exists() {
            continue;
        }
        let label = crate::common::read_state(&dir)["label"]
            .as_str()
            .unwrap()
            .to_string();
        let metrics = read_parquet(&dir.join("metrics.parquet"));
        let evaluation = read_parquet(&dir.join("evaluation.parquet"));
        let val = column(&metrics, "val_loss");
        let train = column(&metrics, "train_loss");
        let mut row = BTreeMap::new();
        row.insert(
            "best_val_loss",
            val.iter().copied().fold(f64::INFINITY, f64::min),
        );
        row.insert("final_train_loss", *train.last().unwrap());
        for key in &EVALUATED[..] {
            row.insert(*key, column(&evaluation, key)[0]);
        }
        out.insert(label, row);
    }
    out
}

/// Each variant's mean best validation loss within the cheapest variant's total training
/// FLOPs (3 × the forward FLOPs counted from its config × images seen), from the runs'
/// own files.
fn equal_compute_is_recomputed_from_the_runs(runs: &Path, comparison: &[BTreeMap<String, String>]) {
    let mut per_run = Vec::new();
    for entry in std::fs::read_dir(runs).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("metrics.parquet").exists() {
            continue;
        }
        let state = crate::common::read_state(&dir);
        // config.yaml is the RunConfig with the run's `id` and `schema` above it.
        let mut stored: serde_yaml::Mapping =
            serde_yaml::from_str(&std::fs::read_to_string(dir.join("config.yaml")).unwrap())
                .unwrap();
        stored.remove("id");
        stored.remove("schema");
        let config: vaelab::experiment::config::RunConfig =
            serde_yaml::from_value(serde_yaml::Value::Mapping(stored)).unwrap();
        let forward =
            vaelab::experiment::capacity::capacity(&config.model, config.data.image_size as usize)
                .forward_flops as f64;
        let per_epoch = 3.0 * forward * state["train_images"].as_f64().unwrap();
        let label = state["label"].as_str().unwrap().to_string();
        let val = column(&read_parquet(&dir.join("metrics.parquet")), "val_loss");
        per_run.push((label, per_epoch, val));
    }
    let budget = per_run
        .iter()
        .map(|(_, per_epoch, val)| per_epoch * val.len() as f64)
        .fold(f64::INFINITY, f64::min);
    let mut finite = 0;
    for row in comparison {
        let best: Vec<f64> = per_run
            .iter()
            .filter(|(label, ..)| label.starts_with(&format!("{}/", row["variant"])))
            .map(|(_, per_epoch, val)| {
                let affordable = ((budget * (1.0 + 1e-9)) / per_epoch).floor() as usize;
                val[..affordable.min(val.len())]
                    .iter()
                    .copied()
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        // A variant that cannot afford one epoch within the budget has no value: empty.
        let reported = &row["best_val_loss_equal_compute_mean"];
        if best.iter().all(|b| b.is_infinite()) {
            assert_eq!(reported, "", "{}", row["variant"]);
            continue;
        }
        let (mean, _) = mean_std(&best);
        let reported: f64 = reported.parse().unwrap();
        assert!(
            close(mean, reported),
            "{}: {mean} vs {reported}",
            row["variant"]
        );
        finite += 1;
    }
    assert!(finite >= 1, "the cheapest variant always has a value");
}

fn csv_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(String::from))
                .collect()
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Rows of the Markdown table that follows `heading`.
fn markdown_table(md: &str, heading: &str) -> Vec<Vec<String>> {
    let start = md.find(heading).expect("heading in report.md");
    md[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter(|l| !l.starts_with("|---"))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

/// Rows (header first) of the HTML table with this id.
fn html_table(html: &str, id: &str) -> Vec<Vec<String>> {
    let start = html
        .find(&format!("<table id=\"{id}\">"))
        .expect("table in index.html");
    let end = start + html[start..].find("</table>").unwrap();
    html[start..end]
        .split("<tr>")
        .skip(1)
        .map(|row| {
            let mut cells = Vec::new();
            let mut rest = row;
            while let Some(at) = rest.find("<t") {
                let tail = &rest[at..];
                let tag = if tail.starts_with("<td>") {
                    "td"
                } else if tail.starts_with("<th>") {
                    "th"
                } else {
                    rest = &tail[2..];
                    continue;
                };
                let close = tail.find(&format!("</{tag}>")).unwrap();
                cells.push(
                    tail[4..close]
                        .replace("&lt;", "<")
                        .replace("&gt;", ">")
                        .replace("&quot;", "\"")
                        .replace("&amp;", "&"),
                );
                rest = &tail[close..];
            }
            cells
        })
        .collect()
}

fn parse_cell(text: &str) -> (f64, Option<f64>) {
    let mut parts = text.split(" ± ");
    let mean = parts.next().unwrap().trim().parse().unwrap();
    let std = parts.next().map(|s| s.trim().parse().unwrap());
    (mean, std)
}

fn trained_report(ws: &Workspace, name: &str) -> PathBuf {
    let spec = ws.write("sweep.yaml", &sweep_spec(name));
    ws.vaelab(&["run", spec.to_str().unwrap()])
        .assert()
        .success();
    ws.vaelab(&["--report-dir", "report", "report", spec.to_str().unwrap()])
        .assert()
        .success();
    ws.path().join("report").join(name)
}

#[test]
fn report_tables_equal_numbers_recomputed_from_parquet_and_all_formats_agree() {
    let ws = Workspace::new();
    let dir = trained_report(&ws, "rep");
    for file in [
        "index.html",
        "report.md",
        "tables/comparison.csv",
        "tables/differences.csv",
        "tables/runs.csv",
        "tables/curves.csv",
        "figures/curves-loss.png",
        "figures/curves-loss.svg",
        "figures/curves-recon.png",
        "figures/curves-kl.svg",
        "figures/curves-psnr.png",
        "figures/final-metrics.png",
        "figures/final-metrics.svg",
        "figures/curves-loss-by-cost.png",
        "figures/gap-val-loss.svg",
        "figures/kl-per-dimension.png",
        "figures/run-plain-seed-1.png",
        "figures/run-residual-seed-0.svg",
        "visuals/residual/reconstructions.png",
        "visuals/plain/interpolation.png",
        "visuals/plain/attribute.png",
        "visuals/residual/prior.png",
        "visuals/plain/epoch-0002-prior.png",
        "visuals/residual/traversal.png",
    ] {
        assert!(dir.join(file).is_file(), "missing {file}");
    }
    // 8 latent dimensions × 7 offsets of 16-pixel images, 2 pixels apart.
    let traversal = image::open(dir.join("visuals/plain/traversal.png")).unwrap();
    assert_eq!(
        (traversal.width(), traversal.height()),
        (7 * 18 + 2, 8 * 18 + 2)
    );

    // Comparison: mean and sample std over seeds of each run's Parquet numbers.
    let runs = recompute(&ws.runs());
    assert_eq!(runs.len(), 4);
    let comparison = csv_rows(&dir.join("tables/comparison.csv"));
    assert_eq!(comparison.len(), 2);
    for row in &comparison {
        let variant = &row["variant"];
        assert_eq!(row["finished"], "2");
        for key in ["best_val_loss", "final_train_loss"]
            .iter()
            .chain(&EVALUATED)
        {
            let values: Vec<f64> = runs
                .iter()
                .filter(|(label, _)| label.starts_with(&format!("{variant}/")))
                .map(|(_, m)| m[key])
                .collect();
            let (mean, std) = mean_std(&values);
            let got_mean: f64 = row[&format!("{key}_mean")].parse().unwrap();
            let got_std: f64 = row[&format!("{key}_std")].parse().unwrap();
            assert!(
                close(mean, got_mean),
                "{variant} {key}: {mean} vs {got_mean}"
            );
            assert!(close(std, got_std), "{variant} {key}: {std} vs {got_std}");
            assert_eq!(row[&format!("{key}_n")], "2");
        }
    }

    // The LaTeX comparison: booktabs, and the higher mean PSNR in bold in its row.
    let tex = std::fs::read_to_string(dir.join("tables/comparison.tex")).unwrap();
    for rule in ["\\toprule", "\\midrule", "\\bottomrule"] {
        assert!(tex.contains(rule), "{tex}");
    }
    let psnr = |row: &BTreeMap<String, String>| row["psnr_mean"].parse::<f64>().unwrap();
    let best = comparison
        .iter()
        .max_by(|a, b| psnr(a).total_cmp(&psnr(b)))
        .unwrap();
    let psnr_column = 2 + Metric::compared()
        .iter()
        .position(|m| *m == Metric::Psnr)
        .unwrap();
    let rows: Vec<&str> = tex
        .lines()
        .filter(|l| l.ends_with("\\\\") && !l.starts_with("variant"))
        .collect();
    assert_eq!(rows.len(), 2, "{tex}");
    for line in rows {
        let cells: Vec<&str> = line.trim_end_matches(" \\\\").split(" & ").collect();
        let is_best = cells[0] == best["variant"];
        assert_eq!(
            cells[psnr_column].starts_with("\\textbf{"),
            is_best,
            "{line}"
        );
    }
    assert!(dir.join("tables/differences.tex").is_file());

    // Paired differences (plain − residual, the first variant being the baseline), with
    // the 95% t interval for n = 2: t = 12.706.
    let differences = csv_rows(&dir.join("tables/differences.csv"));
    let elbo = differences
        .iter()
        .find(|r| r["metric"] == "elbo_bpd")
        .expect("elbo row");
    assert_eq!(
        (elbo["variant"].as_str(), elbo["baseline"].as_str()),
        ("plain", "residual")
    );
    let diffs: Vec<f64> = (0..2)
        .map(|seed| {
            runs[&format!("plain/seed={seed}")]["elbo_bpd"]
                - runs[&format!("residual/seed={seed}")]["elbo_bpd"]
        })
        .collect();
    let (mean, std) = mean_std(&diffs);
    let half = 12.706_204_736 * std / 2f64.sqrt();
    assert!(close(mean, elbo["mean_difference"].parse().unwrap()));
    assert!(
        (elbo["ci95_low"].parse::<f64>().unwrap() - (mean - half)).abs() < 1e-6 * half.max(1e-3)
    );
    assert!(
        (elbo["ci95_high"].parse::<f64>().unwrap() - (mean + half)).abs() < 1e-6 * half.max(1e-3)
    );

    // Every difference is Holm-adjusted over the report's family: never below its own p.
    for row in &differences {
        // An empty cell is a difference without an interval (n < 2).
        let number = |key: &str| row[key].parse::<f64>().unwrap_or(f64::NAN);
        let (p, holm) = (number("p_value"), number("holm_p"));
        if p.is_finite() {
            assert!(holm >= p && holm <= 1.0, "{row:?}");
            assert_eq!(row["holm_significant"], (holm < 0.05).to_string());
        }
    }
    equal_compute_is_recomputed_from_the_runs(&ws.runs(), &comparison);

    // Markdown and HTML show the same cells, and those round the CSV's numbers.
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("Holm-adjusted over the report's"), "{md}");
    assert!(
        md.contains("Over training, plain's validation-loss gap to residual"),
        "{md}"
    );
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let md_rows = markdown_table(&md, "## Comparison");
    let html_rows = html_table(&html, "comparison");
    assert_eq!(
        md_rows, html_rows,
        "Markdown and HTML comparison tables differ"
    );
    let header = &md_rows[0];
    let best = header.iter().position(|h| h == "best val loss").unwrap();
    let psnr = header.iter().position(|h| h == "PSNR (dB)").unwrap();
    for row in &md_rows[1..] {
        let csv = comparison.iter().find(|r| r["variant"] == row[0]).unwrap();
        for (col, key) in [(best, "best_val_loss"), (psnr, "psnr")] {
            let (mean, std) = parse_cell(&row[col]);
            let decimals = row[col]
                .split(" ± ")
                .next()
                .unwrap()
                .split('.')
                .nth(1)
                .map_or(0, str::len);
            let tolerance = 0.5 * 10f64.powi(-(decimals as i32)) + 1e-12;
            let csv_mean: f64 = csv[&format!("{key}_mean")].parse().unwrap();
            let csv_std: f64 = csv[&format!("{key}_std")].parse().unwrap();
            assert!(
                (mean - csv_mean).abs() <= tolerance,
                "{}: {mean} vs {csv_mean}",
                row[col]
            );
            assert!(
                (std.unwrap() - csv_std).abs() <= tolerance,
                "{}: std vs {csv_std}",
                row[col]
            );
        }
    }
    assert_eq!(
        markdown_table(&md, "## Paired differences"),
        html_table(&html, "differences")
    );
    assert_eq!(markdown_table(&md, "## Runs"), html_table(&html, "runs"));

    // The answer line names the comparison, its direction and its verdict, as the
    // differences the runs' own numbers give.
    let (verb, verdict) = if mean > 0.0 {
        ("raises", "worse")
    } else {
        ("lowers", "better")
    };
    let verdict = if (mean - half) * (mean + half) > 0.0 {
        format!("— {verdict}: the 95% interval excludes zero.")
    } else {
        "— no detectable difference: the 95% interval includes zero".to_string()
    };
    let answer = md
        .lines()
        .find(|l| l.contains("plain") && l.contains("the negative ELBO by"))
        .unwrap_or_else(|| panic!("no ELBO answer line:\n{md}"));
    assert!(
        answer.contains(&format!("plain {verb} the negative ELBO by")),
        "{answer}"
    );
    assert!(
        answer.contains("against residual (95% CI over seeds, n = 2)"),
        "{answer}"
    );
    assert!(answer.contains(&verdict), "{answer}\nwant {verdict}");
    // Self-contained: no external resource of any kind.
    for needle in ["<script", "<link", "http://", "https://", "@import", "url("] {
        assert!(!html.contains(needle), "index.html contains {needle}");
    }
    assert!(html.matches("data:image/png;base64,").count() >= 10);
    assert!(
        !md.contains("trained by different builds or hardware"),
        "{md}"
    );

    // One run as if trained on another machine: the report says which runs differ.
    let run = std::fs::read_dir(ws.runs())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("state.json").is_file())
        .unwrap();
    let mut state = crate::common::read_state(&run);
    state["hardware"] = "cpu (Another CPU, 8 threads)".into();
    std::fs::write(run.join("state.json"), serde_json::to_vec(&state).unwrap()).unwrap();
    ws.vaelab(&[
        "--report-dir",
        "report",
        "report",
        ws.path().join("sweep.yaml").to_str().unwrap(),
    ])
    .assert()
    .success();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let other = format!(
        ", cpu (Another CPU, 8 threads): {}",
        state["label"].as_str().unwrap()
    );
    assert!(
        md.contains("trained by different builds or hardware"),
        "{md}"
    );
    assert!(md.contains(&other), "{md}");
}

#[test]
fn report_on_a_partial_sweep_marks_runs_that_are_not_finished() {
    let ws = Workspace::new();
    let spec = ws.write("sweep.yaml", &sweep_spec("part"));
    ws.vaelab(&["run", spec.to_str().unwrap(), "--only", "residual/*"])
        .assert()
        .success();
    // A damaged file in a finished run is reported, not fatal.
    let damaged = std::fs::read_dir(ws.runs())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("evaluation.parquet").exists())
        .unwrap();
    std::fs::write(damaged.join("evaluation.parquet"), b"garbage").unwrap();
    let out = ws
        .vaelab(&["--report-dir", "report", "report", spec.to_str().unwrap()])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("3 of 4 runs are not finished"), "{stderr}");
    let dir = ws.path().join("report/part");
    let runs = csv_rows(&dir.join("tables/runs.csv"));
    assert_eq!(runs.len(), 4, "every planned run is listed");
    let status = |label: &str| {
        runs.iter()
            .find(|r| r["label"] == label)
            .map(|r| {
                (
                    r["status"].clone(),
                    r["in_comparison"].clone(),
                    r["problems"].clone(),
                )
            })
            .unwrap()
    };
    assert_eq!(status("plain/seed=0").0, "not started");
    assert_eq!(status("plain/seed=1").1, "false");
    let broken = runs
        .iter()
        .find(|r| !r["problems"].is_empty())
        .expect("the damaged run");
    assert!(
        broken["problems"].contains("evaluation.parquet"),
        "{broken:?}"
    );
    assert_eq!(broken["in_comparison"], "false");
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(html.contains("id=\"incomplete\"") && html.contains("plain/seed=0 (not started)"));

    // --only narrows the report to a subset.
    ws.vaelab(&[
        "--report-dir",
        "subset",
        "report",
        spec.to_str().unwrap(),
        "--only",
        "residual/*",
    ])
    .assert()
    .success();
    assert_eq!(
        csv_rows(&ws.path().join("subset/part/tables/runs.csv")).len(),
        2
    );
}

#[test]
fn index_html_loads_in_headless_chromium_with_every_figure_and_no_console_error() {
    use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;

    let Some(browser) = crate::common::headless_browser(1400, 1000) else {
        return;
    };
    let ws = Workspace::new();
    let dir = trained_report(&ws, "web");
    let tab = browser.new_tab().unwrap();
    let errors = crate::common::console_errors(&tab);
    let url = format!("file://{}", dir.join("index.html").display());
    tab.navigate_to(&url)
        .unwrap()
        .wait_until_navigated()
        .unwrap();

    let images = tab
        .evaluate("document.images.length", false)
        .unwrap()
        .value
        .and_then(|v| v.as_u64())
        .unwrap();
    let broken = tab
        .evaluate(
            "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt).join('; ')",
            false,
        )
        .unwrap()
        .value
        .and_then(|v| v.as_str().map(String::from))
        .unwrap();
    let figures_on_disk = std::fs::read_dir(dir.join("figures"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count() as u64;
    assert!(
        images >= figures_on_disk,
        "{images} images for {figures_on_disk} figures"
    );
    assert_eq!(broken, "", "images that did not load");

    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .unwrap();
    let shot = image::load_from_memory(&png).unwrap().to_rgb8();
    let ink = shot.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    assert!(
        ink * 50 > (shot.width() * shot.height()) as usize,
        "screenshot nearly blank: {ink} non-white pixels"
    );
    let errors = crate::common::console_errors_so_far(&tab, &errors);
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

/// A run whose `config.yaml` is damaged, one whose metrics are, and a missing picture:
/// `status` (text and JSON), `plan` and the report each name what is wrong and where,
/// and no run drops out of view.
#[test]
fn damaged_and_unreadable_files_are_named_never_dropped() {
    let ws = Workspace::new();
    let spec = ws.write("sweep.yaml", &crate::common::tiny_sweep("dmg", 1));
    ws.vaelab(&["run", spec.to_str().unwrap()])
        .assert()
        .success();
    let store = vaelab::store::RunStore::new(ws.runs());
    let runs = store.list().unwrap();
    assert_eq!(runs.len(), 4);
    let (broken_config, broken_metrics) = (&runs[0], &runs[1]);
    std::fs::write(broken_config.config_path(), "id: [unclosed").unwrap();
    std::fs::write(broken_metrics.metrics_path(), b"PAR1 not really").unwrap();
    // Every run's prior picture, so whichever run shows its variant lacks it.
    let prior = vaelab::store::EvaluationPicture::Prior;
    for run in &runs {
        std::fs::remove_file(run.evaluation_picture(prior)).unwrap();
    }

    let damaged_path = broken_config.path().display().to_string();

    let status = ws.vaelab(&["status"]).assert().success();
    let text = String::from_utf8_lossy(&status.get_output().stdout).into_owned();
    assert_eq!(
        text.lines().count(),
        5,
        "a header and all four runs:\n{text}"
    );
    assert!(
        text.contains(&format!(
            "{damaged_path}: damaged (config.yaml is not valid YAML"
        )),
        "{text}"
    );
    assert!(
        text.contains(&broken_metrics.metrics_path().display().to_string()),
        "the unreadable metrics file is named:\n{text}"
    );
    let json = ws.vaelab(&["status", "--json"]).assert().success();
    let rows: serde_json::Value = serde_json::from_slice(&json.get_output().stdout).unwrap();
    let statuses: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["standing"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "damaged").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses.len(), 4);

    ws.vaelab(&["plan", spec.to_str().unwrap()])
        .assert()
        .success()
        .stderr(predicates::str::contains(format!(
            "{damaged_path}: damaged"
        )));

    ws.vaelab(&["--report-dir", "report", "report", spec.to_str().unwrap()])
        .assert()
        .success();
    let report = std::fs::read_to_string(ws.path().join("report/dmg/report.md")).unwrap();
    assert!(report.contains("Damaged run directories"), "{report}");
    assert!(report.contains(&damaged_path));
    assert!(report.contains("Not shown, unreadable: "), "{report}");
    let named = runs
        .iter()
        .filter(|r| report.contains(&r.evaluation_picture(prior).display().to_string()))
        .count();
    assert_eq!(
        named, 2,
        "each variant's missing picture is named with its path"
    );

    // export: the run with unreadable metrics is a row with its id and the problem; the
    // one whose config cannot be read is named as not exported.
    let exported = ws
        .vaelab(&["export", "--to", "runs.csv"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&exported.get_output().stderr).into_owned();
    assert!(
        stderr.contains(&format!("{damaged_path}: damaged")) && stderr.contains("not exported"),
        "{stderr}"
    );
    let metrics_path = broken_metrics.metrics_path().display().to_string();
    assert!(stderr.contains(&metrics_path), "{stderr}");
    let mut table = csv::Reader::from_path(ws.path().join("runs.csv")).unwrap();
    let headers = table.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (id, problem) = (column("id"), column("problem"));
    let rows: Vec<csv::StringRecord> = table.records().map(Result::unwrap).collect();
    assert_eq!(
        rows.len(),
        3,
        "every readable run, the damaged metrics included"
    );
    let broken_row = rows
        .iter()
        .find(|r| !r[id].is_empty() && broken_metrics.id().full().starts_with(&r[id]))
        .expect("the run with damaged metrics is exported");
    assert!(
        broken_row[problem].contains(&metrics_path),
        "{broken_row:?}"
    );

    // gc --apply, given a spec that produces neither damaged run (so "not produced" cannot
    // be what keeps them), names both and leaves them, and every byte in them, alone.
    fn snapshot(dir: &std::path::Path, into: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                snapshot(&path, into);
            } else {
                into.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    let every_file = || {
        let mut files = Vec::new();
        snapshot(broken_config.path(), &mut files);
        snapshot(broken_metrics.path(), &mut files);
        files
    };
    let before = every_file();
    assert!(before.len() > 6, "{} files", before.len());
    let other = ws.write(
        "other.yaml",
        "name: other\nseed: 99\ndata:\n  image_size: 16\n  train_images: 32\n  val_images: 8\nmodel:\n  channels: [4, 8]\ntrain:\n  epochs: 1\n",
    );
    let collected = ws
        .vaelab(&["gc", other.to_str().unwrap(), "--apply"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&collected.get_output().stderr).into_owned();
    assert!(
        stderr.contains(&format!("{damaged_path}: damaged")) && stderr.contains("left alone"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{}: left alone, a file cannot be read",
            broken_metrics.path().display()
        )),
        "{stderr}"
    );
    assert!(every_file() == before, "a damaged run's files changed");
}

/// One status vocabulary: a run stopped mid-way is `partial` in `vaelab status`, `vaelab
/// runs --status partial` finds it (it matched nothing when `runs` read state.json's own
/// word), `export`'s status column says the same, and a word outside the vocabulary is a
/// usage error that lists the allowed ones.
#[test]
fn status_words_are_one_vocabulary_in_status_runs_and_export() {
    let ws = Workspace::new();
    let spec = ws.write("partial.yaml", &crate::common::tiny_spec("partial", 3));
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .env(vaelab::store::crash::CRASH_AT_ENV, "step:2:0")
        .env(vaelab::store::crash::CRASH_SIGNAL_ENV, "INT")
        .assert()
        .code(130);
    let status = ws.vaelab(&["status", "--json"]).output().unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status[0]["standing"]["status"], "partial", "{status}");
    let found = ws
        .vaelab(&["runs", "--json", "--status", "partial"])
        .output()
        .unwrap();
    let found: Vec<serde_json::Value> = serde_json::from_slice(&found.stdout).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["status"], "partial");
    let done = ws
        .vaelab(&["runs", "--json", "--status", "done"])
        .output()
        .unwrap();
    let done: Vec<serde_json::Value> = serde_json::from_slice(&done.stdout).unwrap();
    assert!(done.is_empty());
    ws.vaelab(&["runs", "--status", "interrupted"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "possible values: new, partial, running, failed, not_evaluated, done, damaged",
        ));
}

/// `baseline:` overrides the first variant as the reference; a grid without variants
/// compares every point with the first; one seed gives the one-seed line.
#[test]
fn baselines_follow_the_spec_and_a_grid_without_variants_compares_with_its_first_point() {
    let ws = Workspace::new();
    let tiny = "seed: 3\ndata:\n  image_size: 16\n  train_images: 32\n  val_images: 8\nmodel:\n  channels: [4, 8]\ntrain:\n  epochs: 1\n  batch_size: 16\n";
    let with_baseline = ws.write(
        "b.yaml",
        &format!(
            "name: based\nbaseline: plain\n{tiny}variants:\n  - name: residual\n    model.residual: true\n  - name: plain\n    model.residual: false\n"
        ),
    );
    let grid = ws.write(
        "g.yaml",
        &format!("name: gridded\n{tiny}grid:\n  model.latent_dim: [4, 8]\n"),
    );
    for (spec, name, variant, baseline) in [
        (&with_baseline, "based", "residual", "plain"),
        (&grid, "gridded", "latent_dim=8", "latent_dim=4"),
    ] {
        let spec = spec.to_str().unwrap();
        ws.vaelab(&["run", spec, "--device", "cpu"])
            .assert()
            .success();
        ws.vaelab(&["--report-dir", "report", "report", spec])
            .assert()
            .success();
        let dir = ws.path().join("report").join(name);
        let differences = csv_rows(&dir.join("tables/differences.csv"));
        assert!(!differences.is_empty(), "{name}: no comparison");
        for row in &differences {
            assert_eq!(
                (row["variant"].as_str(), row["baseline"].as_str()),
                (variant, baseline),
                "{name}"
            );
        }
        let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
        assert!(
            report.contains(&format!(
                "against {baseline} (n = 1) — one seed, so no interval; add seeds to judge."
            )),
            "{report}"
        );
    }
}

/// `vaelab export` writes one row per run (flattened config, state, final metrics and the
/// evaluation); read back with polars, every value equals the run's own files.
#[test]
fn export_writes_one_row_per_run_that_polars_reads_back_as_the_runs_files() {
    let ws = Workspace::new();
    let spec = ws.write("sweep.yaml", &tiny_sweep("exp", 1));
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success();
    let parquet = ws.path().join("all.parquet");
    ws.vaelab(&["export", "--to", parquet.to_str().unwrap()])
        .assert()
        .success();
    let frame = read_parquet(&parquet);
    assert_eq!(frame.height(), 4);
    let store = vaelab::store::RunStore::new(ws.runs());
    let ids = frame.column("id").unwrap().str().unwrap().clone();
    for (i, id) in ids.into_iter().enumerate() {
        let id = vaelab::experiment::config::RunId::parse(id.unwrap()).unwrap();
        let run = store.run_dir(&id);
        let config = run.read_config().unwrap().unwrap();
        let value = |name: &str| frame.column(name).unwrap().get(i).unwrap();
        assert_eq!(
            value("config.model.residual"),
            AnyValue::Boolean(config.model.residual)
        );
        assert_eq!(value("config.seed"), AnyValue::Int64(config.seed as i64));
        let last = run.read_metrics().unwrap().pop().unwrap();
        assert_eq!(value("final.val_loss"), AnyValue::Float64(last.val_loss));
        let evaluation = run.read_evaluation().unwrap().unwrap();
        assert_eq!(value("eval.psnr"), AnyValue::Float64(evaluation.psnr));
        assert_eq!(value("status").to_string().trim_matches('"'), "done");
    }
    // CSV: the same columns, one line per run; a spec selects its runs; bad targets say so.
    let csv = ws.path().join("exp.csv");
    ws.vaelab(&[
        "export",
        spec.to_str().unwrap(),
        "--to",
        csv.to_str().unwrap(),
    ])
    .assert()
    .success();
    let rows = csv_rows(&csv);
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0].len(), frame.width());
    // A bare file name is written in the working directory, readable as `File::create`
    // would make it (0666 less the umask), not private to its owner.
    ws.vaelab(&["export", "--to", "runs.parquet"])
        .assert()
        .success();
    let bare = ws.path().join("runs.parquet");
    assert_eq!(read_parquet(&bare).height(), 4);
    let umask = unsafe {
        let mask = libc::umask(0o022);
        libc::umask(mask);
        mask
    };
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&bare).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666 & !umask, "{mode:o}");
    ws.vaelab(&["export", "--to", "x.json"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "expected a .parquet or .csv file",
        ));
}

/// `vaelab runs` finds runs by settings and results, sorts them, and speaks JSON and CSV;
/// a bad field names the allowed ones.
#[test]
fn runs_are_found_by_settings_and_results_and_sorted() {
    let ws = Workspace::new();
    let spec = ws.write("sweep.yaml", &tiny_sweep("find", 1));
    ws.vaelab(&["run", spec.to_str().unwrap(), "--device", "cpu"])
        .assert()
        .success();
    let json = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["runs", "--json"];
        all.extend(args);
        let out = ws.vaelab(&all).assert().success();
        serde_json::from_slice(&out.get_output().stdout).unwrap()
    };
    let residual = json(&["--where", "model.residual=true"]);
    assert_eq!(residual.len(), 2);
    assert!(
        residual
            .iter()
            .all(|r| r["label"].as_str().unwrap().starts_with("residual/"))
    );
    let sorted = json(&["--sort", "psnr", "--status", "done", "--experiment", "find"]);
    let psnr: Vec<f64> = sorted
        .iter()
        .map(|r| r["eval.psnr"].as_f64().unwrap())
        .collect();
    assert_eq!(psnr.len(), 4);
    assert!(psnr.windows(2).all(|w| w[0] <= w[1]), "{psnr:?}");
    let above = json(&["--where", &format!("psnr>{}", psnr[1])]);
    assert_eq!(above.len(), 2, "strictly above the second lowest");
    assert!(json(&["--experiment", "other"]).is_empty());

    let table = ws
        .vaelab(&["runs", "--where", "model.residual=false"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&table.get_output().stdout).into_owned();
    assert_eq!(text.lines().count(), 3, "a header and two runs:\n{text}");
    assert!(
        text.lines().next().unwrap().contains("SEED"),
        "the seeds differ: {text}"
    );
    let csv = ws.vaelab(&["runs", "--csv"]).assert().success();
    assert_eq!(
        String::from_utf8_lossy(&csv.get_output().stdout)
            .lines()
            .count(),
        5
    );
    ws.vaelab(&["runs", "--where", "model.residul=true"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "(did you mean `model.residual`?)",
        ));
}

/// The promise that "every number but the seconds per epoch comes out the same to the last
/// digit": two fresh stores train the same sweep, and every table of their reports
/// (comparison, differences, runs, curves) agrees as text, cell for cell, once the timing
/// columns and the stores' own paths are set aside; so does `report.md` with its date line,
/// its seconds and its paths masked.
#[test]
fn two_fresh_sweeps_report_the_same_numbers_to_the_last_digit() {
    let (first, second) = (Workspace::new(), Workspace::new());
    let (a, b) = (
        trained_report(&first, "twice"),
        trained_report(&second, "twice"),
    );
    let timing =
        |column: &str| column.contains("seconds") || column.contains("_at") || column == "path";
    for table in [
        "tables/comparison.csv",
        "tables/differences.csv",
        "tables/runs.csv",
        "tables/curves.csv",
    ] {
        let (rows_a, rows_b) = (csv_rows(&a.join(table)), csv_rows(&b.join(table)));
        assert!(!rows_a.is_empty(), "{table} has rows");
        assert_eq!(rows_a.len(), rows_b.len(), "{table}");
        let mut compared = 0;
        for (row_a, row_b) in rows_a.iter().zip(&rows_b) {
            assert_eq!(
                row_a.keys().collect::<Vec<_>>(),
                row_b.keys().collect::<Vec<_>>()
            );
            for (column, value) in row_a.iter().filter(|(c, _)| !timing(c)) {
                let other = &row_b[column];
                let (value, other) = (
                    value.replace(&first.path().display().to_string(), "<store>"),
                    other.replace(&second.path().display().to_string(), "<store>"),
                );
                assert_eq!(value, other, "{table}: {column}");
                compared += usize::from(value.parse::<f64>().is_ok());
            }
        }
        assert!(compared >= 10, "{table}: only {compared} numbers compared");
    }
    let masked = |ws: &Workspace, dir: &Path| -> String {
        let text = std::fs::read_to_string(dir.join("report.md")).unwrap();
        let text = text.replace(&ws.path().display().to_string(), "<store>");
        let seconds_column = |line: &str| -> Option<usize> {
            line.split('|').position(|cell| cell.trim() == "s / epoch")
        };
        let mut column = None;
        text.lines()
            .filter(|line| !line.starts_with("Generated "))
            .map(|line| {
                if !line.starts_with('|') {
                    column = None;
                    return line.to_string();
                }
                column = column.or_else(|| seconds_column(line));
                let Some(index) = column else {
                    return line.to_string();
                };
                line.split('|')
                    .enumerate()
                    .map(|(i, cell)| if i == index { " s " } else { cell })
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (text_a, text_b) = (masked(&first, &a), masked(&second, &b));
    for (line_a, line_b) in text_a.lines().zip(text_b.lines()) {
        assert_eq!(line_a, line_b);
    }
    assert_eq!(text_a.lines().count(), text_b.lines().count());
}

/// `report` says the plan's warnings as `run` and `slurm` do (it dropped them): every
/// command gets from a spec to its runs the same way.
#[test]
fn report_says_the_plan_s_warnings() {
    let ws = Workspace::new();
    let text = format!(
        "{}  - name: plain-again\n    model.residual: false\n",
        tiny_sweep("warned", 1)
    );
    let spec = ws.write("warned.yaml", &text);
    ws.vaelab(&["--report-dir", "report", "report", spec.to_str().unwrap()])
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "have the same resolved config; training it once",
        ));
}
