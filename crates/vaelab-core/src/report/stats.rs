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

/// The most seeds a power estimate names; beyond, the difference is negligible next to
/// the spread.
pub const MAX_SEEDS_ESTIMATED: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;

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
