//! `vaelab bench --plan-runs N`: expanding and hashing a grid of N runs.
use std::time::Instant;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct PlanBenchResult {
    pub runs: usize,
    pub seconds: f64,
    pub runs_per_second: f64,
}

/// Times `plan::plan` on a spec whose grid expands to at least `runs` runs (10 seeds, a
/// latent-size axis and a beta axis), parsing included.
pub fn plan_speed(runs: usize) -> Result<PlanBenchResult, crate::experiment::spec::SpecError> {
    let per_axis = (runs as f64 / 10.0).sqrt().ceil().max(1.0) as usize;
    let latents: Vec<String> = (1..=per_axis).map(|i| i.to_string()).collect();
    let betas: Vec<String> = (1..=per_axis)
        .map(|i| format!("{}", i as f64 / 4.0))
        .collect();
    let text = format!(
        "name: plan-bench\nseeds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\ngrid:\n  model.latent_dim: [{}]\n  train.beta: [{}]\n",
        latents.join(", "),
        betas.join(", ")
    );
    let started = Instant::now();
    let loaded = crate::experiment::spec::parse(std::path::Path::new("plan-bench.yaml"), &text)?;
    let plan = crate::experiment::plan::plan(&loaded, &crate::experiment::plan::synthetic_only)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(PlanBenchResult {
        runs: plan.runs.len(),
        seconds,
        runs_per_second: plan.runs.len() as f64 / seconds,
    })
}
