//! Turning an [`Aggregate`] into the report's files: the figures (PNG and SVG), the CSV
//! tables, and one [`Document`] written as `report.md` and as a self-contained
//! `index.html`. The report's text is written here once, in [`document`].
use std::path::{Path, PathBuf};

use super::aggregate::{Aggregate, Difference, Metric};
use super::document::{Block, Document, FigureStyle, ParagraphStyle};
use super::figures::Figure;
use super::format::{gap_reading, reading};
use super::visuals::{Visual, visuals};
use super::{ReportError, ReportFiles, html, latex, markdown, plots, tables};
use crate::experiment::config::{Likelihood, choice_name};
use crate::experiment::slug;
use crate::store;

/// The comparisons the report's answer states, in order.
const READING_METRICS: [Metric; 4] = [
    Metric::ElboBpd,
    Metric::BestValLoss,
    Metric::BestValLossEqualCompute,
    Metric::Psnr,
];

/// Everything drawn or copied for a report, before its text is laid out.
struct Content {
    figures: Vec<Figure>,
    run_figures: Vec<Figure>,
    visuals: Vec<Visual>,
    differences: Vec<Difference>,
}

/// What the report says beyond the runs: the spec's description, and a declared
/// question's assessment ([`super::study::Assessment::lines`]; empty without one).
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    pub description: Option<&'a str>,
    pub confirmatory: &'a [String],
}

/// Renders every file of the report.
pub fn render(agg: &Aggregate, context: Context) -> Result<ReportFiles, ReportError> {
    let mut figures = plots::variant_curves(agg)?;
    figures.push(plots::cost_curves(agg)?);
    figures.extend(plots::gap_per_epoch(agg)?);
    figures.push(plots::final_metrics(agg)?);
    figures.push(plots::kl_per_dimension(agg)?);
    let run_figures = agg
        .runs
        .iter()
        .filter(|r| !r.metrics.is_empty())
        .map(plots::run_figure)
        .collect::<Result<Vec<_>, _>>()?;
    let content = Content {
        figures,
        run_figures,
        visuals: visuals(agg),
        differences: agg.differences(),
    };

    let csv_tables = [
        tables::comparison_csv(agg),
        tables::differences_csv(agg, &content.differences),
        tables::runs_csv(agg),
        tables::curves_csv(agg),
    ];
    let mut files: Vec<(PathBuf, Vec<u8>)> = csv_tables
        .iter()
        .map(|t| (PathBuf::from(format!("tables/{}.csv", t.id)), t.to_csv()))
        .collect();
    files.push((
        PathBuf::from("tables/comparison.tex"),
        latex::comparison(agg).into_bytes(),
    ));
    files.push((
        PathBuf::from("tables/differences.tex"),
        latex::differences(agg, &content.differences).into_bytes(),
    ));
    for figure in content.figures.iter().chain(&content.run_figures) {
        let stem = format!("figures/{}", figure.name);
        files.push((PathBuf::from(format!("{stem}.png")), figure.png.clone()));
        files.push((
            PathBuf::from(format!("{stem}.svg")),
            figure.svg.clone().into_bytes(),
        ));
    }
    for cell in content.visuals.iter().flat_map(|v| &v.cells) {
        files.push((cell.path.clone(), cell.png.clone()));
    }
    let doc = document(agg, context, &content);
    files.push((
        PathBuf::from("report.md"),
        markdown::render(&doc).into_bytes(),
    ));
    files.push((PathBuf::from("index.html"), html::render(&doc).into_bytes()));
    Ok(ReportFiles {
        figures: content.figures.len() + content.run_figures.len(),
        tables: csv_tables.len(),
        files,
    })
}

/// The report's text, once, for both writers.
fn document(agg: &Aggregate, context: Context, content: &Content) -> Document {
    let mut doc = Document::new(&agg.experiment);
    if let Some(text) = context.description {
        doc.paragraph(text);
    }
    header(&mut doc, agg);
    let declared = !context.confirmatory.is_empty();
    if declared {
        confirmatory(&mut doc, context.confirmatory);
    }
    answer(&mut doc, agg, &content.differences, declared);
    doc.heading(2, "Comparison");
    doc.paragraph("Mean ± standard deviation over seeds; n counts finished runs.");
    doc.push(Block::Table(tables::comparison(agg)));
    doc.heading(2, "Paired differences against the baseline");
    doc.paragraph(multiplicity_text(&content.differences));
    doc.push(Block::Table(tables::differences(agg, &content.differences)));
    doc.heading(2, "Likelihood and evaluation");
    doc.paragraph(likelihood_text(agg));
    doc.paragraph(evaluation_settings(agg));
    doc.paragraph(sample_quality_protocol(agg));
    doc.heading(2, "Figures");
    for figure in &content.figures {
        doc.push(Block::Figure {
            figure: figure.clone(),
            style: FigureStyle::Titled,
        });
    }
    doc.heading(2, "Visuals");
    for visual in &content.visuals {
        doc.heading(3, visual.title);
        doc.paragraph(&visual.caption);
        doc.push(Block::Gallery {
            subject: visual.title.to_string(),
            cells: visual.cells.clone(),
        });
    }
    doc.heading(2, "Runs");
    doc.push(Block::Table(tables::runs(agg)));
    doc.heading(3, "Loss per epoch, each run");
    for figure in &content.run_figures {
        doc.push(Block::Figure {
            figure: figure.clone(),
            style: FigureStyle::Compact,
        });
    }
    doc
}

/// Which compared runs were trained by which build and hardware, when they differ: their
/// numbers then differ in the last digits for that reason alone.
fn mixed_builds(agg: &Aggregate) -> Option<String> {
    let mut by_build: Vec<(&str, Vec<&str>)> = Vec::new();
    for run in agg.runs.iter().filter(|r| r.finished()) {
        let Some(build) = run.trained_by.as_deref() else {
            continue;
        };
        match by_build.iter_mut().find(|(b, _)| *b == build) {
            Some((_, labels)) => labels.push(&run.planned.label),
            None => by_build.push((build, vec![&run.planned.label])),
        }
    }
    (by_build.len() > 1).then(|| {
        let parts: Vec<String> = by_build
            .iter()
            .map(|(build, labels)| format!("{build}: {}", labels.join(", ")))
            .collect();
        format!(
            "these runs were trained by different builds or hardware, so their numbers differ in the last digits for that reason too — {}.",
            parts.join("; ")
        )
    })
}

/// When and by what the report was made, how many runs it compares, and a note naming
/// every run left out.
fn header(doc: &mut Document, agg: &Aggregate) {
    let left_out = agg.left_out();
    let finished = agg.runs.len() - left_out.len();
    doc.push(Block::Paragraph {
        text: format!(
            "Generated {} by vaelab {}. {} runs: {finished} finished and compared, {} not (listed under Runs).",
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            env!("CARGO_PKG_VERSION"),
            agg.runs.len(),
            left_out.len()
        ),
        style: ParagraphStyle::Meta,
    });
    if !left_out.is_empty() {
        let incomplete = left_out
            .iter()
            .map(|r| format!("{} ({})", r.planned.label, r.status()))
            .collect::<Vec<_>>()
            .join(", ");
        doc.push(Block::Note {
            id: "incomplete",
            label: "Incomplete",
            text: format!("{incomplete} — these are left out of the comparison."),
        });
    }
    if let Some(text) = mixed_builds(agg) {
        doc.push(Block::Note {
            id: "mixed",
            label: "Not comparable to the last digit",
            text,
        });
    }
    if !agg.damaged.is_empty() {
        doc.push(Block::Note {
            id: "damaged",
            label: "Damaged run directories",
            text: format!(
                "{} — which experiment they belong to cannot be told, so they may be runs of this one.",
                agg.damaged.join("; ")
            ),
        });
    }
}

/// The declared question's answer: the only comparisons whose error rate the study
/// controls, over every look it took.
fn confirmatory(doc: &mut Document, lines: &[String]) {
    doc.heading(2, "Confirmatory: the declared question");
    doc.paragraph(
        "Decided by a group-sequential design over the question's looks (repeated confidence \
         intervals with a Wang–Tsiatis boundary, Δ = 0.25, calibrated for the paired t \
         statistic; Bonferroni over the declared comparisons): each comparison's error rate \
         holds however many rounds of seeds were added. \"Adjusted\" is that interval; \
         \"naive\" is the ordinary t interval, valid only for a single look.",
    );
    doc.push(Block::List {
        items: lines.to_vec(),
    });
}

/// One reading per compared variant and metric of [`READING_METRICS`]; exploratory when
/// the spec declares a question.
fn answer(doc: &mut Document, agg: &Aggregate, differences: &[Difference], declared: bool) {
    if declared {
        doc.heading(2, "Exploratory");
        doc.paragraph(
            "Everything from here on is exploratory: ordinary 95% intervals, not adjusted for \
             the study's looks, and Holm's adjustment only over this report's table. Read them \
             as directions, not as answers.",
        );
    } else {
        doc.heading(2, "Answer");
    }
    let mut readings: Vec<String> = READING_METRICS
        .iter()
        .flat_map(|&metric| differences.iter().filter(move |d| d.metric == metric))
        .map(|d| reading(agg, d))
        .collect();
    readings.extend(agg.groups.iter().filter_map(|g| gap_reading(agg, g)));
    if readings.is_empty() {
        doc.paragraph(
            "No variant has a baseline to compare with (one variant only, or no finished pair).",
        );
    } else {
        doc.push(Block::List { items: readings });
    }
}

/// How the differences are read, and which family their adjusted verdicts hold over.
fn multiplicity_text(differences: &[Difference]) -> String {
    let family = differences.first().map_or(0, |d| d.family);
    format!(
        "Variant minus baseline, matched by seed, with a 95% Student-t interval. Each interval \
         holds at 95% on its own; across {family} comparisons some would exclude zero by chance. \
         The Holm p-value adjusts for that (Holm–Bonferroni over the family of every variant × \
         metric in this table that has an interval, {family} in all); * marks a difference that \
         holds at a family-wise 5%."
    )
}

/// Which likelihood each bits/dim column assumes.
fn likelihood_text(agg: &Aggregate) -> String {
    let evaluated_with = |likelihood: Likelihood| {
        agg.runs.iter().any(|r| {
            r.evaluation
                .as_ref()
                .is_some_and(|e| e.likelihood == likelihood)
        })
    };
    let own: Vec<Likelihood> = Likelihood::ALL
        .into_iter()
        .filter(|&l| evaluated_with(l))
        .collect();
    let described: Vec<String> = own
        .iter()
        .map(|&l| {
            format!(
                "{} runs, a {}",
                choice_name(&l),
                store::likelihood_description(l)
            )
        })
        .collect();
    format!(
        "−ELBO and −IWAE use each run's own decoder likelihood ({}). −IWAE calibrated uses {}; it is the number to place next to published VAE results. In all of them {}.",
        if described.is_empty() {
            "no run evaluated yet".to_string()
        } else {
            described.join("; ")
        },
        store::CALIBRATED_LIKELIHOOD,
        store::DISCRETISATION
    )
}

fn evaluation_settings(agg: &Aggregate) -> String {
    agg.runs
        .iter()
        .find_map(|r| r.evaluation.as_ref())
        .map(|e| {
            format!(
                "Evaluation on the {} split ({} images); the importance-weighted bound uses {} samples on the first {} images. Active units: variance over the data of the posterior mean above {}.",
                e.split, e.images, e.iwae_samples, e.iwae_images, store::ACTIVE_UNIT_THRESHOLD
            )
        })
        .unwrap_or_else(|| "No run has been evaluated yet.".into())
}

/// The protocol the FID numbers were made under, or what to do to get them.
fn sample_quality_protocol(agg: &Aggregate) -> String {
    let scored = agg
        .runs
        .iter()
        .filter_map(|r| r.evaluation.as_ref()?.fid.as_ref());
    let mut protocols: Vec<String> = scored
        .map(|f| {
            format!(
                "{} prior samples against {} {} images through the extractor with SHA-256 {}",
                f.samples, f.reference_images, f.reference, f.extractor_sha256
            )
        })
        .collect();
    protocols.sort();
    protocols.dedup();
    if protocols.is_empty() {
        return "No sample-quality metrics: point eval.fid.extractor at the standard inception-2015-12-05.pt (the TorchScript Inception network that clean-fid and StyleGAN2-ADA load; vaelab never downloads it) to add FID, reconstruction FID, KID and precision/recall; finished runs are evaluated again without retraining.".into();
    }
    format!(
        "FID (Fréchet distance of the feature Gaussians, in f64 from a symmetric eigendecomposition), rFID (decoded posterior means of the evaluation images against those images), KID (unbiased MMD² with the cubic kernel, mean over 100 subsets of at most 1000) and precision/recall (k = 3 nearest neighbours; in evaluation.parquet and export) use {}. A FID is only comparable with one made under the same protocol and extractor.",
        protocols.join("; and ")
    )
}

/// Where the report of `experiment` goes under `report_dir`.
pub fn report_path(report_dir: &Path, experiment: &str) -> PathBuf {
    report_dir.join(slug(experiment))
}
