//! `vaelab slurm SPEC`: a Slurm job array over the runs that are not done, written into the
//! run store (script, manifest, logs) and, with `--submit`, handed to sbatch. For a spec
//! with a declared question: the next round's runs, and a follow-up job that submits the
//! round after, until the question is answered.
use anyhow::{Context, Result};

use crate::cli::SlurmArgs;
use vaelab_core::cluster::slurm::{self, SlurmOptions};
use vaelab_core::experiment::plan::Selection;
use vaelab_core::progress::Reporter;
use vaelab_core::report::study;
use vaelab_core::store::RunStore;

pub fn execute(args: &SlurmArgs, store: &RunStore, reporter: &dyn Reporter) -> Result<()> {
    let plan = super::shared::plan_and_warn(&args.spec, reporter)?;
    // A declared question's study: only the runs of its rounds so far and the next one,
    // assessed once.
    let plan = match study::assess(store, &plan) {
        None => plan.clone(),
        Some(assessment) => {
            for line in assessment.lines() {
                reporter.note(&format!("{}: {line}", plan.experiment));
            }
            if !assessment.failed.is_empty() {
                anyhow::bail!(
                    "{}: the study is blocked by failed runs; see `vaelab status`, then submit again",
                    plan.experiment
                );
            }
            assessment.narrowed(&plan)
        }
    };
    let selected = super::select(&plan.runs, &args.only)?;
    let options = SlurmOptions {
        partition: args.partition.clone(),
        time: args.time.clone(),
        gpus_per_task: args.gpus_per_task,
        cpus_per_task: args.cpus_per_task,
        mem: args.mem.clone(),
        max_parallel: args.max_parallel,
        extra: args.extra.clone(),
        warning_seconds: args.warning_seconds,
    };
    let vaelab = std::env::current_exe().context("cannot locate the vaelab binary")?;
    let selection = Selection {
        plan: &plan,
        runs: &selected,
    };
    let prepared =
        slurm::prepare(store, selection, &args.spec, &vaelab, &options).map_err(|e| match e {
            slurm::SlurmError::Option { .. } => super::usage(e.to_string()),
            other => other.into(),
        })?;
    let Some(mut job) = prepared else {
        reporter.note(&format!(
            "{}: every selected run is done; nothing to submit",
            plan.experiment
        ));
        return Ok(());
    };
    reporter.note(&format!(
        "{}: {} array tasks for the runs not yet done; script {}, manifest {}",
        plan.experiment,
        job.manifest.tasks.len(),
        job.script.display(),
        job.manifest_path.display()
    ));
    if args.submit {
        let job_id = slurm::submit(&mut job)?;
        reporter.note(&format!(
            "submitted job array {job_id}; logs in {}; `vaelab status` shows each run's task",
            job.dir.join("logs").display()
        ));
        if plan.question.is_some() {
            // The same command line again, once the round's array has ended.
            let mut command = vec![vaelab.display().to_string()];
            command.extend(std::env::args().skip(1));
            let cwd = std::env::current_dir().context("cannot read the working directory")?;
            let next = slurm::submit_follow_up(&job, &job_id, &options, &command, &cwd)?;
            reporter.note(&format!(
                "submitted follow-up job {next}: after {job_id} it plans the study's next round and submits it, until the question is answered"
            ));
        }
        println!("{job_id}");
    } else {
        println!("{}", job.script.display());
    }
    Ok(())
}
