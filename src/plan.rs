//! Resolution of a spec into fully specified, validated `RunConfig`s, with their labels.
use crate::config::{DataConfig, DataSource, ModelConfig, RunConfig, RunId, TrainConfig};
use crate::spec::{LoadedSpec, SpecError};

pub const DEFAULT_CHANNELS: [usize; 5] = [32, 64, 128, 256, 512];

/// One run of an experiment: its resolved config, identity and human label.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    pub id: RunId,
    pub label: String,
    pub config: RunConfig,
}

fn positive(
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
    let channels: Vec<usize> = match &spec.model.channels {
        None => DEFAULT_CHANNELS.to_vec(),
        Some(list) if list.is_empty() || list.len() > 8 => {
            return Err(loaded.error(
                "model.channels",
                format!("expected 1 to 8 widths, got {}", list.len()),
            ));
        }
        Some(list) => {
            if let Some(bad) = list.iter().find(|&&c| c < 1) {
                return Err(loaded.error(
                    "model.channels",
                    format!("expected positive widths, got {bad}"),
                ));
            }
            list.iter().map(|&c| c as usize).collect()
        }
    };
    let factor = 1i64 << channels.len();
    let image_size = spec.data.image_size.unwrap_or(64);
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
    let data = DataConfig {
        source: spec.data.source.unwrap_or(DataSource::Synthetic),
        image_size: image_size as u32,
        dataset_seed: spec.data.dataset_seed.unwrap_or(0),
        train_images: positive(loaded, "data.train_images", spec.data.train_images, 4096)?,
        val_images: positive(loaded, "data.val_images", spec.data.val_images, 256)?,
        limit,
    };
    let model = ModelConfig {
        residual: spec.model.residual.unwrap_or(true),
        latent_dim: positive(loaded, "model.latent_dim", spec.model.latent_dim, 128)?,
        channels,
    };
    let t = &spec.train;
    let epochs = positive(loaded, "train.epochs", t.epochs, 10)?;
    let train = TrainConfig {
        epochs: u32::try_from(epochs).map_err(|_| {
            loaded.error(
                "train.epochs",
                format!("expected at most {}, got {epochs}", u32::MAX),
            )
        })?,
        batch_size: positive(loaded, "train.batch_size", t.batch_size, 64)?,
        lr: float_in(loaded, "train.lr", t.lr, 1e-3, "a positive number", |v| {
            v > 0.0
        })?,
        beta: float_in(loaded, "train.beta", t.beta, 1.0, "a number >= 0", |v| {
            v >= 0.0
        })?,
        adam_beta1: float_in(
            loaded,
            "train.adam_beta1",
            t.adam_beta1,
            0.9,
            "a number in [0, 1)",
            |v| (0.0..1.0).contains(&v),
        )?,
        adam_beta2: float_in(
            loaded,
            "train.adam_beta2",
            t.adam_beta2,
            0.999,
            "a number in [0, 1)",
            |v| (0.0..1.0).contains(&v),
        )?,
        adam_eps: float_in(
            loaded,
            "train.adam_eps",
            t.adam_eps,
            1e-8,
            "a positive number",
            |v| v > 0.0,
        )?,
    };
    Ok(RunConfig {
        seed: spec.seed.unwrap_or(0),
        data,
        model,
        train,
    })
}

/// Every run the spec describes.
pub fn plan(loaded: &LoadedSpec) -> Result<Vec<PlannedRun>, SpecError> {
    let config = resolve(loaded)?;
    Ok(vec![PlannedRun {
        id: config.id(),
        label: loaded.spec.name.clone(),
        config,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse;
    use std::path::Path;

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
        ];
        for (text, expected) in cases {
            assert_eq!(resolve_text(text).unwrap_err(), expected);
        }
    }

    #[test]
    fn small_channel_lists_allow_small_images() {
        let config =
            resolve_text("name: a\ndata:\n  image_size: 8\nmodel:\n  channels: [4, 8]\n").unwrap();
        assert_eq!(config.data.image_size, 8);
    }
}
