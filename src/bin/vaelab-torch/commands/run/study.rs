//! `vaelab run SPEC` for a spec with a declared question: round after round, the runs the
//! next look needs are trained (in this process or by workers), then the study is
//! assessed again from the store, until every comparison is decided or the last look is
//! taken. Interrupted anywhere, a rerun assesses the same store and goes on from there.
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::RunArgs;
use vaelab::experiment::config::RunId;
use vaelab::experiment::plan::{Plan, Selection};
use vaelab::progress::Reporter;
use vaelab::report::study;
use vaelab::store::RunStore;

pub fn execute(
    args: &RunArgs,
    store: &RunStore,
    reporter: &dyn Reporter,
    plan: &Plan,
    quiet: bool,
) -> Result<ExitCode> {
    let mut last_round: Option<Vec<RunId>> = None;
    loop {
        let assessment = study::assess(store, plan).expect("the plan has a question");
        for line in assessment.lines() {
            reporter.note(&format!("{}: {line}", plan.experiment));
        }
        if !assessment.failed.is_empty() {
            return Ok(ExitCode::FAILURE);
        }
        if assessment.next_round.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        let round: Vec<RunId> = assessment.next_round.iter().map(|r| r.id.clone()).collect();
        if last_round.as_ref() == Some(&round) {
            reporter.warn(&format!(
                "{}: the round's runs are still not finished (trained by another process?); run again once they are",
                plan.experiment
            ));
            return Ok(ExitCode::FAILURE);
        }
        let mut round_args = args.clone();
        // Workers train exactly this round's runs; `--only` keeps them from going on to
        // rounds of their own.
        round_args.only = round.iter().map(|id| id.dir_name().to_string()).collect();
        let selection = Selection {
            plan,
            runs: &assessment.next_round,
        };
        let code = super::train(&round_args, store, reporter, selection, quiet)?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
        last_round = Some(round);
    }
}
