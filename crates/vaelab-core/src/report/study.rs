//! Where a study with a declared question stands, read from the runs' files alone: the
//! looks done, each comparison's decision so far, and the runs the next round needs.
//!
//! A round is one look of `report::sequential`'s design: every undecided comparison gets
//! the seeds of that look for its arm and the baseline. A comparison decided at a look
//! gets no more seeds. Variants the question does not compare are exploratory and get the
//! first look's seeds. Because the assessment is a function of the store, an interrupted
//! study resumes where it was, and every command (`run`, `plan`, `report`, Slurm's
//! follow-up job) sees the same rounds.
use std::collections::HashMap;

use super::aggregate::{Aggregate, gather};
use super::sequential::{Decision, Design, Verdict};
use crate::experiment::plan::{Plan, PlannedRun, Selection};
use crate::experiment::question::Question;
use crate::store::{RunStore, Standing};

/// One declared comparison: an arm against the baseline.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub arm: String,
    /// Every look taken so far, in order; the last one's decision is the comparison's.
    pub looks: Vec<Verdict>,
}

impl Comparison {
    /// The decision so far: the last look's, or "continue" before the first look.
    pub fn decision(&self) -> Decision {
        self.looks.last().map_or(Decision::Continue, |v| v.decision)
    }

    pub fn is_decided(&self) -> bool {
        self.decision().is_final()
    }

    /// Seeds per arm at the last look taken (0 before the first).
    pub fn seeds(&self) -> usize {
        self.looks.last().map_or(0, |v| v.n)
    }
}

/// The study as its runs' files have it.
#[derive(Debug, Clone)]
pub struct Assessment<'a> {
    pub question: &'a Question,
    pub design: Design,
    pub comparisons: Vec<Comparison>,
    /// Looks fully taken (every comparison's seeds of the look are there, or it was
    /// decided before the look).
    pub rounds_done: usize,
    /// The runs the next round needs that are not finished; empty once every comparison
    /// is decided (or while a run the study needs has failed).
    pub next_round: Vec<&'a PlannedRun>,
    /// Every run of the rounds done and of the next round: what `plan` lists and the
    /// report reads.
    pub in_study: Vec<&'a PlannedRun>,
    /// Runs the study needs that failed: it cannot go on until they are trained.
    pub failed: Vec<&'a PlannedRun>,
}

impl Assessment<'_> {
    /// Every comparison decided: differs, equivalent or unresolved at its last look.
    pub fn is_answered(&self) -> bool {
        self.comparisons.iter().all(Comparison::is_decided)
    }

    /// The look the next round takes (seeds per arm), when there is one.
    pub fn next_look(&self) -> Option<usize> {
        self.design.looks().get(self.rounds_done).copied()
    }
}

/// Assesses `plan`'s question against `store`; `None` for a plan without a question.
pub fn assess<'a>(store: &RunStore, plan: &'a Plan) -> Option<Assessment<'a>> {
    let question = plan.question.as_ref()?;
    let looks = question.seeds.looks();
    let design = Design::new(
        &looks,
        question.alpha / question.compare.len() as f64,
        question.margin,
    );
    let all: Vec<&PlannedRun> = plan.runs.iter().collect();
    let aggregate = gather(store, Selection { plan, runs: &all });
    let values = Values::of(&aggregate, question);
    let mut comparisons: Vec<Comparison> = question
        .compare
        .iter()
        .map(|arm| Comparison {
            arm: arm.clone(),
            looks: Vec::new(),
        })
        .collect();
    let mut rounds_done = 0;
    let mut needed: Vec<(String, usize)> = Vec::new();
    for &n in &looks {
        let seeds = question.seeds(n);
        for comparison in comparisons.iter_mut().filter(|c| !c.is_decided()) {
            match values.differences(&comparison.arm, &question.baseline, &seeds) {
                Some(differences) => {
                    let verdict = design
                        .decide(&differences, question.metric.higher_is_better())
                        .expect("n is a look of the design");
                    comparison.looks.push(verdict);
                }
                None => needed.push((comparison.arm.clone(), n)),
            }
        }
        if !needed.is_empty() {
            break;
        }
        rounds_done += 1;
        if comparisons.iter().all(Comparison::is_decided) {
            break;
        }
    }
    // The runs each variant needs: decided arms up to their last look, undecided ones up
    // to the next, the baseline as far as any arm, exploratory variants the first look.
    let mut reach: Vec<(&str, usize)> = comparisons
        .iter()
        .map(|c| {
            let wanted = needed.iter().find(|(arm, _)| *arm == c.arm);
            (c.arm.as_str(), wanted.map_or(c.seeds(), |&(_, n)| n))
        })
        .collect();
    let baseline_reach = reach.iter().map(|&(_, n)| n).max().unwrap_or(0);
    reach.push((question.baseline.as_str(), baseline_reach));
    let mut in_study = Vec::new();
    for planned in &plan.runs {
        let Some(variant) = planned.variant.as_deref() else {
            continue;
        };
        let count = reach
            .iter()
            .find(|(name, _)| *name == variant)
            .map_or(question.seeds.start, |&(_, n)| n);
        if question.seeds(count).contains(&planned.config.seed) {
            in_study.push(planned);
        }
    }
    in_study.sort_by_key(|r| plan.runs.iter().position(|p| p.id == r.id));
    let pending: Vec<&PlannedRun> = in_study
        .iter()
        .copied()
        .filter(|r| !values.finished(r))
        .collect();
    let failed: Vec<&PlannedRun> = pending
        .iter()
        .copied()
        .filter(|r| values.failed(r))
        .collect();
    Some(Assessment {
        question,
        design,
        comparisons,
        rounds_done,
        next_round: pending,
        in_study,
        failed,
    })
}

/// The question's metric for each finished run, and which runs failed.
struct Values {
    by_variant_seed: HashMap<(String, u64), f64>,
    failed: Vec<crate::experiment::config::RunId>,
    finished: Vec<crate::experiment::config::RunId>,
}

impl Values {
    fn of(aggregate: &Aggregate, question: &Question) -> Self {
        let mut by_variant_seed = HashMap::new();
        let (mut failed, mut finished) = (Vec::new(), Vec::new());
        for record in &aggregate.runs {
            let id = record.planned.id.clone();
            if matches!(record.standing, Standing::Failed { .. }) {
                failed.push(id);
                continue;
            }
            if !record.finished() {
                continue;
            }
            finished.push(id);
            let value = record.metric(question.metric);
            if let Some(variant) = &record.planned.variant
                && value.is_finite()
            {
                by_variant_seed.insert((variant.clone(), record.seed), value);
            }
        }
        Self {
            by_variant_seed,
            failed,
            finished,
        }
    }

    fn finished(&self, run: &PlannedRun) -> bool {
        self.finished.contains(&run.id)
    }

    fn failed(&self, run: &PlannedRun) -> bool {
        self.failed.contains(&run.id)
    }

    /// arm − baseline for each of `seeds`, when every run of both is finished.
    fn differences(&self, arm: &str, baseline: &str, seeds: &[u64]) -> Option<Vec<f64>> {
        seeds
            .iter()
            .map(|&seed| {
                let of = |variant: &str| self.by_variant_seed.get(&(variant.to_string(), seed));
                Some(of(arm)? - of(baseline)?)
            })
            .collect()
    }
}

/// `plan` with only the runs the study holds so far (the rounds done and the next one),
/// what `plan`, `report` and Slurm work on, and the study's [`Assessment::lines`]; a plan
/// without a question is returned whole, with no lines.
pub fn narrowed(store: &RunStore, plan: &Plan) -> (Plan, Vec<String>) {
    match assess(store, plan) {
        Some(assessment) => (assessment.narrowed(plan), assessment.lines()),
        None => (plan.clone(), Vec::new()),
    }
}

impl Assessment<'_> {
    /// `plan` (the one assessed) with only the runs in the study so far.
    pub fn narrowed(&self, plan: &Plan) -> Plan {
        Plan {
            runs: self.in_study.iter().map(|&r| r.clone()).collect(),
            ..plan.clone()
        }
    }
}

impl Assessment<'_> {
    /// The study in a few lines: the question, the rounds, each comparison's decision so
    /// far with its adjusted and naive intervals, and what the next round trains.
    pub fn lines(&self) -> Vec<String> {
        let q = self.question;
        let metric = q.metric;
        let looks = self.design.looks();
        let mut lines = vec![format!(
            "question: {} ({}), {} against {} paired by seed; margin ±{}{}; α {} over {} comparison{} (Bonferroni: {} each); looks at {} seeds",
            metric.title(),
            if metric.higher_is_better() {
                "higher is better"
            } else {
                "lower is better"
            },
            q.compare.join(", "),
            q.baseline,
            number(q.margin, q.margin),
            metric.unit(),
            q.alpha,
            q.compare.len(),
            if q.compare.len() == 1 { "" } else { "s" },
            short(self.design.alpha()),
            looks
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        )];
        lines.push(format!(
            "rounds: {} of at most {} done",
            self.rounds_done,
            looks.len()
        ));
        for comparison in &self.comparisons {
            lines.push(self.comparison_line(comparison));
        }
        if !self.failed.is_empty() {
            lines.push(format!(
                "blocked: {} failed ({}); see `vaelab status`, then run again",
                plural(self.failed.len(), "run"),
                labels(&self.failed)
            ));
        } else if let (false, Some(n)) = (self.next_round.is_empty(), self.next_look()) {
            lines.push(format!(
                "next round: {n} seeds per arm, {} to train ({})",
                plural(self.next_round.len(), "run"),
                labels(&self.next_round)
            ));
        } else if self.is_answered() {
            lines.push("answered: every declared comparison is decided".into());
        }
        lines
    }

    fn comparison_line(&self, comparison: &Comparison) -> String {
        let q = self.question;
        let head = format!("{} vs {}", comparison.arm, q.baseline);
        let Some(last) = comparison.looks.last() else {
            return format!("{head}: no look yet");
        };
        let at = |(low, high): (f64, f64)| {
            format!("[{}, {}]", number(low, q.margin), number(high, q.margin))
        };
        let mut line = format!(
            "{head}: {} at {} seeds: difference {}{} (adjusted {}, naive {})",
            last.decision.word(),
            last.n,
            signed(last.mean, q.margin),
            q.metric.unit(),
            at(last.adjusted),
            at(last.naive),
        );
        match last.decision {
            Decision::Equivalent if last.excludes_zero() => {
                line.push_str(", detectably non-zero but within the margin");
            }
            Decision::Unresolved => line.push_str(&match last.fixed_design_seeds {
                Some(n) => format!(
                    "; a fixed design would need about {n} seeds to resolve a difference this size"
                ),
                None => "; no seed count in reach would resolve a difference this size".into(),
            }),
            _ => {}
        }
        line
    }
}

/// A rate such as α to four decimals at most: 0.05, 0.0167.
fn short(value: f64) -> String {
    let text = format!("{value:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn plural(count: usize, noun: &str) -> String {
    format!("{count} {noun}{}", if count == 1 { "" } else { "s" })
}

fn labels(runs: &[&PlannedRun]) -> String {
    const SHOWN: usize = 6;
    let mut shown: Vec<&str> = runs.iter().take(SHOWN).map(|r| r.label.as_str()).collect();
    if runs.len() > SHOWN {
        shown.push("…");
    }
    shown.join(", ")
}

/// `value` with enough decimals to show differences of the size of `scale`.
fn number(value: f64, scale: f64) -> String {
    let decimals = (2.0 - scale.abs().log10().floor()).clamp(0.0, 8.0) as usize;
    format!("{value:.decimals$}")
}

fn signed(value: f64, scale: f64) -> String {
    let text = number(value, scale);
    if value >= 0.0 {
        format!("+{text}")
    } else {
        text
    }
}
