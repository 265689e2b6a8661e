//! The pictures the report lays side by side, one per variant: each variant's
//! representative run's evaluation pictures and its fixed noise across epochs.
use std::path::PathBuf;

use super::aggregate::Aggregate;
use super::document::GalleryCell;
use crate::experiment::slug;
use crate::store::{
    ATTRIBUTE_STRENGTHS, EvaluationPicture, SampleKind, TRAVERSAL_OFFSETS, TRAVERSED_DIMENSIONS,
};

/// One kind of picture across the variants.
pub(super) struct Visual {
    pub title: &'static str,
    pub caption: String,
    pub cells: Vec<GalleryCell>,
}

/// The caption, and which pictures could not be read, where, and why.
fn with_missing(caption: &str, missing: &[String]) -> String {
    if missing.is_empty() {
        caption.to_string()
    } else {
        format!("{caption} Not shown, unreadable: {}.", missing.join("; "))
    }
}

/// "0, 0.5, 1" for a caption.
fn listed(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn visuals(agg: &Aggregate) -> Vec<Visual> {
    let attribute = agg
        .runs
        .iter()
        .find_map(|r| r.evaluation.as_ref().and_then(|e| e.attribute.clone()));
    let kinds: [(EvaluationPicture, &'static str, String); 5] = [
        (
            EvaluationPicture::Reconstructions,
            "Reconstructions",
            "Top row: the first evaluation images; bottom row: decoded from their posterior means.".into(),
        ),
        (
            EvaluationPicture::Prior,
            "Samples from the prior",
            "The same standard-normal draws (fixed by the dataset seed) decoded by every variant.".into(),
        ),
        (
            EvaluationPicture::Interpolation,
            "Latent interpolation",
            "Each row: a face, eight decodings along the straight line between the two posterior means, the other face.".into(),
        ),
        (
            EvaluationPicture::Traversal,
            "Latent traversal",
            format!(
                "Each row: one of the {TRAVERSED_DIMENSIONS} latent dimensions with the highest KL (highest first), the first evaluation image's posterior mean with that coordinate moved by {} prior standard deviations, decoded.",
                listed(&TRAVERSAL_OFFSETS)
            ),
        ),
        (
            EvaluationPicture::Attribute,
            "Attribute direction",
            format!(
                "Each row: a face without the attribute, then its code plus {} × the direction (mean code with {} minus mean code without), decoded.",
                listed(&ATTRIBUTE_STRENGTHS),
                attribute.as_deref().unwrap_or("the attribute")
            ),
        ),
    ];
    let mut out = Vec::new();
    for (picture, title, caption) in kinds {
        let mut cells = Vec::new();
        let mut missing = Vec::new();
        for group in &agg.groups {
            let Some(run) = agg.representative(group) else {
                continue;
            };
            let path = run.dir.evaluation_picture(picture);
            match std::fs::read(&path) {
                Ok(png) => cells.push(GalleryCell {
                    label: group.name.clone(),
                    note: format!("seed {}", run.seed),
                    path: PathBuf::from("visuals")
                        .join(slug(&group.name))
                        .join(picture.file_name()),
                    png,
                }),
                // A dataset without the attribute draws none: nothing is missing.
                Err(_)
                    if picture == EvaluationPicture::Attribute
                        && run
                            .evaluation
                            .as_ref()
                            .is_some_and(|e| e.attribute.is_none()) => {}
                Err(e) => missing.push(format!("{} ({}: {e})", group.name, path.display())),
            }
        }
        if !cells.is_empty() || !missing.is_empty() {
            out.push(Visual {
                title,
                caption: with_missing(&caption, &missing),
                cells,
            });
        }
    }
    // The fixed noise the trainer decodes after every epoch, at up to six epochs.
    let mut cells = Vec::new();
    let mut missing = Vec::new();
    for group in &agg.groups {
        let Some(run) = agg.representative(group).or_else(|| {
            group
                .runs
                .iter()
                .map(|&i| &agg.runs[i])
                .find(|r| !r.metrics.is_empty())
        }) else {
            continue;
        };
        let epochs: Vec<u32> = run.metrics.iter().map(|m| m.epoch).collect();
        let picked: Vec<u32> = if epochs.len() <= 6 {
            epochs
        } else {
            (0..6).map(|i| epochs[i * (epochs.len() - 1) / 5]).collect()
        };
        for epoch in picked {
            let path = run.dir.sample_path(epoch, SampleKind::Prior);
            let name = path.file_name().unwrap_or_default();
            match std::fs::read(&path) {
                Ok(png) => cells.push(GalleryCell {
                    label: group.name.clone(),
                    note: format!("epoch {epoch}, seed {}", run.seed),
                    path: PathBuf::from("visuals").join(slug(&group.name)).join(name),
                    png,
                }),
                Err(e) => missing.push(format!("{} ({}: {e})", group.name, path.display())),
            }
        }
    }
    if !cells.is_empty() || !missing.is_empty() {
        let caption = "The same 16 draws decoded after each epoch (the run's own noise), from the first epoch to the last.";
        out.push(Visual {
            title: "Fixed noise across epochs",
            caption: with_missing(caption, &missing),
            cells,
        });
    }
    out
}
