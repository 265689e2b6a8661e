//! A study's declared primary question (`question:` in a spec): the metric, the variants
//! compared with the baseline, the smallest difference that matters, the error rate and
//! the seed schedule. Its YAML shape is `spec::QuestionSpec`; here it is validated
//! against the spec's variants; the
//! decisions are `report::sequential`'s, the rounds `report::study`'s. Not run identity:
//! it changes which seeds are trained, never what a run is.
use super::metric::Metric;
use super::spec::{LoadedSpec, SeedScheduleSpec, SpecError, did_you_mean};

/// Seeds per arm at each look: `start`, then `step` more at a time, up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedSchedule {
    pub start: usize,
    pub step: usize,
    pub max: usize,
}

impl SeedSchedule {
    /// The seed counts at which the comparisons are looked at: start, start + step, …,
    /// and max (also when the steps do not land on it).
    pub fn looks(&self) -> Vec<usize> {
        let mut looks: Vec<usize> = (self.start..self.max).step_by(self.step).collect();
        looks.push(self.max);
        looks
    }
}

/// The validated question.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub metric: Metric,
    /// The variant every compared one is paired with (the spec's `baseline`, else its
    /// first variant).
    pub baseline: String,
    pub compare: Vec<String>,
    pub margin: f64,
    pub alpha: f64,
    pub seeds: SeedSchedule,
    /// The seed of the first replicate (the spec's `seed`, default 0); replicate i has
    /// seed `first_seed + i`, so seed 4 of a sequential study is the same run as seed 4
    /// of a fixed one.
    pub first_seed: u64,
}

/// The family-wise error rate when `question.alpha` is not given.
pub const DEFAULT_ALPHA: f64 = 0.05;
/// The most seeds a question may plan per arm.
pub const MAX_SEEDS: i64 = 1000;

impl Question {
    /// The seeds of the first `count` replicates.
    pub fn seeds(&self, count: usize) -> Vec<u64> {
        (0..count as u64).map(|i| self.first_seed + i).collect()
    }
}

/// The spec's question checked against its variants (`variants` in spec order), or none.
pub fn resolve(loaded: &LoadedSpec, variants: &[&str]) -> Result<Option<Question>, SpecError> {
    let Some(spec) = &loaded.spec.question else {
        return Ok(None);
    };
    if loaded.spec.seeds.is_some() {
        return Err(loaded.error(
            "seeds",
            "a spec with `question:` takes its seeds from `question.seeds` (start, step, max); remove `seeds:` (`seed:` sets the first)",
        ));
    }
    if loaded.spec.grid.is_some() {
        return Err(loaded.error(
            "grid",
            "a declared question compares variants at one setting; write each setting to compare as a variant",
        ));
    }
    let known: Vec<&str> = Metric::compared().iter().map(|m| m.key()).collect();
    let metric = Metric::from_key(&spec.metric).ok_or_else(|| {
        loaded.error(
            "question.metric",
            format!(
                "expected one of {}, got {:?}{}",
                known.join(", "),
                spec.metric,
                did_you_mean(&spec.metric, &known)
            ),
        )
    })?;
    let baseline = match (&loaded.spec.baseline, variants.first()) {
        (Some(named), _) => named.clone(),
        (None, Some(first)) => first.to_string(),
        (None, None) => {
            return Err(loaded.error(
                "question.compare",
                "a question compares variants with a baseline: the spec has no `variants:`",
            ));
        }
    };
    check_arms(loaded, &spec.compare, &baseline, variants)?;
    if !(spec.margin.is_finite() && spec.margin > 0.0) {
        return Err(loaded.error(
            "question.margin",
            format!(
                "expected a positive number in the metric's unit, got {}",
                spec.margin
            ),
        ));
    }
    let alpha = spec.alpha.unwrap_or(DEFAULT_ALPHA);
    if !(alpha > 0.0 && alpha < 0.5) {
        return Err(loaded.error(
            "question.alpha",
            format!("expected a number in (0, 0.5), got {alpha}"),
        ));
    }
    Ok(Some(Question {
        metric,
        baseline,
        compare: spec.compare.clone(),
        margin: spec.margin,
        alpha,
        seeds: schedule(loaded, &spec.seeds)?,
        first_seed: loaded.spec.seed.unwrap_or(0),
    }))
}

/// Every compared arm is a variant other than the baseline, named once.
fn check_arms(
    loaded: &LoadedSpec,
    compare: &[String],
    baseline: &str,
    variants: &[&str],
) -> Result<(), SpecError> {
    if compare.is_empty() {
        return Err(loaded.error(
            "question.compare",
            "expected at least one variant to compare with the baseline",
        ));
    }
    for (i, arm) in compare.iter().enumerate() {
        if !variants.contains(&arm.as_str()) {
            return Err(loaded.error(
                "question.compare",
                format!(
                    "expected the name of a variant ({}), got {arm:?}{}",
                    variants.join(", "),
                    did_you_mean(arm, variants)
                ),
            ));
        }
        if arm == baseline {
            return Err(loaded.error(
                "question.compare",
                format!("{arm:?} is the baseline; compare the other variants with it"),
            ));
        }
        if compare[..i].contains(arm) {
            return Err(loaded.error("question.compare", format!("{arm:?} is named twice")));
        }
    }
    Ok(())
}

fn schedule(loaded: &LoadedSpec, seeds: &SeedScheduleSpec) -> Result<SeedSchedule, SpecError> {
    let SeedScheduleSpec { start, step, max } = *seeds;
    if !(2..=MAX_SEEDS).contains(&start) {
        return Err(loaded.error(
            "question.seeds",
            format!(
                "start: expected 2 to {MAX_SEEDS} seeds (a paired interval needs two), got {start}"
            ),
        ));
    }
    if step < 1 {
        return Err(loaded.error(
            "question.seeds",
            format!("step: expected a positive number of seeds, got {step}"),
        ));
    }
    if !(start..=MAX_SEEDS).contains(&max) {
        return Err(loaded.error(
            "question.seeds",
            format!("max: expected {start} (start) to {MAX_SEEDS} seeds, got {max}"),
        ));
    }
    Ok(SeedSchedule {
        start: start as usize,
        step: step as usize,
        max: max as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const VARIANTS: &str = "variants:\n  - name: plain\n    model.residual: false\n  - name: residual\n    model.residual: true\n  - name: preact\n    model.block: preact\n";

    fn question(text: &str) -> Result<Option<Question>, SpecError> {
        let loaded = super::super::spec::parse(Path::new("q.yaml"), text)?;
        resolve(&loaded, &["plain", "residual", "preact"])
    }

    const GOOD: &str = "name: q\nseed: 10\nquestion:\n  metric: elbo_bpd\n  compare: [residual, preact]\n  margin: 0.005\n  seeds: {start: 3, step: 2, max: 10}\n";

    #[test]
    fn a_question_resolves_with_the_first_variant_as_baseline_and_its_looks() {
        let q = question(&format!("{GOOD}{VARIANTS}")).unwrap().unwrap();
        assert_eq!(q.metric, Metric::ElboBpd);
        assert_eq!(q.baseline, "plain");
        assert_eq!(q.compare, ["residual", "preact"]);
        assert_eq!(q.alpha, DEFAULT_ALPHA);
        assert_eq!(q.seeds.looks(), [3, 5, 7, 9, 10]);
        assert_eq!(q.seeds(3), [10, 11, 12]);
        let exact = SeedSchedule {
            start: 3,
            step: 2,
            max: 7,
        };
        assert_eq!(exact.looks(), [3, 5, 7]);
        assert!(question("name: q\n").unwrap().is_none());
    }

    #[test]
    fn bad_questions_name_the_file_line_and_field() {
        let with = |from: &str, to: &str| format!("{}{VARIANTS}", GOOD.replace(from, to));
        let cases = [
            (
                with("elbo_bpd", "elbo_bdp"),
                "q.yaml:4: question.metric: expected one of",
                "(did you mean `elbo_bpd`?)",
            ),
            (
                with("[residual, preact]", "[residul]"),
                "q.yaml:5: question.compare: expected the name of a variant (plain, residual, preact), got \"residul\"",
                "(did you mean `residual`?)",
            ),
            (
                with("[residual, preact]", "[plain]"),
                "question.compare: \"plain\" is the baseline",
                "",
            ),
            (
                with("margin: 0.005", "margin: 0"),
                "q.yaml:6: question.margin: expected a positive number",
                "",
            ),
            (
                with("start: 3", "start: 1"),
                "question.seeds: start: expected 2 to 1000 seeds",
                "",
            ),
            (
                with("max: 10", "max: 2"),
                "question.seeds: max: expected 3 (start) to 1000 seeds, got 2",
                "",
            ),
            (
                with("seed: 10\n", "seeds: [1, 2]\n"),
                "q.yaml:2: seeds: a spec with `question:` takes its seeds from `question.seeds`",
                "",
            ),
            (format!("{GOOD}alpha: 2\n"), "unknown field `alpha`", ""),
            (
                with("  margin", "  alpha: 0.7\n  margin"),
                "question.alpha: expected a number in (0, 0.5), got 0.7",
                "",
            ),
            (
                with("  margin", "  margn: 1\n  margin"),
                "question: unknown field `margn`",
                "",
            ),
        ];
        for (text, expected, hint) in cases {
            let message = question(&text)
                .map(|_| "no error".to_string())
                .unwrap_or_else(|e| e.to_string());
            assert!(message.contains(expected), "{message}\nexpected {expected}");
            assert!(message.contains(hint), "{message}\nexpected {hint}");
        }
        let loaded = super::super::spec::parse(Path::new("q.yaml"), GOOD).unwrap();
        let without_variants = resolve(&loaded, &[]).unwrap_err().to_string();
        assert!(
            without_variants.contains("the spec has no `variants:`"),
            "{without_variants}"
        );
    }
}
