//! The report's tables, each a [`Table`] that serves CSV, Markdown and HTML: the CSV files
//! at full precision, and the comparison, differences and runs tables as people read them.
use super::aggregate::{Aggregate, Difference, Metric, MetricOf};
use super::document::Table;
use super::format::{format_p, format_summary, format_value, raw};
use crate::store::metric_curves;

/// `tables/comparison.csv`: per variant, mean, sample std and n of every metric.
pub(super) fn comparison_csv(agg: &Aggregate) -> Table {
    let mut header = vec!["variant".to_string(), "runs".into(), "finished".into()];
    for metric in Metric::ALL {
        header.extend([
            format!("{}_mean", metric.key()),
            format!("{}_std", metric.key()),
            format!("{}_n", metric.key()),
        ]);
    }
    let mut table = Table::new("comparison", header);
    for group in &agg.groups {
        let mut row = vec![
            group.name.clone(),
            group.runs.len().to_string(),
            agg.finished(group).len().to_string(),
        ];
        for metric in Metric::ALL {
            let s = agg.summary(group, metric);
            row.extend([raw(s.mean), raw(s.std), s.n.to_string()]);
        }
        table.rows.push(row);
    }
    table
}

/// `tables/differences.csv`: every paired difference with its 95% interval.
pub(super) fn differences_csv(agg: &Aggregate, differences: &[Difference]) -> Table {
    let mut table = Table::new(
        "differences",
        [
            "variant",
            "baseline",
            "metric",
            "n",
            "mean_difference",
            "std_difference",
            "ci95_low",
            "ci95_high",
            "excludes_zero",
            "p_value",
            "holm_p",
            "holm_significant",
        ],
    );
    for d in differences {
        let x = &d.difference;
        table.rows.push(vec![
            agg.groups[d.group].name.clone(),
            agg.groups[d.baseline].name.clone(),
            d.metric.key().into(),
            x.n.to_string(),
            raw(x.mean),
            raw(x.std),
            raw(x.low()),
            raw(x.high()),
            x.excludes_zero().to_string(),
            raw(x.p_value()),
            raw(d.holm_p),
            d.holm_significant().to_string(),
        ]);
    }
    table
}

/// The per-run metrics of `tables/runs.csv` (epochs are in their own columns).
fn run_metrics() -> impl Iterator<Item = Metric> {
    Metric::ALL.into_iter().filter(|m| *m != Metric::Epochs)
}

/// `tables/runs.csv`: every planned run, its standing and its own metrics.
pub(super) fn runs_csv(agg: &Aggregate) -> Table {
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
    header.extend(run_metrics().map(|m| m.key().to_string()));
    header.extend(["directory".to_string(), "problems".to_string()]);
    let mut table = Table::new("runs", header);
    for (index, r) in agg.runs.iter().enumerate() {
        let group = agg
            .groups
            .iter()
            .find(|g| g.runs.contains(&index))
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
        row.extend(run_metrics().map(|m| raw(r.metric(m))));
        row.push(r.dir.path().display().to_string());
        row.push(r.problems.join("; "));
        table.rows.push(row);
    }
    table
}

/// `tables/curves.csv`: the per-epoch mean and std of every loss component by variant.
pub(super) fn curves_csv(agg: &Aggregate) -> Table {
    let mut table = Table::new(
        "curves",
        ["variant", "split", "component", "epoch", "mean", "std", "n"],
    );
    for group in &agg.groups {
        for c in &metric_curves() {
            let splits: Vec<(&str, MetricOf)> = c
                .train
                .map(|t| ("train", t.get))
                .into_iter()
                .chain([("validation", c.validation.get)])
                .collect();
            for (split, value) in splits {
                for (epoch, s) in agg.curve(group, value) {
                    table.rows.push(vec![
                        group.name.clone(),
                        split.to_string(),
                        c.quantity.key.to_string(),
                        epoch.to_string(),
                        raw(s.mean),
                        raw(s.std),
                        s.n.to_string(),
                    ]);
                }
            }
        }
    }
    table
}

/// The comparison as people read it: `mean ± std` to about four significant digits.
pub(super) fn comparison(agg: &Aggregate) -> Table {
    let metrics = agg.shown(&Metric::ALL);
    let mut header = vec!["variant".to_string(), "n".to_string()];
    header.extend(metrics.iter().map(|m| m.title().to_string()));
    let mut table = Table::new("comparison", header);
    for group in &agg.groups {
        let finished = agg.finished(group).len();
        let mut row = vec![
            group.name.clone(),
            if finished == group.runs.len() {
                finished.to_string()
            } else {
                format!("{finished} of {}", group.runs.len())
            },
        ];
        row.extend(metrics.iter().map(|&m| {
            let s = agg.summary(group, m);
            let text = format_summary(&s, m);
            if s.n != finished && s.n > 0 {
                format!("{text} (n={})", s.n)
            } else {
                text
            }
        }));
        table.rows.push(row);
    }
    table
}

/// The paired differences as people read them.
pub(super) fn differences(agg: &Aggregate, differences: &[Difference]) -> Table {
    let mut table = Table::new(
        "differences",
        [
            "variant",
            "baseline",
            "metric",
            "difference",
            "95% CI",
            "n",
            "Holm p",
        ],
    );
    for d in differences {
        let x = &d.difference;
        let holm = if d.holm_p.is_finite() {
            let mark = if d.holm_significant() { " *" } else { "" };
            format!("{}{mark}", format_p(d.holm_p))
        } else {
            "—".into()
        };
        table.rows.push(vec![
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
            holm,
        ]);
    }
    table
}

/// Every planned run with its standing, as people read it.
pub(super) fn runs(agg: &Aggregate) -> Table {
    let mut table = Table::new(
        "runs",
        [
            "run",
            "id",
            "status",
            "epochs",
            "best val loss",
            "−ELBO (bits/dim)",
            "PSNR (dB)",
            "in comparison",
        ],
    );
    for r in &agg.runs {
        let mut status = r.status();
        if !r.problems.is_empty() {
            status = format!("{status}; {}", r.problems.join("; "));
        }
        table.rows.push(vec![
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
        ]);
    }
    table
}
