//! `vaelab bench --fid-samples N`: what `eval.fid` costs on this machine: extracting the
//! features of N generated 64×64 images and of N reference images through an extractor,
//! and the metric math over them (FID's moments and matrix square root, KID's 100 subsets,
//! k-NN precision and recall).
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use tch::{CModule, Device, IValue, Kind, Tensor};

use crate::evaluate::features::{
    FeatureStats, frechet_distance, kernel_distance, kid_subsets, precision_recall,
};

#[derive(Debug, Serialize)]
pub struct FidBenchResult {
    pub samples: i64,
    pub feature_width: i64,
    /// Features of the samples and of the reference, each; NaN without an extractor.
    pub extraction_seconds: f64,
    pub fid_seconds: f64,
    pub kid_seconds: f64,
    pub precision_recall_seconds: f64,
}

/// Times `eval.fid`'s parts for `samples` images; with no extractor, the metric math on
/// random features of `feature_width` columns (Inception's 2048).
pub fn fid_speed(
    samples: i64,
    feature_width: i64,
    extractor: Option<&Path>,
    device: Device,
) -> Result<FidBenchResult, tch::TchError> {
    tch::manual_seed(0);
    let (features, extraction_seconds) = match extractor {
        Some(path) => {
            let module = CModule::load_on_device(path, device)?;
            let images = Tensor::randint(256, [samples, 3, 64, 64], (Kind::Uint8, device));
            let started = Instant::now();
            let mut rows = Vec::new();
            for start in (0..samples).step_by(256) {
                let batch = images.narrow(0, start, 256.min(samples - start));
                let IValue::Tensor(out) =
                    module.forward_is(&[IValue::Tensor(batch), IValue::Bool(true)])?
                else {
                    return Err(tch::TchError::Kind(
                        "the extractor returned no tensor".into(),
                    ));
                };
                rows.push(out.flatten(1, -1).to_kind(Kind::Double));
            }
            let features = Tensor::cat(&rows, 0);
            let _ = features.sum(Kind::Double).double_value(&[]);
            (features, started.elapsed().as_secs_f64())
        }
        None => (
            Tensor::randn([samples, feature_width], (Kind::Double, device)),
            f64::NAN,
        ),
    };
    let reference = &features * 0.9 + 0.05;
    let timed = |f: &dyn Fn()| {
        let started = Instant::now();
        f();
        started.elapsed().as_secs_f64()
    };
    let fid_seconds = timed(&|| {
        let _ = frechet_distance(&FeatureStats::of(&features), &FeatureStats::of(&reference));
    });
    let subsets: Vec<(Tensor, Tensor)> = kid_subsets(samples, samples, 100, 1000, 1)
        .into_iter()
        .map(|(r, f)| (r.to_device(device), f.to_device(device)))
        .collect();
    let kid_seconds = timed(&|| {
        let _ = kernel_distance(&reference, &features, &subsets);
    });
    let precision_recall_seconds = timed(&|| {
        let _ = precision_recall(&reference, &features, 3);
    });
    Ok(FidBenchResult {
        samples,
        feature_width: features.size()[1],
        extraction_seconds,
        fid_seconds,
        kid_seconds,
        precision_recall_seconds,
    })
}
