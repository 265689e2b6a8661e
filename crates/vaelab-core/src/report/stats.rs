//! Summary statistics over seeds: mean, sample standard deviation, and paired differences
//! with Student-t confidence intervals.
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Mean, sample standard deviation (n − 1) and count of the finite values in `values`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub mean: f64,
    /// NaN when n < 2.
    pub std: f64,
    pub n: usize,
}

impl Summary {
    pub fn of(values: &[f64]) -> Self {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let n = finite.len();
        if n == 0 {
            return Self {
                mean: f64::NAN,
                std: f64::NAN,
                n,
            };
        }
        let mean = finite.iter().sum::<f64>() / n as f64;
        let std = if n < 2 {
            f64::NAN
        } else {
            (finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        };
        Self { mean, std, n }
    }
}

/// The two-sided `level` quantile factor of Student's t with `df` degrees of freedom
/// (for level 0.95 and df 2: 4.303).
pub fn t_factor(level: f64, df: usize) -> f64 {
    match StudentsT::new(0.0, 1.0, df as f64) {
        Ok(t) => t.inverse_cdf(0.5 + level / 2.0),
        Err(_) => f64::NAN,
    }
}

/// A paired difference (treatment − baseline) over matched seeds, with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedDifference {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
    /// Half-width of the 95% confidence interval of the mean difference; NaN when n < 2.
    pub half_width: f64,
}

impl PairedDifference {
    pub fn of(pairs: &[(f64, f64)]) -> Self {
        let differences: Vec<f64> = pairs
            .iter()
            .filter(|(t, b)| t.is_finite() && b.is_finite())
            .map(|(t, b)| t - b)
            .collect();
        let summary = Summary::of(&differences);
        let half_width = if summary.n < 2 {
            f64::NAN
        } else {
            t_factor(0.95, summary.n - 1) * summary.std / (summary.n as f64).sqrt()
        };
        Self {
            mean: summary.mean,
            std: summary.std,
            n: summary.n,
            half_width,
        }
    }

    pub fn low(&self) -> f64 {
        self.mean - self.half_width
    }

    pub fn high(&self) -> f64 {
        self.mean + self.half_width
    }

    /// The two-sided p-value of the paired t-test of a zero mean difference; NaN without
    /// an interval (n < 2), 0 when every pair differs by the same non-zero amount.
    pub fn p_value(&self) -> f64 {
        if self.n < 2 || !self.std.is_finite() || !self.mean.is_finite() {
            return f64::NAN;
        }
        if self.std == 0.0 {
            return if self.mean == 0.0 { 1.0 } else { 0.0 };
        }
        let t = self.mean.abs() / (self.std / (self.n as f64).sqrt());
        match StudentsT::new(0.0, 1.0, (self.n - 1) as f64) {
            Ok(dist) => 2.0 * (1.0 - dist.cdf(t)),
            Err(_) => f64::NAN,
        }
    }

    /// Whether the 95% interval leaves out zero.
    pub fn excludes_zero(&self) -> bool {
        self.half_width.is_finite() && (self.low() > 0.0 || self.high() < 0.0)
    }

    /// Seeds needed for the 95% interval to exclude zero if the mean difference and the
    /// seed-to-seed spread stayed as observed: the smallest n ≥ 2 with
    /// t(0.975, n − 1) · sd / √n < |mean|. None without a spread (n < 2), a zero mean,
    /// or beyond [`MAX_SEEDS_ESTIMATED`].
    pub fn seeds_to_resolve(&self) -> Option<usize> {
        if self.n < 2 || !self.std.is_finite() || self.mean == 0.0 || !self.mean.is_finite() {
            return None;
        }
        (2..=MAX_SEEDS_ESTIMATED)
            .find(|&n| t_factor(0.95, n - 1) * self.std / (n as f64).sqrt() < self.mean.abs())
    }
}

/// Holm–Bonferroni adjusted p-values of one family, in the order given: the k-th smallest
/// p times (m − k + 1), made monotone and capped at 1, with m the finite p-values (NaN
/// stays NaN). A comparison is significant at family-wise level α when its adjusted p is
/// below α.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p_values.len())
        .filter(|&i| p_values[i].is_finite())
        .collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let m = order.len();
    let mut adjusted = vec![f64::NAN; p_values.len()];
    let mut running = 0.0_f64;
    for (k, &i) in order.iter().enumerate() {
        running = running.max(((m - k) as f64 * p_values[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// The family-wise error rate the Holm-adjusted verdicts hold.
pub const FAMILY_WISE_LEVEL: f64 = 0.05;

/// The most seeds a power estimate names; beyond, the difference is negligible next to
/// the spread.
pub const MAX_SEEDS_ESTIMATED: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    /// The paired t-test's p-value agrees with the closed form of Student's t with two
    /// degrees of freedom, and its 0.05 boundary is the 95% interval's.
    #[test]
    fn p_values_follow_the_paired_t_test() {
        // Differences 1, 2, 4: t = √7 on 2 degrees of freedom, where the two-sided p-value
        // is 1 − t / √(2 + t²) = 1 − √7 / 3.
        let d = PairedDifference::of(&[(11.0, 10.0), (12.0, 10.0), (14.0, 10.0)]);
        let want = 1.0 - 7.0_f64.sqrt() / 3.0;
        assert!(
            (d.p_value() - want).abs() < 1e-9,
            "{} vs {want}",
            d.p_value()
        );
        assert_eq!(d.excludes_zero(), d.p_value() < 0.05);
        let clear = PairedDifference::of(&[(11.0, 10.0), (11.1, 10.0), (11.2, 10.0)]);
        assert!(clear.excludes_zero() && clear.p_value() < 0.05);
        assert!(PairedDifference::of(&[(1.0, 0.0)]).p_value().is_nan());
    }

    /// Holm's step-down on a textbook family: p = (0.01, 0.04, 0.03, 0.005) over m = 4
    /// gives (0.03, 0.06, 0.06, 0.02), so only the first and last stay below 0.05.
    #[test]
    fn holm_adjusts_step_down_and_keeps_the_order_given() {
        let adjusted = holm(&[0.01, 0.04, 0.03, 0.005, f64::NAN]);
        let want = [0.03, 0.06, 0.06, 0.02];
        for (got, want) in adjusted.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{adjusted:?}");
        }
        assert!(adjusted[4].is_nan(), "no p-value, no verdict");
        assert_eq!(holm(&[0.6, 0.9]), vec![1.0, 1.0], "capped at 1");
    }

    #[test]
    fn seeds_to_resolve_follows_the_t_interval() {
        // Mean 1, sd 1: t(0.975, 5)/√6 = 2.571/2.449 = 1.050 ≥ 1, t(0.975, 6)/√7 = 0.925.
        let d = PairedDifference {
            mean: -1.0,
            std: 1.0,
            n: 3,
            half_width: f64::NAN,
        };
        assert_eq!(d.seeds_to_resolve(), Some(7));
        // The textbook one-sample case: sd 2, mean 1 needs 18 (t(0.975, 17)·2/√18 = 0.9946).
        let wide = PairedDifference {
            mean: 1.0,
            std: 2.0,
            ..d
        };
        assert_eq!(wide.seeds_to_resolve(), Some(18));
        let flat = PairedDifference { mean: 0.0, ..d };
        assert_eq!(flat.seeds_to_resolve(), None);
        let tiny = PairedDifference { mean: 1e-6, ..d };
        assert_eq!(tiny.seeds_to_resolve(), None);
    }

    #[test]
    fn summary_uses_the_sample_standard_deviation_and_skips_missing_values() {
        let s = Summary::of(&[1.0, 2.0, f64::NAN, 3.0, 4.0]);
        assert_eq!(s.n, 4);
        assert_eq!(s.mean, 2.5);
        assert!((s.std - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        let one = Summary::of(&[7.0]);
        assert_eq!((one.mean, one.n), (7.0, 1));
        assert!(one.std.is_nan());
        assert!(Summary::of(&[]).mean.is_nan());
    }

    #[test]
    fn t_factors_match_the_tables() {
        for (df, expected) in [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045)] {
            let got = t_factor(0.95, df);
            assert!((got - expected).abs() < 1e-3, "df {df}: {got}");
        }
    }

    #[test]
    fn paired_difference_interval() {
        // Differences 2, 2.5, 3: mean 2.5, std 0.5, half-width t(0.975, 2) · 0.5 / sqrt(3).
        let d = PairedDifference::of(&[(12.0, 10.0), (12.5, 10.0), (13.0, 10.0)]);
        assert_eq!((d.mean, d.n), (2.5, 3));
        assert!((d.half_width - 4.302_652_7 * 0.5 / 3f64.sqrt()).abs() < 1e-6);
        assert!(d.excludes_zero());
        // Differences 1, 2, 3: the interval (2 ± 2.48) reaches below zero.
        assert!(!PairedDifference::of(&[(11.0, 10.0), (12.0, 10.0), (13.0, 10.0)]).excludes_zero());
        let noisy = PairedDifference::of(&[(1.0, 0.0), (-1.0, 0.0), (0.5, 0.0)]);
        assert!(!noisy.excludes_zero());
        let single = PairedDifference::of(&[(1.0, 0.0)]);
        assert!(single.half_width.is_nan() && !single.excludes_zero());
    }
}
