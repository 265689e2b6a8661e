//! Turning an [`Aggregate`] into the report's files: figures, CSV tables, `report.md` and a
//! self-contained `index.html` (every picture inlined, no external script, font or style).
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::aggregate::{Aggregate, Difference, Group, Metric, MetricOf, RunRecord};
use super::figures::{
    self, Figure, ForestPanel, ForestPanels, ForestRow, Line, LinePanel, LinePanels,
};
use super::stats::Summary;
use super::{ReportError, ReportFiles};
use crate::evaluation::{self, ATTRIBUTE_PNG, INTERPOLATION_PNG, PRIOR_PNG, RECONSTRUCTIONS_PNG};
use crate::store::EpochMetrics;

/// Digits after the point for a value of this size: four significant digits or so.
pub fn decimals(value: f64) -> usize {
    match value.abs() {
        v if v >= 1000.0 => 0,
        v if v >= 100.0 => 1,
        v if v >= 10.0 => 2,
        v if v >= 1.0 => 3,
        _ => 4,
    }
}

/// `mean ± std` as the Markdown and HTML tables show it; `—` without data.
pub fn format_summary(summary: &Summary, metric: Metric) -> String {
    if summary.n == 0 || !summary.mean.is_finite() {
        return "—".into();
    }
    let places = metric_decimals(metric, summary.mean);
    if summary.std.is_finite() {
        format!("{:.places$} ± {:.places$}", summary.mean, summary.std)
    } else {
        format!("{:.places$}", summary.mean)
    }
}

/// Counts are shown whole, bounds in bits/dim to the 1e-4 their differences need.
fn metric_decimals(metric: Metric, value: f64) -> usize {
    match metric {
        Metric::Parameters | Metric::Epochs => 0,
        Metric::ActiveUnits => 1,
        Metric::ElboBpd | Metric::IwaeBpd => 4,
        _ => decimals(value),
    }
}

fn format_value(value: f64) -> String {
    if value.is_finite() {
        format!("{:.*}", decimals(value), value)
    } else {
        "—".into()
    }
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A file-name-safe form of a label.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() { "all".into() } else { out }
}

fn csv_bytes(header: &[String], rows: &[Vec<String>]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    // Writing into memory cannot fail.
    let _ = writer.write_record(header);
    for row in rows {
        let _ = writer.write_record(row);
    }
    writer.into_inner().unwrap_or_default()
}

fn raw(value: f64) -> String {
    if value.is_finite() {
        value.to_string()
    } else {
        String::new()
    }
}

struct Component {
    key: &'static str,
    title: &'static str,
    train: Option<MetricOf>,
    val: MetricOf,
}

const COMPONENTS: [Component; 4] = [
    Component {
        key: "loss",
        title: "total loss",
        train: Some(|m: &EpochMetrics| m.train_loss),
        val: |m: &EpochMetrics| m.val_loss,
    },
    Component {
        key: "recon",
        title: "reconstruction (sum of squares)",
        train: Some(|m: &EpochMetrics| m.train_recon),
        val: |m: &EpochMetrics| m.val_recon,
    },
    Component {
        key: "kl",
        title: "KL (nats)",
        train: Some(|m: &EpochMetrics| m.train_kl),
        val: |m: &EpochMetrics| m.val_kl,
    },
    Component {
        key: "psnr",
        title: "PSNR (dB)",
        train: None,
        val: |m: &EpochMetrics| m.val_psnr,
    },
];

fn group_lines(agg: &Aggregate, value: MetricOf) -> Vec<Line> {
    agg.groups
        .iter()
        .enumerate()
        .map(|(g, group)| Line {
            name: group.name.clone(),
            color: figures::color(g),
            dashed: false,
            points: agg
                .curve(group, value)
                .into_iter()
                .map(|(epoch, s)| (epoch as f64, s.mean, s.std))
                .collect(),
            band: true,
        })
        .collect()
}

fn variant_curves(agg: &Aggregate) -> Result<Vec<Figure>, ReportError> {
    COMPONENTS
        .iter()
        .map(|c| {
            let mut panels = Vec::new();
            if let Some(train) = c.train {
                panels.push(LinePanel {
                    title: format!("train {}", c.title),
                    x_label: "epoch".into(),
                    y_label: c.title.into(),
                    lines: group_lines(agg, train),
                });
            }
            panels.push(LinePanel {
                title: format!("validation {}", c.title),
                x_label: "epoch".into(),
                y_label: c.title.into(),
                lines: group_lines(agg, c.val),
            });
            figures::render(
                &LinePanels {
                    panels,
                    columns: 2,
                    panel_size: (620, 420),
                },
                &format!("curves-{}", c.key),
                &format!("{} per epoch by variant", c.title),
                "Mean over seeds (line) with ±1 standard deviation (band), per epoch, over the runs that reached it.",
            )
        })
        .collect()
}

fn run_figure(run: &RunRecord) -> Result<Figure, ReportError> {
    let series = |name: &str, color: usize, dashed: bool, value: MetricOf| Line {
        name: name.into(),
        color: figures::color(color),
        dashed,
        points: run
            .metrics
            .iter()
            .map(|m| (m.epoch as f64, value(m), f64::NAN))
            .collect(),
        band: false,
    };
    let panels = COMPONENTS[..3]
        .iter()
        .map(|c| LinePanel {
            title: c.title.into(),
            x_label: "epoch".into(),
            y_label: c.title.into(),
            lines: vec![
                series("train", 0, false, c.train.unwrap_or(c.val)),
                series("validation", 5, true, c.val),
            ],
        })
        .collect();
    figures::render(
        &LinePanels {
            panels,
            columns: 3,
            panel_size: (430, 320),
        },
        &format!("run-{}", slug(&run.planned.label)),
        &format!(
            "{} [{}] ({})",
            run.planned.label,
            run.planned.id.short(),
            run.status()
        ),
        "Train (solid) and validation (dashed) loss per epoch.",
    )
}

const FOREST_METRICS: [Metric; 6] = [
    Metric::BestValLoss,
    Metric::ElboBpd,
    Metric::IwaeBpd,
    Metric::Psnr,
    Metric::Ssim,
    Metric::ActiveUnits,
];

fn final_metrics(agg: &Aggregate) -> Result<Figure, ReportError> {
    let panels = FOREST_METRICS
        .iter()
        .map(|&metric| ForestPanel {
            title: metric.title().into(),
            rows: agg
                .groups
                .iter()
                .enumerate()
                .map(|(g, group)| ForestRow {
                    name: group.name.clone(),
                    color: figures::color(g),
                    summary: agg.summary(group, metric),
                    values: agg
                        .finished(group)
                        .iter()
                        .map(|r| r.metric(metric))
                        .collect(),
                })
                .collect(),
        })
        .collect();
    figures::render(
        &ForestPanels { panels, columns: 3 },
        "final-metrics",
        "Final metrics by variant",
        "Mean (filled dot) ± 1 standard deviation over seeds; rings are single runs. Finished runs only.",
    )
}

fn kl_per_dimension(agg: &Aggregate) -> Result<Figure, ReportError> {
    let lines = agg
        .groups
        .iter()
        .enumerate()
        .filter_map(|(g, group)| {
            let run = representative(agg, group)?;
            let mut kl = run.latent.as_ref()?.kl.clone();
            kl.sort_by(|a, b| b.total_cmp(a));
            Some(Line {
                name: format!("{} (seed {})", group.name, run.seed),
                color: figures::color(g),
                dashed: false,
                points: kl
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| ((i + 1) as f64, v, f64::NAN))
                    .collect(),
                band: false,
            })
        })
        .collect();
    figures::render(
        &LinePanels {
            panels: vec![LinePanel {
                title: "KL per latent dimension, largest first".into(),
                x_label: "rank of dimension".into(),
                y_label: "KL (nats)".into(),
                lines,
            }],
            columns: 1,
            panel_size: (760, 400),
        },
        "kl-per-dimension",
        "KL per latent dimension",
        "Mean KL over the evaluation images of each latent dimension, sorted; dimensions near zero carry no information.",
    )
}

/// The run whose pictures stand for a group: its first finished run, else any evaluated one.
fn representative<'a>(agg: &'a Aggregate, group: &Group) -> Option<&'a RunRecord> {
    agg.finished(group).into_iter().next().or_else(|| {
        group
            .runs
            .iter()
            .map(|&i| &agg.runs[i])
            .find(|r| r.evaluation.is_some())
    })
}

struct Visual {
    title: &'static str,
    caption: String,
    /// Per group: (relative path in the report, bytes, caption under the picture).
    cells: Vec<(String, PathBuf, Vec<u8>, String)>,
}

fn visuals(agg: &Aggregate) -> Vec<Visual> {
    let attribute = agg
        .runs
        .iter()
        .find_map(|r| r.evaluation.as_ref().and_then(|e| e.attribute.clone()));
    let kinds: [(&str, &'static str, String); 4] = [
        (
            RECONSTRUCTIONS_PNG,
            "Reconstructions",
            "Top row: the first evaluation images; bottom row: decoded from their posterior means.".into(),
        ),
        (
            PRIOR_PNG,
            "Samples from the prior",
            "The same standard-normal draws (fixed by the dataset seed) decoded by every variant.".into(),
        ),
        (
            INTERPOLATION_PNG,
            "Latent interpolation",
            "Each row: a face, eight decodings along the straight line between the two posterior means, the other face.".into(),
        ),
        (
            ATTRIBUTE_PNG,
            "Attribute direction",
            format!(
                "Each row: a face without the attribute, then its code plus {} × the direction (mean code with {} minus mean code without), decoded.",
                evaluation::ATTRIBUTE_STRENGTHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                attribute.as_deref().unwrap_or("the attribute")
            ),
        ),
    ];
    let mut out = Vec::new();
    for (file, title, caption) in kinds {
        let cells: Vec<_> = agg
            .groups
            .iter()
            .filter_map(|group| {
                let run = representative(agg, group)?;
                let path = run.dir.join("evaluation").join(file);
                let bytes = std::fs::read(&path).ok()?;
                Some((
                    group.name.clone(),
                    PathBuf::from("visuals").join(slug(&group.name)).join(file),
                    bytes,
                    format!("seed {}", run.seed),
                ))
            })
            .collect();
        if !cells.is_empty() {
            out.push(Visual {
                title,
                caption: caption.clone(),
                cells,
            });
        }
    }
    // The fixed noise the trainer decodes after every epoch, at up to six epochs.
    let mut cells = Vec::new();
    for group in &agg.groups {
        let Some(run) = representative(agg, group).or_else(|| {
            group
                .runs
                .iter()
                .map(|&i| &agg.runs[i])
                .find(|r| !r.metrics.is_empty())
        }) else {
            continue;
        };
        let epochs: Vec<u32> = run.metrics.iter().map(|m| m.epoch).collect();
        let picked: Vec<u32> = if epochs.len() <= 6 {
            epochs
        } else {
            (0..6).map(|i| epochs[i * (epochs.len() - 1) / 5]).collect()
        };
        for epoch in picked {
            let name = format!("epoch-{epoch:04}-prior.png");
            if let Ok(bytes) = std::fs::read(run.dir.join("samples").join(&name)) {
                cells.push((
                    group.name.clone(),
                    PathBuf::from("visuals").join(slug(&group.name)).join(&name),
                    bytes,
                    format!("epoch {epoch}, seed {}", run.seed),
                ));
            }
        }
    }
    if !cells.is_empty() {
        out.push(Visual {
            title: "Fixed noise across epochs",
            caption: "The same 16 draws decoded after each epoch (the run's own noise), from the first epoch to the last.".into(),
            cells,
        });
    }
    out
}

/// One reading per compared group: the answer to "does this variant beat the baseline?".
pub fn reading(agg: &Aggregate, d: &Difference) -> String {
    let group = &agg.groups[d.group].name;
    let baseline = &agg.groups[d.baseline].name;
    let x = &d.difference;
    let metric = d.metric;
    if x.n == 0 {
        return format!(
            "{group} vs {baseline}: no finished pair of runs yet for {}.",
            metric.phrase()
        );
    }
    let spread = if x.half_width.is_finite() {
        x.half_width
    } else {
        0.0
    };
    let places = decimals(x.mean.abs().max(spread));
    let verb = if x.mean > 0.0 {
        "raises"
    } else if x.mean < 0.0 {
        "lowers"
    } else {
        "leaves unchanged"
    };
    let amount = if x.half_width.is_finite() {
        format!(
            "{:.places$} ± {:.places$}{}",
            x.mean.abs(),
            x.half_width,
            metric.unit()
        )
    } else {
        format!("{:.places$}{}", x.mean.abs(), metric.unit())
    };
    let verdict = if !x.half_width.is_finite() {
        " — one seed, so no interval; add seeds to judge".to_string()
    } else if x.excludes_zero() {
        let better = (x.mean < 0.0) != metric.higher_is_better();
        format!(
            " — {}: the 95% interval excludes zero",
            if better { "better" } else { "worse" }
        )
    } else {
        " — no detectable difference: the 95% interval includes zero".into()
    };
    let basis = if x.half_width.is_finite() {
        format!("95% CI over seeds, n = {}", x.n)
    } else {
        format!("n = {}", x.n)
    };
    format!(
        "{group} {verb} {} by {amount} against {baseline} ({basis}){verdict}.",
        metric.phrase()
    )
}

const READING_METRICS: [Metric; 3] = [Metric::ElboBpd, Metric::BestValLoss, Metric::Psnr];

struct Tables {
    comparison_header: Vec<String>,
    comparison_rows: Vec<Vec<String>>,
    differences: Vec<Difference>,
}

fn comparison_cells(agg: &Aggregate) -> Tables {
    let mut header = vec!["variant".to_string(), "runs".into(), "finished".into()];
    for metric in Metric::ALL {
        header.extend([
            format!("{}_mean", metric.key()),
            format!("{}_std", metric.key()),
            format!("{}_n", metric.key()),
        ]);
    }
    let rows = agg
        .groups
        .iter()
        .map(|group| {
            let mut row = vec![
                group.name.clone(),
                group.runs.len().to_string(),
                agg.finished(group).len().to_string(),
            ];
            for metric in Metric::ALL {
                let s = agg.summary(group, metric);
                row.extend([raw(s.mean), raw(s.std), s.n.to_string()]);
            }
            row
        })
        .collect();
    Tables {
        comparison_header: header,
        comparison_rows: rows,
        differences: agg.differences(),
    }
}

fn difference_csv(agg: &Aggregate, differences: &[Difference]) -> Vec<u8> {
    let header: Vec<String> = [
        "variant",
        "baseline",
        "metric",
        "n",
        "mean_difference",
        "std_difference",
        "ci95_low",
        "ci95_high",
        "excludes_zero",
    ]
    .map(String::from)
    .to_vec();
    let rows: Vec<Vec<String>> = differences
        .iter()
        .map(|d| {
            let x = &d.difference;
            vec![
                agg.groups[d.group].name.clone(),
                agg.groups[d.baseline].name.clone(),
                d.metric.key().into(),
                x.n.to_string(),
                raw(x.mean),
                raw(x.std),
                raw(x.low()),
                raw(x.high()),
                x.excludes_zero().to_string(),
            ]
        })
        .collect();
    csv_bytes(&header, &rows)
}

fn runs_csv(agg: &Aggregate) -> Vec<u8> {
    let mut header: Vec<String> = [
        "id",
        "label",
        "variant",
        "seed",
        "status",
        "epochs_done",
        "epochs_target",
        "in_comparison",
    ]
    .map(String::from)
    .to_vec();
    header.extend(
        Metric::ALL
            .iter()
            .filter(|m| **m != Metric::Epochs)
            .map(|m| m.key().to_string()),
    );
    header.extend(["directory".to_string(), "problems".to_string()]);
    let rows: Vec<Vec<String>> = agg
        .runs
        .iter()
        .map(|r| {
            let group = agg
                .groups
                .iter()
                .find(|g| {
                    g.runs
                        .iter()
                        .any(|&i| agg.runs[i].planned.id == r.planned.id)
                })
                .map(|g| g.name.clone())
                .unwrap_or_default();
            let mut row = vec![
                r.planned.id.dir_name().to_string(),
                r.planned.label.clone(),
                group,
                r.seed.to_string(),
                r.status(),
                r.standing.epochs_done().to_string(),
                r.planned.config.train.epochs.to_string(),
                r.finished().to_string(),
            ];
            row.extend(
                Metric::ALL
                    .iter()
                    .filter(|m| **m != Metric::Epochs)
                    .map(|&m| raw(r.metric(m))),
            );
            row.push(r.dir.display().to_string());
            row.push(r.problems.join("; "));
            row
        })
        .collect();
    csv_bytes(&header, &rows)
}

fn curves_csv(agg: &Aggregate) -> Vec<u8> {
    let header: Vec<String> = ["variant", "split", "component", "epoch", "mean", "std", "n"]
        .map(String::from)
        .to_vec();
    let mut rows = Vec::new();
    for group in &agg.groups {
        for c in &COMPONENTS {
            let splits: Vec<(&str, MetricOf)> = c
                .train
                .map(|t| ("train", t))
                .into_iter()
                .chain([("validation", c.val)])
                .collect();
            for (split, value) in splits {
                for (epoch, s) in agg.curve(group, value) {
                    rows.push(vec![
                        group.name.clone(),
                        split.to_string(),
                        c.key.to_string(),
                        epoch.to_string(),
                        raw(s.mean),
                        raw(s.std),
                        s.n.to_string(),
                    ]);
                }
            }
        }
    }
    csv_bytes(&header, &rows)
}

/// Columns of the comparison table in Markdown and HTML.
const TABLE_METRICS: [Metric; 12] = Metric::ALL;

fn comparison_table_cells(agg: &Aggregate) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = vec!["variant".to_string(), "n".to_string()];
    header.extend(TABLE_METRICS.iter().map(|m| m.title().to_string()));
    let rows = agg
        .groups
        .iter()
        .map(|group| {
            let finished = agg.finished(group).len();
            let mut row = vec![
                group.name.clone(),
                if finished == group.runs.len() {
                    finished.to_string()
                } else {
                    format!("{finished} of {}", group.runs.len())
                },
            ];
            row.extend(TABLE_METRICS.iter().map(|&m| {
                let s = agg.summary(group, m);
                let text = format_summary(&s, m);
                if s.n != finished && s.n > 0 {
                    format!("{text} (n={})", s.n)
                } else {
                    text
                }
            }));
            row
        })
        .collect();
    (header, rows)
}

fn difference_table_cells(
    agg: &Aggregate,
    differences: &[Difference],
) -> (Vec<String>, Vec<Vec<String>>) {
    let header = ["variant", "baseline", "metric", "difference", "95% CI", "n"]
        .map(String::from)
        .to_vec();
    let rows = differences
        .iter()
        .map(|d| {
            let x = &d.difference;
            vec![
                agg.groups[d.group].name.clone(),
                agg.groups[d.baseline].name.clone(),
                d.metric.title().to_string(),
                format_value(x.mean),
                if x.half_width.is_finite() {
                    format!("{} to {}", format_value(x.low()), format_value(x.high()))
                } else {
                    "—".into()
                },
                x.n.to_string(),
            ]
        })
        .collect();
    (header, rows)
}

fn runs_table_cells(agg: &Aggregate) -> (Vec<String>, Vec<Vec<String>>) {
    let header = [
        "run",
        "id",
        "status",
        "epochs",
        "best val loss",
        "−ELBO (bits/dim)",
        "PSNR (dB)",
        "in comparison",
    ]
    .map(String::from)
    .to_vec();
    let rows = agg
        .runs
        .iter()
        .map(|r| {
            let mut status = r.status();
            if !r.problems.is_empty() {
                status = format!("{status}; {}", r.problems.join("; "));
            }
            vec![
                r.planned.label.clone(),
                r.planned.id.short().to_string(),
                status,
                format!(
                    "{}/{}",
                    r.standing.epochs_done(),
                    r.planned.config.train.epochs
                ),
                format_value(r.metric(Metric::BestValLoss)),
                format_value(r.metric(Metric::ElboBpd)),
                format_value(r.metric(Metric::Psnr)),
                if r.finished() { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    (header, rows)
}

fn markdown_table(header: &[String], rows: &[Vec<String>]) -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let mut out = format!(
        "| {} |\n|{}\n",
        header
            .iter()
            .map(|h| cell(h))
            .collect::<Vec<_>>()
            .join(" | "),
        header.iter().map(|_| "---|").collect::<String>()
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} |",
            row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
        );
    }
    out
}

fn html_table(id: &str, header: &[String], rows: &[Vec<String>]) -> String {
    let mut out = format!("<table id=\"{id}\">\n<thead><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for c in row {
            let _ = write!(out, "<td>{}</td>", escape(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    out
}

fn data_uri(png: &[u8]) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

/// A figure inlined as PNG, with `heading` (HTML) before its caption and a link to its SVG.
fn html_figure(figure: &Figure, heading: &str) -> String {
    format!(
        "<figure id=\"{}\"><img src=\"{}\" alt=\"{}\"><figcaption>{heading} {} <a href=\"figures/{}.svg\">SVG</a></figcaption></figure>\n",
        figure.name,
        data_uri(&figure.png),
        escape(&figure.title),
        escape(&figure.caption),
        figure.name
    )
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1320px;padding:0 1rem;color:#1a1a1a;line-height:1.45}\
h1{margin-bottom:.2rem}h2{margin-top:2.4rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}\
table{border-collapse:collapse;margin:1rem 0;font-size:.88rem;display:block;overflow-x:auto}\
th,td{border:1px solid #ddd;padding:.3rem .5rem;text-align:right;white-space:nowrap}\
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}\
figure{margin:1.2rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}\
figcaption{font-size:.85rem;color:#555}.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.6rem 1rem}\
.readings li{margin:.3rem 0}.cells{display:flex;flex-wrap:wrap;gap:1rem}\
.cell{text-align:center;font-size:.85rem}.cell img{image-rendering:pixelated;width:100%;min-width:180px;max-width:420px}\
.meta{color:#666;font-size:.85rem}";

/// Renders every file of the report.
pub fn render(agg: &Aggregate, description: Option<&str>) -> Result<ReportFiles, ReportError> {
    let mut figures_out = variant_curves(agg)?;
    figures_out.push(final_metrics(agg)?);
    figures_out.push(kl_per_dimension(agg)?);
    let run_figures: Vec<Figure> = agg
        .runs
        .iter()
        .filter(|r| !r.metrics.is_empty())
        .map(run_figure)
        .collect::<Result<_, _>>()?;

    let tables = comparison_cells(agg);
    let mut files: Vec<(PathBuf, Vec<u8>)> = vec![
        (
            PathBuf::from("tables/comparison.csv"),
            csv_bytes(&tables.comparison_header, &tables.comparison_rows),
        ),
        (
            PathBuf::from("tables/differences.csv"),
            difference_csv(agg, &tables.differences),
        ),
        (PathBuf::from("tables/runs.csv"), runs_csv(agg)),
        (PathBuf::from("tables/curves.csv"), curves_csv(agg)),
    ];
    let table_count = files.len();
    for figure in figures_out.iter().chain(&run_figures) {
        files.push((
            PathBuf::from(format!("figures/{}.png", figure.name)),
            figure.png.clone(),
        ));
        files.push((
            PathBuf::from(format!("figures/{}.svg", figure.name)),
            figure.svg.clone().into_bytes(),
        ));
    }
    let visuals = visuals(agg);
    for visual in &visuals {
        for (_, path, bytes, _) in &visual.cells {
            files.push((path.clone(), bytes.clone()));
        }
    }

    let readings: Vec<String> = READING_METRICS
        .iter()
        .flat_map(|&metric| {
            tables
                .differences
                .iter()
                .filter(move |d| d.metric == metric)
        })
        .map(|d| reading(agg, d))
        .collect();
    let (comparison_header, comparison_rows) = comparison_table_cells(agg);
    let (difference_header, difference_rows) = difference_table_cells(agg, &tables.differences);
    let (runs_header, runs_rows) = runs_table_cells(agg);
    let left_out = agg.left_out();
    let finished = agg.runs.len() - left_out.len();
    let incomplete = left_out
        .iter()
        .map(|r| format!("{} ({})", r.planned.label, r.status()))
        .collect::<Vec<_>>()
        .join(", ");
    let generated = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let likelihood = evaluation::LIKELIHOOD;
    let settings = agg
        .runs
        .iter()
        .find_map(|r| r.evaluation.as_ref())
        .map(|e| {
            format!(
                "Evaluation on the {} split ({} images); the importance-weighted bound uses {} samples on the first {} images. Active units: variance over the data of the posterior mean above {}.",
                e.split, e.images, e.iwae_samples, e.iwae_images, evaluation::ACTIVE_UNIT_THRESHOLD
            )
        })
        .unwrap_or_else(|| "No run has been evaluated yet.".into());
    let status_line = format!(
        "{} runs: {finished} finished and compared, {} not (listed under Runs).",
        agg.runs.len(),
        left_out.len()
    );

    // Markdown.
    let mut md = format!("# {}\n\n", agg.experiment);
    if let Some(text) = description {
        let _ = writeln!(md, "{text}\n");
    }
    let _ = writeln!(
        md,
        "Generated {generated} by vaelab {}. {status_line}\n",
        env!("CARGO_PKG_VERSION")
    );
    if !left_out.is_empty() {
        let _ = writeln!(
            md,
            "> **Incomplete:** {incomplete} — these are left out of the comparison.\n"
        );
    }
    md.push_str("## Answer\n\n");
    if readings.is_empty() {
        md.push_str("No variant has a baseline to compare with (one variant only, or no finished pair).\n\n");
    }
    for line in &readings {
        let _ = writeln!(md, "- {line}");
    }
    let _ = writeln!(
        md,
        "\n## Comparison\n\nMean ± standard deviation over seeds; n counts finished runs.\n\n{}",
        markdown_table(&comparison_header, &comparison_rows)
    );
    let _ = writeln!(
        md,
        "## Paired differences against the baseline\n\nVariant minus baseline, matched by seed, with a 95% Student-t interval.\n\n{}",
        markdown_table(&difference_header, &difference_rows)
    );
    let _ = writeln!(
        md,
        "## Likelihood and evaluation\n\n{likelihood}. {settings}\n"
    );
    md.push_str("## Figures\n\n");
    for figure in &figures_out {
        let _ = writeln!(
            md,
            "### {}\n\n![{}](figures/{}.png)\n\n{} ([SVG](figures/{}.svg))\n",
            figure.title, figure.title, figure.name, figure.caption, figure.name
        );
    }
    md.push_str("## Visuals\n\n");
    for visual in &visuals {
        let _ = writeln!(md, "### {}\n\n{}\n", visual.title, visual.caption);
        for (group, path, _, caption) in &visual.cells {
            let _ = writeln!(
                md,
                "**{group}** ({caption})\n\n![{group}]({})\n",
                path.display()
            );
        }
    }
    md.push_str("## Runs\n\n");
    md.push_str(&markdown_table(&runs_header, &runs_rows));
    md.push_str("\n### Loss per epoch, each run\n\n");
    for figure in &run_figures {
        let _ = writeln!(md, "![{}](figures/{}.png)\n", figure.title, figure.name);
    }

    // HTML: the same content, every picture inlined.
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{} — vaelab report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&agg.experiment),
        escape(&agg.experiment)
    );
    if let Some(text) = description {
        let _ = writeln!(html, "<p>{}</p>", escape(text));
    }
    let _ = writeln!(
        html,
        "<p class=\"meta\">Generated {generated} by vaelab {}. {}</p>",
        env!("CARGO_PKG_VERSION"),
        escape(&status_line)
    );
    if !left_out.is_empty() {
        let _ = writeln!(
            html,
            "<p class=\"note\" id=\"incomplete\"><strong>Incomplete:</strong> {} — these are left out of the comparison.</p>",
            escape(&incomplete)
        );
    }
    html.push_str("<h2>Answer</h2>\n<ul class=\"readings\">\n");
    if readings.is_empty() {
        html.push_str("<li>No variant has a baseline to compare with (one variant only, or no finished pair).</li>\n");
    }
    for line in &readings {
        let _ = writeln!(html, "<li>{}</li>", escape(line));
    }
    html.push_str("</ul>\n<h2>Comparison</h2>\n<p>Mean ± standard deviation over seeds; n counts finished runs.</p>\n");
    html.push_str(&html_table(
        "comparison",
        &comparison_header,
        &comparison_rows,
    ));
    html.push_str("<h2>Paired differences against the baseline</h2>\n<p>Variant minus baseline, matched by seed, with a 95% Student-t interval.</p>\n");
    html.push_str(&html_table(
        "differences",
        &difference_header,
        &difference_rows,
    ));
    let _ = writeln!(
        html,
        "<h2>Likelihood and evaluation</h2>\n<p>{}. {}</p>",
        escape(likelihood),
        escape(&settings)
    );
    html.push_str("<h2>Figures</h2>\n");
    for figure in &figures_out {
        html.push_str(&html_figure(
            figure,
            &format!("<strong>{}.</strong>", escape(&figure.title)),
        ));
    }
    html.push_str("<h2>Visuals</h2>\n");
    for visual in &visuals {
        let _ = writeln!(
            html,
            "<h3>{}</h3>\n<p>{}</p>\n<div class=\"cells\">",
            escape(visual.title),
            escape(&visual.caption)
        );
        for (group, _, bytes, caption) in &visual.cells {
            let _ = writeln!(
                html,
                "<figure class=\"cell\"><img src=\"{}\" alt=\"{} {}\"><figcaption><strong>{}</strong> ({})</figcaption></figure>",
                data_uri(bytes),
                escape(group),
                escape(visual.title),
                escape(group),
                escape(caption)
            );
        }
        html.push_str("</div>\n");
    }
    html.push_str("<h2>Runs</h2>\n");
    html.push_str(&html_table("runs", &runs_header, &runs_rows));
    html.push_str("<h3>Loss per epoch, each run</h3>\n");
    for figure in &run_figures {
        html.push_str(&html_figure(figure, &escape(&figure.title)));
    }
    html.push_str("</body>\n</html>\n");

    files.push((PathBuf::from("report.md"), md.into_bytes()));
    files.push((PathBuf::from("index.html"), html.into_bytes()));
    Ok(ReportFiles {
        figures: figures_out.len() + run_figures.len(),
        tables: table_count,
        files,
    })
}

/// Where the report of `experiment` goes under `report_dir`.
pub fn report_path(report_dir: &Path, experiment: &str) -> PathBuf {
    report_dir.join(slug(experiment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_are_formatted_to_about_four_significant_digits() {
        let s = Summary::of(&[98.4, 98.3]);
        assert_eq!(format_summary(&s, Metric::BestValLoss), "98.35 ± 0.07");
        let one = Summary::of(&[0.61234]);
        assert_eq!(format_summary(&one, Metric::Ssim), "0.6123");
        assert_eq!(format_summary(&Summary::of(&[]), Metric::Ssim), "—");
        let params = Summary::of(&[16_584_259.0, 16_584_259.0]);
        assert_eq!(format_summary(&params, Metric::Parameters), "16584259 ± 0");
    }

    #[test]
    fn slugs_and_escapes() {
        assert_eq!(
            slug("plain/latent_dim=64/seed=0"),
            "plain-latent_dim-64-seed-0"
        );
        assert_eq!(slug("///"), "all");
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }

    #[test]
    fn markdown_tables_escape_pipes() {
        let table = markdown_table(&["a".into(), "b".into()], &[vec!["x|y".into(), "1".into()]]);
        assert_eq!(table, "| a | b |\n|---|---|\n| x\\|y | 1 |\n");
    }
}
