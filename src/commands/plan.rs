//! `vaelab plan SPEC`: every run a spec expands to, where each stands, and what is left.
use anyhow::Result;

use crate::cli::PlanArgs;
use vaelab_core::data::fingerprint;
use vaelab_core::report::overview::{self, human_count, human_duration};
use vaelab_core::report::study;
use vaelab_core::store::RunStore;
use vaelab_core::store::Standing;

pub fn execute(args: &PlanArgs, store: &RunStore) -> Result<()> {
    let plan = super::shared::plan_of(&args.spec)?;
    let (plan, study_lines) = study::narrowed(store, &plan);
    let view = overview::plan_view(&plan, store)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    for warning in &view.warnings {
        eprintln!("warning: {warning}");
    }
    for line in &study_lines {
        println!("{line}");
    }
    for dataset in &view.datasets {
        println!(
            "data: {} at {} (fingerprint {})",
            serde_json::to_value(dataset.source)?
                .as_str()
                .unwrap_or_default(),
            dataset.root.as_deref().unwrap_or("its default place"),
            fingerprint::short(&dataset.fingerprint)
        );
    }
    let width = view
        .runs
        .iter()
        .map(|r| r.label.len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "{:<8}  {:<width$}  {:>6}  {:>7}  {:>6}  {:>9}  STATUS",
        "ID", "LABEL", "EPOCHS", "IMAGES", "PARAMS", "FLOPS/IMG"
    );
    for run in &view.runs {
        println!(
            "{:<8}  {:<width$}  {:>6}  {:>7}  {:>6}  {:>9}  {}",
            run.short_id,
            run.label,
            run.epochs,
            run.train_images.map_or("?".to_string(), |n| n.to_string()),
            human_count(run.capacity.parameters),
            human_count(run.capacity.forward_flops),
            run.description
        );
    }
    let count =
        |pred: fn(&Standing) -> bool| view.runs.iter().filter(|r| pred(&r.standing)).count();
    let not_evaluated = count(|s| matches!(s, Standing::TrainedNotEvaluated { .. }));
    println!(
        "\n{} runs: {} new, {} partial, {} running, {} done, {} failed{}",
        view.runs.len(),
        count(|s| matches!(s, Standing::New)),
        count(|s| matches!(s, Standing::Partial { .. })),
        count(|s| matches!(s, Standing::Running { .. })),
        count(|s| matches!(s, Standing::Complete { .. })),
        count(|s| matches!(s, Standing::Failed { .. })),
        if not_evaluated > 0 {
            format!(", {not_evaluated} trained but not evaluated")
        } else {
            String::new()
        }
    );
    if view.dataset_size_unknown {
        println!(
            "(runs on datasets on disk count only once decoded: IMAGES `?` and the total below omit them)"
        );
    }
    match (view.measured_images_per_second, view.estimated_seconds) {
        (Some(rate), Some(seconds)) => println!(
            "left: {} image-epochs, about {} at the {rate:.0} img/s these runs measured",
            view.remaining_image_epochs,
            human_duration(seconds)
        ),
        _ => println!(
            "left: {} image-epochs (no run measured yet; `vaelab bench` gives img/s for a model)",
            view.remaining_image_epochs
        ),
    }
    if !view.orphans.is_empty() {
        println!(
            "\n{} run(s) in {} were trained for `{}` but are not in this spec (the spec, a default or the data changed):",
            view.orphans.len(),
            store.root().display(),
            view.experiment
        );
        for orphan in &view.orphans {
            let changed = if orphan.data_changed {
                "  data changed since trained"
            } else {
                ""
            };
            println!(
                "  {:<8}  {}  {}{changed}  ({})",
                orphan.short_id, orphan.label, orphan.description, orphan.path
            );
        }
    }
    Ok(())
}
