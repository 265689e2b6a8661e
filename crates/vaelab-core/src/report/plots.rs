//! The report's figures, drawn from an [`Aggregate`]: loss components per epoch by variant,
//! each run's curves, final metrics with error bars, and KL per latent dimension.
use super::ReportError;
use super::aggregate::{Aggregate, Metric, MetricOf, RunRecord};
use super::figures::{
    self, Figure, ForestPanel, ForestPanels, ForestRow, Line, LinePanel, LinePanels,
};
use crate::experiment::slug;
use crate::store::EpochMetrics;

pub(super) struct Component {
    pub key: &'static str,
    pub title: &'static str,
    pub train: Option<MetricOf>,
    pub val: MetricOf,
}

pub(super) const COMPONENTS: [Component; 4] = [
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

pub(super) fn variant_curves(agg: &Aggregate) -> Result<Vec<Figure>, ReportError> {
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
