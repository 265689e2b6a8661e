//! How numbers read in the report: significant digits per metric, `mean ± std`, the raw
//! full-precision form of the CSV files, and the one-line answer per comparison.
use super::aggregate::{Aggregate, Difference, Group, Metric};
use super::stats::{PairedDifference, Summary};

/// Digits after the point for a value of this size: four significant digits or so.
pub(super) fn decimals(value: f64) -> usize {
    match value.abs() {
        v if v >= 1000.0 => 0,
        v if v >= 100.0 => 1,
        v if v >= 10.0 => 2,
        v if v >= 1.0 => 3,
        _ => 4,
    }
}

/// `mean ± std` as the Markdown and HTML tables show it; `—` without data.
pub(super) fn format_summary(summary: &Summary, metric: Metric) -> String {
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
        Metric::ElboBpd | Metric::IwaeBpd | Metric::CalibratedIwaeBpd => 4,
        _ => decimals(value),
    }
}

pub(super) fn format_value(value: f64) -> String {
    if value.is_finite() {
        format!("{:.*}", decimals(value), value)
    } else {
        "—".into()
    }
}

pub(super) fn raw(value: f64) -> String {
    if value.is_finite() {
        value.to_string()
    } else {
        String::new()
    }
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
        let power = match x.seeds_to_resolve() {
            Some(n) => format!(
                "; at the observed spread about {n} seeds would resolve a difference this size"
            ),
            None => "; at the observed spread no feasible number of seeds would resolve it".into(),
        };
        format!(" — no detectable difference: the 95% interval includes zero{power}")
    };
    let basis = if x.half_width.is_finite() {
        format!("95% CI over seeds, n = {}", x.n)
    } else {
        format!("n = {}", x.n)
    };
    let adjusted = if d.holm_p.is_finite() && d.family > 1 {
        format!(
            " Holm-adjusted over the report's {} comparisons: p = {}, {}.",
            d.family,
            format_p(d.holm_p),
            if d.holm_significant() {
                "significant at a family-wise 5%"
            } else {
                "not significant at a family-wise 5%"
            }
        )
    } else {
        String::new()
    };
    format!(
        "{group} {verb} {} by {amount} against {baseline} ({basis}){verdict}.{adjusted}",
        metric.phrase()
    )
}

/// How `group`'s validation-loss gap to its baseline moves from its first epoch to its
/// last, each with its 95% interval: "narrows from 41 ± 9 at epoch 1 to 12 ± 6 at epoch
/// 30". None without a baseline or with fewer than two paired epochs.
pub(super) fn gap_reading(agg: &Aggregate, group: &Group) -> Option<String> {
    let b = group.baseline?;
    let gap = agg.gap_curve(group, |m| m.val_loss);
    let (first, last) = (gap.first()?, gap.last()?);
    if first.0 == last.0 {
        return None;
    }
    let at = |(epoch, d): &(u32, PairedDifference)| {
        let places = decimals(d.mean.abs().max(d.half_width.abs()));
        if d.half_width.is_finite() {
            format!(
                "{:+.places$} ± {:.places$} at epoch {epoch}",
                d.mean, d.half_width
            )
        } else {
            format!("{:+.places$} at epoch {epoch}", d.mean)
        }
    };
    let movement = if first.1.mean.signum() != last.1.mean.signum() {
        "changes sign"
    } else if last.1.mean.abs() < first.1.mean.abs() {
        "narrows"
    } else {
        "widens"
    };
    Some(format!(
        "Over training, {}'s validation-loss gap to {} {movement} from {} to {} (paired by seed, 95% CI; figure gap-val-loss).",
        group.name,
        agg.groups[b].name,
        at(first),
        at(last)
    ))
}

/// A p-value to two places, four below 0.1, or `< 0.001`.
pub(super) fn format_p(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".into()
    } else if p < 0.1 {
        // Four places near the 5% line, so 0.0496 never reads as 0.05.
        format!("{p:.4}")
    } else {
        format!("{p:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::aggregate::{Difference, Group};
    use crate::report::stats::PairedDifference;

    fn two_groups() -> Aggregate {
        let group = |name: &str| Group {
            name: name.into(),
            variant: Some(name.into()),
            grid: String::new(),
            runs: Vec::new(),
            baseline: None,
        };
        Aggregate {
            experiment: "e".into(),
            runs: Vec::new(),
            groups: vec![group("residual"), group("plain")],
            damaged: Vec::new(),
        }
    }

    fn read(metric: Metric, mean: f64, std: f64, n: usize, half_width: f64) -> String {
        let difference = Difference {
            group: 0,
            baseline: 1,
            metric,
            difference: PairedDifference {
                mean,
                std,
                n,
                half_width,
            },
            holm_p: f64::NAN,
            family: 1,
        };
        reading(&two_groups(), &difference)
    }

    #[test]
    fn readings_state_amount_half_width_and_verdict() {
        assert_eq!(
            read(Metric::ElboBpd, 0.018, 0.0006, 2, 0.0051),
            "residual raises the negative ELBO by 0.0180 ± 0.0051 bits/dim against plain (95% CI over seeds, n = 2) — worse: the 95% interval excludes zero."
        );
        assert_eq!(
            read(Metric::Psnr, -2.2, 0.1, 3, 0.5),
            "residual lowers PSNR by 2.200 ± 0.500 dB against plain (95% CI over seeds, n = 3) — worse: the 95% interval excludes zero."
        );
        assert_eq!(
            read(Metric::BestValLoss, -38.0, 5.0, 3, 12.4),
            "residual lowers the best validation loss by 38.00 ± 12.40 against plain (95% CI over seeds, n = 3) — better: the 95% interval excludes zero."
        );
        // Mean 1, sd 1 over 3 seeds: the interval (±2.48) includes zero; 7 seeds would do.
        assert_eq!(
            read(Metric::Kl, 1.0, 1.0, 3, 2.484),
            "residual raises the KL term by 1.000 ± 2.484 nats against plain (95% CI over seeds, n = 3) — no detectable difference: the 95% interval includes zero; at the observed spread about 7 seeds would resolve a difference this size."
        );
        assert_eq!(
            read(Metric::Ssim, 0.01, f64::NAN, 1, f64::NAN),
            "residual raises SSIM by 0.0100 against plain (n = 1) — one seed, so no interval; add seeds to judge."
        );
    }

    #[test]
    fn readings_state_the_holm_adjusted_verdict_beside_the_interval() {
        let difference = |holm_p| Difference {
            group: 0,
            baseline: 1,
            metric: Metric::Psnr,
            difference: PairedDifference {
                mean: -2.2,
                std: 0.1,
                n: 3,
                half_width: 0.5,
            },
            holm_p,
            family: 22,
        };
        assert!(
            reading(&two_groups(), &difference(0.0042)).ends_with(
                "— worse: the 95% interval excludes zero. Holm-adjusted over the report's 22 comparisons: p = 0.0042, significant at a family-wise 5%."
            )
        );
        assert!(
            reading(&two_groups(), &difference(0.31)).ends_with(
                "the 95% interval excludes zero. Holm-adjusted over the report's 22 comparisons: p = 0.31, not significant at a family-wise 5%."
            )
        );
    }

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

    /// Every column of the comparison table, rounded as it is shown (values from the
    /// quickstart's plain variant).
    #[test]
    fn every_comparison_column_has_its_rounding() {
        let two = |a: f64, b: f64| Summary::of(&[a, b]);
        let cases = [
            (Metric::Parameters, two(1479427.0, 1479427.0), "1479427 ± 0"),
            (Metric::Epochs, two(6.0, 6.0), "6 ± 0"),
            (Metric::SecondsPerEpoch, two(2.806, 3.171), "2.989 ± 0.258"),
            (Metric::FinalTrainLoss, two(101.26, 104.56), "102.9 ± 2.3"),
            (Metric::BestValLoss, two(97.03, 99.18), "98.11 ± 1.52"),
            (Metric::ReconMse, two(0.02610, 0.02722), "0.0267 ± 0.0008"),
            (Metric::Psnr, two(16.027, 16.227), "16.13 ± 0.14"),
            (Metric::Ssim, two(0.39057, 0.39909), "0.3948 ± 0.0060"),
            (Metric::Kl, two(10.084, 13.221), "11.65 ± 2.22"),
            (Metric::ActiveUnits, two(32.0, 32.0), "32.0 ± 0.0"),
            (Metric::ElboBpd, two(8.86610, 8.86670), "8.8664 ± 0.0004"),
            (Metric::IwaeBpd, two(8.86368, 8.86410), "8.8639 ± 0.0003"),
            (
                Metric::CalibratedIwaeBpd,
                two(7.36910, 7.39081),
                "7.3800 ± 0.0154",
            ),
            (
                Metric::BestValLossEqualCompute,
                two(97.03, 99.18),
                "98.11 ± 1.52",
            ),
            (Metric::Fid, two(41.27, 44.9), "43.09 ± 2.57"),
            (Metric::ReconstructionFid, two(12.5, 13.1), "12.80 ± 0.42"),
            (Metric::Kid, two(0.0312, 0.0345), "0.0329 ± 0.0023"),
        ];
        assert_eq!(cases.len(), Metric::ALL.len(), "a case for every column");
        for (metric, summary, shown) in cases {
            assert_eq!(format_summary(&summary, metric), shown, "{metric:?}");
        }
    }
}
