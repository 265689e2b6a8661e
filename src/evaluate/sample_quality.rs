//! `eval.fid`: prior samples and reconstructions through a TorchScript feature extractor
//! (the standard `inception-2015-12-05.pt`, or any file with its call signature), scored
//! against reference images by FID, KID and precision/recall (`features`). The reference
//! features are extracted once per (data, reference images, count, extractor) and kept in
//! the store's `.fid-reference/`, so a sweep extracts them once.
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tch::{CModule, IValue, Kind, Tensor};

use super::features::{
    FeatureStats, frechet_distance, kernel_distance, kid_subsets, precision_recall,
};
use super::{EvalData, EvalError};
use crate::experiment::config::{FidConfig, FidReference, RunConfig, choice_name};
use crate::model::Vae;
use crate::progress::Reporter;
use crate::rng::{self, Stream};
use crate::store::{self, FidScores};

/// The store folder that holds reference features, beside the run directories.
pub const REFERENCE_DIR: &str = ".fid-reference";

/// KID's subsets and their size at most, as clean-fid computes it.
const KID_SUBSETS: usize = 100;
const KID_SUBSET_SIZE: i64 = 1000;

/// Neighbours that set each manifold ball's radius (Kynkäänniemi et al. 2019).
const NEIGHBOURS: i64 = 3;

/// A loaded extractor and what it was loaded from.
struct Extractor {
    module: CModule,
    path: PathBuf,
    sha256: String,
}

impl Extractor {
    fn load(path: &Path, device: tch::Device) -> Result<Self, EvalError> {
        let sha256 = store::extractor_sha256(path)?;
        let module = CModule::load_on_device(path, device).map_err(|e| EvalError::Extractor {
            path: path.to_path_buf(),
            detail: format!("cannot load it as TorchScript: {e}"),
        })?;
        Ok(Self {
            module,
            path: path.to_path_buf(),
            sha256,
        })
    }

    /// Features of uint8 NCHW `images`, a batch at a time, one f64 row per image.
    fn features(&self, images: &Tensor, batch: i64) -> Result<Tensor, EvalError> {
        let n = images.size()[0];
        let mut rows = Vec::new();
        for start in (0..n).step_by(batch as usize) {
            let chunk = images.narrow(0, start, batch.min(n - start));
            let out = self
                .module
                .forward_is(&[IValue::Tensor(chunk), IValue::Bool(true)])
                .map_err(|e| {
                    self.error(format!("forward(images, return_features=True) failed: {e}"))
                })?;
            let IValue::Tensor(features) = out else {
                return Err(self.error("forward did not return a tensor of features".into()));
            };
            rows.push(features.flatten(1, -1).to_kind(Kind::Double));
        }
        Ok(Tensor::cat(&rows, 0))
    }

    fn error(&self, detail: String) -> EvalError {
        EvalError::Extractor {
            path: self.path.clone(),
            detail,
        }
    }
}

/// Decoded images as the extractor takes them: uint8 in [0, 255].
fn to_uint8(images: &Tensor) -> Tensor {
    (images * 255.0)
        .round()
        .clamp(0.0, 255.0)
        .to_kind(Kind::Uint8)
}

/// Features of the reference images, from the store's cache or extracted and cached.
fn reference_features(
    extractor: &Extractor,
    config: &RunConfig,
    images: &Tensor,
    which: FidReference,
    store_root: &Path,
    batch: i64,
) -> Result<Tensor, EvalError> {
    let count = images.size()[0];
    let mut key = Sha256::new();
    // The data's identity (its fingerprint on disk, its generator's settings otherwise).
    let mut data = config.data.clone();
    data.root = None;
    key.update(serde_json::to_string(&data).unwrap_or_default());
    key.update(format!(
        "\n{}\n{count}\n{}",
        choice_name(&which),
        extractor.sha256
    ));
    let name: String = key
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = store_root.join(REFERENCE_DIR);
    let path = dir.join(format!("{name}.safetensors"));
    if let Ok(cached) = Tensor::read_safetensors(&path)
        && let Some((_, features)) = cached.into_iter().find(|(n, _)| n == "features")
        && features.size()[0] == count
    {
        return Ok(features.to_kind(Kind::Double).to_device(images.device()));
    }
    let features = extractor.features(images, batch)?;
    let io = |e: std::io::Error| {
        EvalError::Store(store::StoreError::Io {
            path: dir.clone(),
            action: "cannot write the reference features",
            source: e,
        })
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    // Written beside, then renamed: a reader sees the whole file or none.
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    let host = features.to_device(tch::Device::Cpu).to_kind(Kind::Float);
    Tensor::write_safetensors(&[("features", &host)], &partial)
        .map_err(|e| extractor.error(format!("cannot write {}: {e}", partial.display())))?;
    std::fs::rename(&partial, &path).map_err(io)?;
    // What the cache holds, so the first run of a sweep scores against the same values
    // as every later one.
    Ok(host.to_kind(Kind::Double).to_device(images.device()))
}

/// FID of prior samples and of reconstructions, KID and precision/recall, with the
/// protocol they were made under.
pub(super) fn score(
    model: &Vae,
    config: &RunConfig,
    held_out: &EvalData,
    settings: &FidConfig,
    store_root: &Path,
    reporter: &dyn Reporter,
) -> Result<FidScores, EvalError> {
    let device = held_out.images.device();
    let extractor = Extractor::load(&settings.extractor, device)?;
    let batch = config.train.batch_size.max(1) as i64;
    let samples = settings.samples as i64;
    let pool = match settings.reference {
        FidReference::Train => held_out.train_images,
        FidReference::Evaluation => held_out.images,
    };
    let reference_images = pool.narrow(0, 0, samples.min(pool.size()[0]));
    reporter.note(&format!(
        "FID: {samples} samples against {} {} images, extractor {} (sha256 {})",
        reference_images.size()[0],
        choice_name(&settings.reference),
        settings.extractor.display(),
        &extractor.sha256[..12]
    ));
    let reference = reference_features(
        &extractor,
        config,
        &reference_images,
        settings.reference,
        store_root,
        batch,
    )?;
    let latent = model.latent_dim();
    let mut generated = Vec::new();
    for start in (0..samples).step_by(batch as usize) {
        let len = batch.min(samples - start);
        let at = [u64::MAX - 2, start as u64];
        let z =
            rng::cpu_normal(config.seed, Stream::Evaluation, &at, &[len, latent]).to_device(device);
        generated.push(to_uint8(&model.decode(&z)));
    }
    let sample_features = extractor.features(&Tensor::cat(&generated, 0), batch)?;
    let held = held_out.images;
    let mut reconstructions = Vec::new();
    for start in (0..held.size()[0]).step_by(batch as usize) {
        let x =
            crate::data::to_unit_float(&held.narrow(0, start, batch.min(held.size()[0] - start)));
        reconstructions.push(to_uint8(&model.decode(&model.encode(&x).mu)));
    }
    let recon_features = extractor.features(&Tensor::cat(&reconstructions, 0), batch)?;
    let held_features = extractor.features(held, batch)?;

    let fid = frechet_distance(
        &FeatureStats::of(&sample_features),
        &FeatureStats::of(&reference),
    );
    let reconstruction_fid = frechet_distance(
        &FeatureStats::of(&recon_features),
        &FeatureStats::of(&held_features),
    );
    let subset_seed = rng::torch_seed(config.seed, Stream::Evaluation, &[u64::MAX - 3]);
    let subsets = kid_subsets(
        reference.size()[0],
        sample_features.size()[0],
        KID_SUBSETS,
        KID_SUBSET_SIZE,
        subset_seed,
    );
    let subsets: Vec<(Tensor, Tensor)> = subsets
        .into_iter()
        .map(|(r, f)| (r.to_device(device), f.to_device(device)))
        .collect();
    let (kid, kid_std) = kernel_distance(&reference, &sample_features, &subsets);
    let pr = precision_recall(&reference, &sample_features, NEIGHBOURS);
    Ok(FidScores {
        fid,
        reconstruction_fid,
        kid,
        kid_std,
        precision: pr.precision,
        recall: pr.recall,
        extractor_sha256: extractor.sha256,
        samples: samples as u32,
        reference: choice_name(&settings.reference),
        reference_images: reference_images.size()[0] as u32,
    })
}
