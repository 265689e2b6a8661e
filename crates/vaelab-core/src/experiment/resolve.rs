//! Resolution of one spec document into a fully specified, validated [`RunConfig`]: every
//! field a spec leaves out takes the `Default` of its config type, and every value is
//! checked, with errors that name the file, line, field, value and what is allowed.
//!
//! Over 500 lines with its tests (about 130), which pin each error message.
use crate::experiment::config::{
    DEFAULT_FID_SAMPLES, DEFAULT_HIDDEN, DataConfig, DataSource, EvalConfig, EvalSplit, FidConfig,
    ModelConfig, ModelKind, Norm, RunConfig, TrainConfig,
};
use crate::experiment::spec::{LoadedSpec, SpecError, did_you_mean};

/// A count that may be 0 (a switch that is off at 0).
fn non_negative(
    loaded: &LoadedSpec,
    field: &str,
    value: Option<i64>,
    limit: u64,
) -> Result<u64, SpecError> {
    let v = value.unwrap_or(0);
    if v < 0 || v as u64 > limit {
        return Err(loaded.error(
            field,
            format!("expected an integer from 0 to {limit}, got {v}"),
        ));
    }
    Ok(v as u64)
}

pub(super) fn positive(
    loaded: &LoadedSpec,
    field: &str,
    value: Option<i64>,
    default: i64,
) -> Result<usize, SpecError> {
    let v = value.unwrap_or(default);
    if v < 1 {
        return Err(loaded.error(field, format!("expected a positive integer, got {v}")));
    }
    Ok(v as usize)
}

fn float_in(
    loaded: &LoadedSpec,
    field: &str,
    value: Option<f64>,
    default: f64,
    allowed: &str,
    ok: impl Fn(f64) -> bool,
) -> Result<f64, SpecError> {
    let v = value.unwrap_or(default);
    if !v.is_finite() || !ok(v) {
        return Err(loaded.error(field, format!("expected {allowed}, got {v}")));
    }
    Ok(v)
}

/// Resolves defaults and checks every field; the result is the only input training takes.
pub fn resolve(loaded: &LoadedSpec) -> Result<RunConfig, SpecError> {
    let spec = &loaded.spec;
    let defaults = RunConfig::default();
    let source = spec.data.source.unwrap_or(defaults.data.source);
    let channels = resolve_channels(loaded, &defaults.model)?;
    let kind = spec.model.kind.unwrap_or_default();
    // An MLP has no down-sampling stages, so any image size suits it.
    let depth = if kind.is_conv() { channels.len() } else { 0 };
    let data = resolve_data(loaded, &defaults.data, source, depth)?;
    let model = resolve_model(loaded, &defaults.model, channels, kind)?;
    let train = resolve_train(loaded, &defaults.train)?;
    let eval = resolve_eval(loaded, &defaults.eval, source)?;
    Ok(RunConfig {
        seed: spec.seed.unwrap_or(defaults.seed),
        data,
        model,
        train,
        eval,
    })
}

/// The `model:` section, with its widths resolved already.
fn resolve_model(
    loaded: &LoadedSpec,
    defaults: &ModelConfig,
    channels: Vec<usize>,
    kind: ModelKind,
) -> Result<ModelConfig, SpecError> {
    let m = &loaded.spec.model;
    let residual = m.residual.unwrap_or(defaults.residual);
    let blocks_per_stage = positive(
        loaded,
        "model.blocks_per_stage",
        m.blocks_per_stage,
        defaults.blocks_per_stage.into(),
    )?;
    if blocks_per_stage > MAX_BLOCKS_PER_STAGE {
        return Err(loaded.error(
            "model.blocks_per_stage",
            format!("expected 1 to {MAX_BLOCKS_PER_STAGE}, got {blocks_per_stage}"),
        ));
    }
    let mut model = ModelConfig {
        kind,
        hidden: match kind {
            ModelKind::Conv => Vec::new(),
            ModelKind::Mlp => resolve_hidden(loaded)?,
        },
        residual,
        latent_dim: positive(
            loaded,
            "model.latent_dim",
            m.latent_dim,
            defaults.latent_dim as i64,
        )?,
        channels,
        norm: m.norm.unwrap_or(defaults.norm),
        likelihood: m.likelihood.unwrap_or(defaults.likelihood),
        init: m.init.unwrap_or(defaults.init),
        block: m.block.unwrap_or(defaults.block),
        blocks_in: m.blocks_in.unwrap_or(defaults.blocks_in),
        blocks_per_stage: blocks_per_stage as u32,
    };
    if kind == ModelKind::Mlp {
        // The convolutional fields a spec sets for its other arms mean nothing here (and
        // are no part of an MLP's identity); resolved as a plain model without norm.
        model.residual = false;
        model.norm = Norm::None;
    }
    if !model.residual {
        // A plain model has no blocks: their settings (set for a whole grid, say) would
        // only split one model's runs between ids.
        model.block = defaults.block;
        model.blocks_in = defaults.blocks_in;
        model.blocks_per_stage = defaults.blocks_per_stage;
    }
    Ok(model)
}

/// `model.hidden`: 1 to 8 positive widths, [`DEFAULT_HIDDEN`] when not given.
fn resolve_hidden(loaded: &LoadedSpec) -> Result<Vec<usize>, SpecError> {
    let Some(list) = &loaded.spec.model.hidden else {
        return Ok(DEFAULT_HIDDEN.to_vec());
    };
    if list.is_empty() || list.len() > 8 {
        return Err(loaded.error(
            "model.hidden",
            format!("expected 1 to 8 widths, got {}", list.len()),
        ));
    }
    if let Some(bad) = list.iter().find(|&&w| !(1..=65_536).contains(&w)) {
        return Err(loaded.error(
            "model.hidden",
            format!("expected widths from 1 to 65536, got {bad}"),
        ));
    }
    Ok(list.iter().map(|&w| w as usize).collect())
}

/// Deeper stages than this are a typo more often than a design.
const MAX_BLOCKS_PER_STAGE: usize = 8;

/// `model.channels`: 1 to 8 positive widths.
fn resolve_channels(loaded: &LoadedSpec, defaults: &ModelConfig) -> Result<Vec<usize>, SpecError> {
    match &loaded.spec.model.channels {
        None => Ok(defaults.channels.clone()),
        Some(list) if list.is_empty() || list.len() > 8 => Err(loaded.error(
            "model.channels",
            format!("expected 1 to 8 widths, got {}", list.len()),
        )),
        Some(list) => {
            if let Some(bad) = list.iter().find(|&&c| c < 1) {
                return Err(loaded.error(
                    "model.channels",
                    format!("expected positive widths, got {bad}"),
                ));
            }
            Ok(list.iter().map(|&c| c as usize).collect())
        }
    }
}

/// The `data:` section; `image_size` must suit the `depth` down-sampling stages.
fn resolve_data(
    loaded: &LoadedSpec,
    defaults: &DataConfig,
    source: DataSource,
    depth: usize,
) -> Result<DataConfig, SpecError> {
    let spec = &loaded.spec;
    let factor = 1i64 << depth;
    let image_size = spec
        .data
        .image_size
        .unwrap_or(i64::from(defaults.image_size));
    if image_size < factor || image_size % factor != 0 || image_size > 1024 {
        return Err(loaded.error(
            "data.image_size",
            format!(
                "expected a multiple of {factor} (2 to the number of model.channels) between {factor} and 1024, got {image_size}"
            ),
        ));
    }
    let limit = match spec.data.limit {
        None => None,
        Some(v) => Some(positive(loaded, "data.limit", Some(v), 1)?),
    };
    Ok(DataConfig {
        source,
        image_size: image_size as u32,
        dataset_seed: spec.data.dataset_seed.unwrap_or(defaults.dataset_seed),
        train_images: positive(
            loaded,
            "data.train_images",
            spec.data.train_images,
            defaults.train_images as i64,
        )?,
        val_images: positive(
            loaded,
            "data.val_images",
            spec.data.val_images,
            defaults.val_images as i64,
        )?,
        limit,
        root: spec.data.root.clone(),
        // Filled in by planning, which reads the data (`data::fingerprint::plan`).
        fingerprint: None,
        crop: match spec.data.crop {
            None => None,
            Some(v) => Some(positive(loaded, "data.crop", Some(v), 1)? as u32),
        },
        resize_filter: match source {
            DataSource::Synthetic => spec.data.resize_filter,
            _ => Some(
                spec.data
                    .resize_filter
                    .unwrap_or(DataConfig::DEFAULT_RESIZE_FILTER),
            ),
        },
        val_ratio: match (spec.data.source, spec.data.val_ratio) {
            (_, Some(r)) if !(r > 0.0 && r < 1.0) => {
                return Err(loaded.error(
                    "data.val_ratio",
                    format!("expected a number between 0 and 1, got {r}"),
                ));
            }
            (Some(DataSource::Folder), ratio) => {
                Some(ratio.unwrap_or(DataConfig::DEFAULT_FOLDER_VAL_RATIO))
            }
            (_, ratio) => ratio,
        },
        split: match (spec.data.split, source) {
            (Some(EvalSplit::Validation) | None, _) => None,
            (Some(EvalSplit::Test), DataSource::Folder) => {
                return Err(loaded.error(
                    "data.split",
                    "an image folder has no test partition (it is split into training and validation by data.val_ratio); use split: validation, or put the test images in a folder of their own",
                ));
            }
            (Some(EvalSplit::Test), _) => Some(EvalSplit::Test),
        },
        hflip: spec.data.hflip.unwrap_or(defaults.hflip),
    })
}

/// The `train:` section.
fn resolve_train(loaded: &LoadedSpec, defaults: &TrainConfig) -> Result<TrainConfig, SpecError> {
    let t = &loaded.spec.train;
    let epochs = positive(loaded, "train.epochs", t.epochs, i64::from(defaults.epochs))?;
    Ok(TrainConfig {
        epochs: u32::try_from(epochs).map_err(|_| {
            loaded.error(
                "train.epochs",
                format!("expected at most {}, got {epochs}", u32::MAX),
            )
        })?,
        batch_size: positive(
            loaded,
            "train.batch_size",
            t.batch_size,
            defaults.batch_size as i64,
        )?,
        lr: float_in(
            loaded,
            "train.lr",
            t.lr,
            defaults.lr,
            "a positive number",
            |v| v > 0.0,
        )?,
        beta: float_in(
            loaded,
            "train.beta",
            t.beta,
            defaults.beta,
            "a number >= 0",
            |v| v >= 0.0,
        )?,
        adam_beta1: float_in(
            loaded,
            "train.adam_beta1",
            t.adam_beta1,
            defaults.adam_beta1,
            "a number in [0, 1)",
            |v| (0.0..1.0).contains(&v),
        )?,
        adam_beta2: float_in(
            loaded,
            "train.adam_beta2",
            t.adam_beta2,
            defaults.adam_beta2,
            "a number in [0, 1)",
            |v| (0.0..1.0).contains(&v),
        )?,
        adam_eps: float_in(
            loaded,
            "train.adam_eps",
            t.adam_eps,
            defaults.adam_eps,
            "a positive number",
            |v| v > 0.0,
        )?,
        precision: t.precision.unwrap_or_default(),
        deterministic: t.deterministic.unwrap_or(defaults.deterministic),
        tf32: t.tf32.unwrap_or(defaults.tf32),
        memory_format: t.memory_format.unwrap_or_default(),
        kl_warmup_epochs: non_negative(
            loaded,
            "train.kl_warmup_epochs",
            t.kl_warmup_epochs,
            u64::from(u32::MAX),
        )? as u32,
        free_bits: float_in(
            loaded,
            "train.free_bits",
            t.free_bits,
            defaults.free_bits,
            "a number of nats >= 0",
            |v| v >= 0.0,
        )?,
        lr_schedule: t.lr_schedule.unwrap_or(defaults.lr_schedule),
        lr_warmup_steps: non_negative(
            loaded,
            "train.lr_warmup_steps",
            t.lr_warmup_steps,
            i64::MAX as u64,
        )?,
        grad_clip_norm: match t.grad_clip_norm {
            None => None,
            Some(norm) => Some(float_in(
                loaded,
                "train.grad_clip_norm",
                Some(norm),
                norm,
                "a positive number (leave it out for no clipping)",
                |v| v > 0.0,
            )?),
        },
        select: t.select.unwrap_or(defaults.select),
    })
}

/// The `eval:` section; the attribute must be one the `source` labels.
fn resolve_eval(
    loaded: &LoadedSpec,
    eval_defaults: &EvalConfig,
    source: DataSource,
) -> Result<EvalConfig, SpecError> {
    let spec = &loaded.spec;
    Ok(EvalConfig {
        iwae_samples: positive(
            loaded,
            "eval.iwae_samples",
            spec.eval.iwae_samples,
            eval_defaults.iwae_samples as i64,
        )?,
        iwae_images: positive(
            loaded,
            "eval.iwae_images",
            spec.eval.iwae_images,
            eval_defaults.iwae_images as i64,
        )?,
        attribute: match &spec.eval.attribute {
            None => eval_defaults.attribute.clone(),
            Some(name) if name.trim().is_empty() => {
                return Err(loaded.error("eval.attribute", "expected an attribute name, got \"\""));
            }
            Some(name) => {
                let known = super::attributes::attribute_names(source);
                if !known.is_empty() && !known.contains(&name.as_str()) {
                    return Err(loaded.error(
                        "eval.attribute",
                        format!(
                            "{name:?} is not an attribute of the {} dataset{}",
                            serde_yaml::to_string(&source).unwrap_or_default().trim(),
                            did_you_mean(name, known)
                        ),
                    ));
                }
                name.clone()
            }
        },
        fid: resolve_fid(loaded)?,
    })
}

/// `eval.fid`, resolved against the spec's directory; the extractor must exist, since
/// vaelab never downloads one.
fn resolve_fid(loaded: &LoadedSpec) -> Result<Option<FidConfig>, SpecError> {
    let Some(fid) = &loaded.spec.eval.fid else {
        return Ok(None);
    };
    let Some(extractor) = &fid.extractor else {
        return Err(loaded.error(
            "eval.fid.extractor",
            "expected the path of a TorchScript feature extractor, such as the standard \
             inception-2015-12-05.pt (clean-fid and StyleGAN2-ADA load the same file); \
             vaelab never downloads it",
        ));
    };
    // Relative to where vaelab runs, as `data.root` is.
    let extractor = extractor.clone();
    if !extractor.is_file() {
        return Err(loaded.error(
            "eval.fid.extractor",
            format!(
                "{} is not a file: put the TorchScript extractor there or point eval.fid.extractor at it",
                extractor.display()
            ),
        ));
    }
    let samples = positive(
        loaded,
        "eval.fid.samples",
        fid.samples,
        DEFAULT_FID_SAMPLES as i64,
    )?;
    if samples < 2 {
        return Err(loaded.error(
            "eval.fid.samples",
            format!("expected at least 2 samples (a covariance needs two), got {samples}"),
        ));
    }
    Ok(Some(FidConfig {
        extractor,
        samples,
        reference: fid.reference.unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::experiment::config::{BlockDesign, BlocksIn, DEFAULT_CHANNELS};
    use crate::experiment::spec::parse;

    fn resolve_text(text: &str) -> Result<RunConfig, String> {
        let loaded = parse(Path::new("e.yaml"), text).map_err(|e| e.to_string())?;
        resolve(&loaded).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_the_seed_model() {
        let config = resolve_text("name: a\n").unwrap();
        assert_eq!(config.model.channels, DEFAULT_CHANNELS.to_vec());
        assert_eq!(config.model.latent_dim, 128);
        assert!(config.model.residual);
        assert_eq!(config.train.lr, 1e-3);
        assert_eq!(config.train.batch_size, 64);
    }

    #[test]
    fn bad_values_name_file_line_field_value_and_what_is_allowed() {
        let cases = [
            (
                "name: a\nmodel:\n  latent_dim: -3\n",
                "e.yaml:3: model.latent_dim: expected a positive integer, got -3",
            ),
            (
                "name: a\ndata:\n  image_size: 48\n",
                "e.yaml:3: data.image_size: expected a multiple of 32 (2 to the number of model.channels) between 32 and 1024, got 48",
            ),
            (
                "name: a\ntrain:\n  lr: 0\n",
                "e.yaml:3: train.lr: expected a positive number, got 0",
            ),
            (
                "name: a\ntrain:\n  beta: -1\n",
                "e.yaml:3: train.beta: expected a number >= 0, got -1",
            ),
            (
                "name: a\nmodel:\n  channels: []\n",
                "e.yaml:3: model.channels: expected 1 to 8 widths, got 0",
            ),
            (
                "name: a\ntrain:\n  kl_warmup_epochs: -1\n",
                "e.yaml:3: train.kl_warmup_epochs: expected an integer from 0 to 4294967295, got -1",
            ),
            (
                "name: a\ntrain:\n  free_bits: -0.5\n",
                "e.yaml:3: train.free_bits: expected a number of nats >= 0, got -0.5",
            ),
            (
                "name: a\ntrain:\n  lr_warmup_steps: -3\n",
                "e.yaml:3: train.lr_warmup_steps: expected an integer from 0 to 9223372036854775807, got -3",
            ),
            (
                "name: a\ntrain:\n  grad_clip_norm: 0\n",
                "e.yaml:3: train.grad_clip_norm: expected a positive number (leave it out for no clipping), got 0",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(resolve_text(text).unwrap_err(), expected);
        }
    }

    #[test]
    fn choices_are_named_with_what_is_allowed() {
        let err = resolve_text("name: a\ntrain:\n  lr_schedule: linear\n").unwrap_err();
        assert!(
            err.starts_with("e.yaml:3: train.lr_schedule: unknown variant `linear`, expected `constant` or `cosine`"),
            "{err}"
        );
        let err = resolve_text("name: a\ntrain:\n  select: first\n").unwrap_err();
        assert!(
            err.starts_with(
                "e.yaml:3: train.select: unknown variant `first`, expected `last` or `best`"
            ),
            "{err}"
        );
        let config = resolve_text(
            "name: a\ntrain:\n  lr_schedule: cosine\n  lr_warmup_steps: 10\n  kl_warmup_epochs: 2\n  free_bits: 0.1\n  grad_clip_norm: 5\n  select: best\n",
        )
        .unwrap();
        assert_eq!(config.train.lr_warmup_steps, 10);
        assert_eq!(config.train.kl_warmup_epochs, 2);
        assert_eq!(config.train.grad_clip_norm, Some(5.0));
    }

    #[test]
    fn small_channel_lists_allow_small_images() {
        let config =
            resolve_text("name: a\ndata:\n  image_size: 8\nmodel:\n  channels: [4, 8]\n").unwrap();
        assert_eq!(config.data.image_size, 8);
    }

    #[test]
    fn block_knobs_resolve_and_a_plain_model_drops_them() {
        let config = resolve_text(
            "name: a\nmodel:\n  block: skipinit\n  blocks_in: decoder\n  blocks_per_stage: 2\n",
        )
        .unwrap();
        assert_eq!(
            (
                config.model.block,
                config.model.blocks_in,
                config.model.blocks_per_stage
            ),
            (BlockDesign::Skipinit, BlocksIn::Decoder, 2)
        );
        let plain = resolve_text(
            "name: a\nmodel:\n  residual: false\n  block: preact\n  blocks_per_stage: 3\n",
        )
        .unwrap();
        let defaults = ModelConfig::default();
        assert_eq!(
            (plain.model.block, plain.model.blocks_per_stage),
            (defaults.block, defaults.blocks_per_stage),
            "a plain model has no blocks to describe"
        );
        let err = resolve_text("name: a\nmodel:\n  blocks_per_stage: 0\n").unwrap_err();
        assert!(
            err.starts_with("e.yaml:3: model.blocks_per_stage: expected a positive integer, got 0"),
            "{err}"
        );
        let err = resolve_text("name: a\nmodel:\n  block: bottleneck\n").unwrap_err();
        assert!(
            err.contains(
                "unknown variant `bottleneck`, expected one of `seed`, `preact`, `skipinit`"
            ),
            "{err}"
        );
    }
}
