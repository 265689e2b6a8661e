//! The report's figures, drawn from an [`Aggregate`]: loss components per epoch by variant,
//! each run's curves, final metrics with error bars, and KL per latent dimension.
use super::ReportError;
use super::aggregate::{Aggregate, Metric, MetricOf, RunRecord};
use super::figures::{
    self, Figure, ForestPanel, ForestPanels, ForestRow, Line, LinePanel, LinePanels,
};
use crate::experiment::slug;
use crate::store::{Curve, metric_curves};

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
