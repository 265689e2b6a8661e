//! The report's figures, drawn from an [`Aggregate`]: loss components per epoch by variant,
//! each run's curves, final metrics with error bars, and KL per latent dimension.
use super::ReportError;
use super::aggregate::{Aggregate, Group, Metric, MetricOf, RunRecord, Spent};
use super::figures::{
    self, Figure, ForestPanel, ForestPanels, ForestRow, Line, LinePanel, LinePanels,
};
use crate::experiment::slug;
use crate::store::{Curve, metric_curves};

/// One banded line per variant, in its colour, through the points `points` gives it.
fn lines_by_group(agg: &Aggregate, points: impl Fn(&Group) -> Vec<(f64, f64, f64)>) -> Vec<Line> {
    agg.groups
        .iter()
        .enumerate()
        .map(|(g, group)| Line {
            name: group.name.clone(),
            color: figures::color(g),
            dashed: false,
            points: points(group),
            band: true,
        })
        .collect()
}

fn group_lines(agg: &Aggregate, value: MetricOf) -> Vec<Line> {
    lines_by_group(agg, |group| {
        agg.curve(group, value)
            .into_iter()
            .map(|(epoch, s)| (epoch as f64, s.mean, s.std))
            .collect()
    })
}

pub(super) fn variant_curves(agg: &Aggregate) -> Result<Vec<Figure>, ReportError> {
    metric_curves()
        .iter()
        .map(|c| {
            let title = c.quantity.title;
            let mut panels = Vec::new();
            if let Some(train) = c.train {
                panels.push(LinePanel {
                    title: format!("train {title}"),
                    x_label: "epoch".into(),
                    y_label: title.into(),
                    lines: group_lines(agg, train.get),
                });
            }
            panels.push(LinePanel {
                title: format!("validation {title}"),
                x_label: "epoch".into(),
                y_label: title.into(),
                lines: group_lines(agg, c.validation.get),
            });
            figures::render(
                &LinePanels {
                    panels,
                    columns: 2,
                    panel_size: (620, 420),
                },
                &format!("curves-{}", c.quantity.key),
                &format!("{title} per epoch by variant"),
                "Mean over seeds (line) with ±1 standard deviation (band), per epoch, over the runs that reached it.",
            )
        })
        .collect()
}

/// The validation loss of each variant minus its baseline's, per epoch, paired by seed,
/// with its 95% interval: whether an answer at this budget would hold at another.
pub(super) fn gap_per_epoch(agg: &Aggregate) -> Result<Option<Figure>, ReportError> {
    // Each variant keeps its colour from the other figures.
    let compared: Vec<(usize, &Group)> = agg
        .groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.baseline.is_some())
        .collect();
    if compared.is_empty() {
        return Ok(None);
    }
    let mut lines: Vec<Line> = compared
        .iter()
        .map(|&(i, group)| Line {
            name: format!(
                "{} − {}",
                group.name,
                group.baseline.map_or("", |b| agg.groups[b].name.as_str())
            ),
            color: figures::color(i),
            dashed: false,
            points: agg
                .gap_curve(group, |m| m.val_loss)
                .into_iter()
                .map(|(epoch, d)| (epoch as f64, d.mean, d.half_width))
                .collect(),
            band: true,
        })
        .collect();
    let epochs: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .collect();
    let (first, last) = epochs
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &e| (a.min(e), b.max(e)));
    if first <= last {
        lines.push(Line {
            name: "no difference".into(),
            color: plotters::style::RGBColor(110, 110, 110),
            dashed: true,
            points: vec![(first, 0.0, f64::NAN), (last, 0.0, f64::NAN)],
            band: false,
        });
    }
    figures::render(
        &LinePanels {
            panels: vec![LinePanel {
                title: "validation loss, variant − baseline".into(),
                x_label: "epoch".into(),
                y_label: "paired difference".into(),
                lines,
            }],
            columns: 1,
            panel_size: (720, 380),
        },
        "gap-val-loss",
        "The gap to the baseline per epoch",
        "Each variant's validation loss minus its baseline's at the same epoch, paired by seed (mean line, 95% Student-t interval band) over the runs of both that reached it. A band that leaves zero late but not early, or the other way, says the answer depends on the training budget.",
    )
    .map(Some)
}

/// A common unit for a large axis: the value divided by it and the suffix it takes.
fn axis_unit(largest: f64) -> (f64, &'static str) {
    [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
        .into_iter()
        .find(|(unit, _)| largest >= *unit)
        .unwrap_or((1.0, ""))
}

/// Validation loss by variant against what was spent: training images, seconds and
/// training FLOPs, so variants of unequal cost are compared at equal cost.
pub(super) fn cost_curves(agg: &Aggregate) -> Result<Figure, ReportError> {
    type Measure = fn(&Spent) -> f64;
    let measures: [(&str, &str, Measure); 3] = [
        ("by images seen", "training images", |s| s.images),
        ("by time", "seconds (training and validation)", |s| {
            s.seconds
        }),
        ("by training FLOPs", "training FLOPs (3 × forward)", |s| {
            s.training_flops
        }),
    ];
    let panels = measures
        .iter()
        .map(|&(title, label, measure)| {
            let mut lines = lines_by_group(agg, |group| agg.cost_curve(group, measure));
            let largest = lines
                .iter()
                .flat_map(|l| l.points.iter().map(|p| p.0))
                .filter(|x| x.is_finite())
                .fold(0.0, f64::max);
            let (unit, suffix) = axis_unit(largest);
            for line in &mut lines {
                for point in &mut line.points {
                    point.0 /= unit;
                }
            }
            let x_label = if suffix.is_empty() {
                label.to_string()
            } else {
                format!("{label}, {suffix}")
            };
            LinePanel {
                title: format!("validation loss {title}"),
                x_label,
                y_label: "validation loss".into(),
                lines,
            }
        })
        .collect();
    figures::render(
        &LinePanels::in_rows_of_three(panels),
        "curves-loss-by-cost",
        "Validation loss against what training spent",
        "Mean over seeds (line, ±1 standard deviation band) at each epoch, placed at the mean images, seconds and training FLOPs the runs had spent by then. Training FLOPs count three forward passes per image (the backward pass costs about two); runs whose image count is unknown are left out of the images and FLOPs panels.",
    )
}

pub(super) fn run_figure(run: &RunRecord) -> Result<Figure, ReportError> {
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
    // A run's own figure shows the quantities it has both splits of.
    let panels = metric_curves()
        .iter()
        .filter_map(|c: &Curve| {
            let train = c.train?;
            Some(LinePanel {
                title: c.quantity.title.into(),
                x_label: "epoch".into(),
                y_label: c.quantity.title.into(),
                lines: vec![
                    series("train", 0, false, train.get),
                    series("validation", 5, true, c.validation.get),
                ],
            })
        })
        .collect();
    figures::render(
        &LinePanels::in_rows_of_three(panels),
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

pub(super) fn final_metrics(agg: &Aggregate) -> Result<Figure, ReportError> {
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

pub(super) fn kl_per_dimension(agg: &Aggregate) -> Result<Figure, ReportError> {
    let lines = agg
        .groups
        .iter()
        .enumerate()
        .filter_map(|(g, group)| {
            let run = agg.representative(group)?;
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
