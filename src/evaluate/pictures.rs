//! The evaluation's pictures: reconstructions, prior samples, latent interpolations, latent
//! traversals and an attribute direction, each written into the run's `evaluation/`
//! directory.
use tch::{Device, Kind, Tensor};

use super::{EvalData, EvalError};
use crate::data;
use crate::data::png;
use crate::experiment::config::RunConfig;
use crate::model::Vae;
use crate::rng::{self, Stream};
use crate::store::{
    ATTRIBUTE_STRENGTHS, EvaluationPicture, RunDir, TRAVERSAL_OFFSETS, TRAVERSED_DIMENSIONS,
};

/// Images shown in the reconstruction grid; interpolation uses pairs among them.
const SHOWN_IMAGES: i64 = 8;
const INTERPOLATION_STEPS: i64 = 8;
const PRIOR_SAMPLES: i64 = 16;
const ATTRIBUTE_FACES: i64 = 4;

/// The `count` dimensions with the highest KL, highest first (the lower index on ties).
pub(super) fn highest_kl_dimensions(kl: &[f64], count: usize) -> Vec<i64> {
    let mut order: Vec<usize> = (0..kl.len()).collect();
    order.sort_by(|&a, &b| kl[b].total_cmp(&kl[a]).then(a.cmp(&b)));
    order.into_iter().take(count).map(|d| d as i64).collect()
}

/// One row per dimension of `dimensions`: `mean` with that coordinate moved by each of
/// [`TRAVERSAL_OFFSETS`], decoded.
fn write_traversal(
    model: &Vae,
    mean: &Tensor,
    dimensions: &[i64],
    run: &RunDir,
) -> Result<(), EvalError> {
    let mut codes = Vec::with_capacity(dimensions.len() * TRAVERSAL_OFFSETS.len());
    for &dimension in dimensions {
        for offset in TRAVERSAL_OFFSETS {
            let code = mean.copy();
            let _ = code.get(dimension).g_add_scalar_(offset);
            codes.push(code);
        }
    }
    png::write_grid(
        &model.decode(&Tensor::stack(&codes, 0)),
        TRAVERSAL_OFFSETS.len(),
        &run.evaluation_picture(EvaluationPicture::Traversal),
    )?;
    Ok(())
}

/// Writes the pictures; returns the attribute drawn, if the dataset has it. `kl` is the
/// mean KL of each latent dimension, which picks the traversed ones.
pub(super) fn write_visuals(
    model: &Vae,
    config: &RunConfig,
    held_out: &EvalData,
    means: &Tensor,
    kl: &[f64],
    run: &RunDir,
) -> Result<Option<String>, EvalError> {
    let device = means.device();
    let means = means.to_kind(Kind::Float);
    let n = held_out.images.size()[0];
    let shown = SHOWN_IMAGES.min(n);
    let originals = data::to_unit_float(&held_out.images.narrow(0, 0, shown));
    let recon = model.decode(&means.narrow(0, 0, shown));
    png::write_grid(
        &Tensor::cat(&[&originals, &recon], 0),
        shown as usize,
        &run.evaluation_picture(EvaluationPicture::Reconstructions),
    )?;

    // The prior noise depends on the dataset seed only, so every run on the same data and
    // latent size decodes the same draws.
    tch::manual_seed(rng::torch_seed(
        config.data.dataset_seed,
        Stream::ReportNoise,
        &[],
    ));
    let noise = Tensor::randn(
        [PRIOR_SAMPLES, model.latent_dim()],
        (Kind::Float, Device::Cpu),
    )
    .to_device(device);
    png::write_grid(
        &model.decode(&noise),
        8,
        &run.evaluation_picture(EvaluationPicture::Prior),
    )?;

    if shown >= 2 {
        let pairs = shown / 2;
        let mut rows = Vec::new();
        for p in 0..pairs {
            let (a, b) = (means.get(2 * p), means.get(2 * p + 1));
            let steps: Vec<Tensor> = (0..INTERPOLATION_STEPS)
                .map(|s| {
                    let t = s as f64 / (INTERPOLATION_STEPS - 1) as f64;
                    &a * (1.0 - t) + &b * t
                })
                .collect();
            let decoded = model.decode(&Tensor::stack(&steps, 0));
            rows.push(Tensor::cat(
                &[
                    originals.narrow(0, 2 * p, 1),
                    decoded,
                    originals.narrow(0, 2 * p + 1, 1),
                ],
                0,
            ));
        }
        png::write_grid(
            &Tensor::cat(&rows, 0),
            (INTERPOLATION_STEPS + 2) as usize,
            &run.evaluation_picture(EvaluationPicture::Interpolation),
        )?;
    }

    let dimensions = highest_kl_dimensions(kl, TRAVERSED_DIMENSIONS);
    write_traversal(model, &means.get(0), &dimensions, run)?;

    let Some((attributes, names)) = held_out.attributes else {
        return Ok(None);
    };
    let Some(column) = names.iter().position(|n| n == &config.eval.attribute) else {
        return Ok(None);
    };
    let has = attributes.select(1, column as i64).gt(0).to_device(device);
    let with = means.index_select(0, &has.nonzero().squeeze_dim(1));
    let without = means.index_select(0, &has.logical_not().nonzero().squeeze_dim(1));
    if with.size()[0] == 0 || without.size()[0] == 0 {
        return Ok(None);
    }
    let direction = with.mean_dim(&[0i64][..], false, Kind::Float)
        - without.mean_dim(&[0i64][..], false, Kind::Float);
    // Faces without the attribute, so that adding it shows.
    let faces = without.narrow(0, 0, ATTRIBUTE_FACES.min(without.size()[0]));
    let face_images = data::to_unit_float(
        &held_out.images.index_select(
            0,
            &has.logical_not()
                .nonzero()
                .squeeze_dim(1)
                .narrow(0, 0, faces.size()[0])
                .to_device(held_out.images.device()),
        ),
    );
    let mut rows = Vec::new();
    for f in 0..faces.size()[0] {
        let codes: Vec<Tensor> = ATTRIBUTE_STRENGTHS
            .iter()
            .map(|&alpha| faces.get(f) + &direction * alpha)
            .collect();
        rows.push(Tensor::cat(
            &[
                face_images.narrow(0, f, 1).to_device(device),
                model.decode(&Tensor::stack(&codes, 0)),
            ],
            0,
        ));
    }
    png::write_grid(
        &Tensor::cat(&rows, 0),
        ATTRIBUTE_STRENGTHS.len() + 1,
        &run.evaluation_picture(EvaluationPicture::Attribute),
    )?;
    Ok(Some(config.eval.attribute.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversals_show_the_highest_kl_dimensions_first() {
        let kl = [0.1, 3.0, 0.5, 3.0, 2.0];
        assert_eq!(highest_kl_dimensions(&kl, 3), vec![1, 3, 4]);
        assert_eq!(highest_kl_dimensions(&kl, 8), vec![1, 3, 4, 2, 0]);
    }
}
