//! The YAML shape of an experiment, its parsing, and validation with line-numbered errors.
//!
//! A spec is what a person writes; [`crate::experiment::plan`] resolves it into `RunConfig`s. Every
//! error names the file, the line, the field, the value found and what is allowed.
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::experiment::config::{
    BlockDesign, BlocksIn, DataSource, EvalSplit, FidReference, Init, Likelihood, LrSchedule,
    MemoryFormat, ModelKind, Norm, Precision, ResizeFilter, Select,
};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}: {field}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct SpecError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub source: Option<DataSource>,
    pub image_size: Option<i64>,
    pub dataset_seed: Option<u64>,
    pub train_images: Option<i64>,
    pub val_images: Option<i64>,
    pub limit: Option<i64>,
    /// Dataset directory for `celeba` (default `$VAELAB_CELEBA_ROOT`, else `data/celeba`).
    pub root: Option<PathBuf>,
    /// Centre crop size in pixels before resizing (148 is usual for CelebA at 64×64).
    pub crop: Option<i64>,
    pub resize_filter: Option<ResizeFilter>,
    pub val_ratio: Option<f64>,
    pub split: Option<EvalSplit>,
    pub hflip: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub kind: Option<ModelKind>,
    pub hidden: Option<Vec<i64>>,
    pub residual: Option<bool>,
    pub latent_dim: Option<i64>,
    pub channels: Option<Vec<i64>>,
    pub norm: Option<Norm>,
    pub likelihood: Option<Likelihood>,
    pub init: Option<Init>,
    pub block: Option<BlockDesign>,
    pub blocks_in: Option<BlocksIn>,
    pub blocks_per_stage: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    pub epochs: Option<i64>,
    pub batch_size: Option<i64>,
    pub lr: Option<f64>,
    pub beta: Option<f64>,
    pub adam_beta1: Option<f64>,
    pub adam_beta2: Option<f64>,
    pub adam_eps: Option<f64>,
    pub precision: Option<Precision>,
    pub deterministic: Option<bool>,
    pub tf32: Option<bool>,
    pub memory_format: Option<MemoryFormat>,
    pub kl_warmup_epochs: Option<i64>,
    pub free_bits: Option<f64>,
    pub lr_schedule: Option<LrSchedule>,
    pub lr_warmup_steps: Option<i64>,
    pub grad_clip_norm: Option<f64>,
    pub select: Option<Select>,
}

/// The end-of-run evaluation: measurement settings, never part of a run's identity.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSpec {
    pub iwae_samples: Option<i64>,
    pub iwae_images: Option<i64>,
    pub attribute: Option<String>,
    pub fid: Option<FidSpec>,
}

/// `eval.fid`: the feature extractor's file is required; the rest has defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FidSpec {
    pub extractor: Option<PathBuf>,
    pub samples: Option<i64>,
    pub reference: Option<FidReference>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// One seed; `seeds` lists replicates instead.
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub seeds: Option<Vec<u64>>,
    /// Dotted field path → list of values, expanded as a Cartesian product (in file order).
    #[serde(default)]
    pub grid: Option<serde_yaml::Mapping>,
    /// Named override sets: `- name: plain` plus dotted paths.
    #[serde(default)]
    pub variants: Option<Vec<serde_yaml::Mapping>>,
    /// Combinations to leave out: each entry matches runs whose `variant` and fields equal it.
    #[serde(default)]
    pub exclude: Option<Vec<serde_yaml::Mapping>>,
    /// The variant other variants are compared against in reports (default: the first).
    #[serde(default)]
    pub baseline: Option<String>,
    #[serde(default)]
    pub data: DataSpec,
    #[serde(default)]
    pub model: ModelSpec,
    #[serde(default)]
    pub train: TrainSpec,
    #[serde(default)]
    pub eval: EvalSpec,
    /// The study's primary question: seeds are added until it is answered.
    #[serde(default)]
    pub question: Option<QuestionSpec>,
}

/// `question:` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuestionSpec {
    /// A compared end-of-run metric's key (`elbo_bpd`, `best_val_loss`, ...).
    pub metric: String,
    /// Variants compared with the baseline, each paired with it by seed.
    pub compare: Vec<String>,
    /// The smallest difference that matters, in the metric's unit.
    pub margin: f64,
    /// The family-wise error rate over the declared comparisons (default 0.05).
    #[serde(default)]
    pub alpha: Option<f64>,
    pub seeds: SeedScheduleSpec,
}

/// `question.seeds` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedScheduleSpec {
    pub start: i64,
    pub step: i64,
    pub max: i64,
}

/// Every field a grid axis or a variant may set: `seed` and each field of the `data:`,
/// `model:` and `train:` sections, read from the section structs themselves, so a new field
/// is declared once (in its spec struct) and is overridable at once.
pub fn overridable() -> &'static [&'static str] {
    static PATHS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    PATHS.get_or_init(|| {
        let sections = [
            ("data", field_names::<DataSpec>()),
            ("model", field_names::<ModelSpec>()),
            ("train", field_names::<TrainSpec>()),
        ];
        let dotted = sections.into_iter().flat_map(|(section, fields)| {
            fields
                .iter()
                .map(move |field| &*format!("{section}.{field}").leak())
        });
        std::iter::once("seed").chain(dotted).collect()
    })
}

/// The field names serde expects of the struct `T`: the list its derived `Deserialize`
/// hands to `deserialize_struct`, caught by a deserializer that reads nothing else.
fn field_names<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{Error, Visitor, value};

    struct FieldNames<'a>(&'a mut &'static [&'static str]);

    impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
        type Error = value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, value::Error> {
            Err(value::Error::custom("only a struct's field names are read"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, value::Error> {
            *self.0 = fields;
            Err(value::Error::custom("only a struct's field names are read"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

/// " (did you mean `x`?)" when a known name is close to `unknown`.
pub fn did_you_mean(unknown: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::levenshtein(unknown, k), k))
        .filter(|(d, _)| *d <= 3.max(unknown.len() / 3))
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

/// A parsed spec with the text it came from, so later checks can point at lines.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    pub path: PathBuf,
    pub text: String,
    pub spec: ExperimentSpec,
    /// For one expanded run: fields set by a grid axis or variant, and the line that set them.
    pub origins: Vec<(String, usize)>,
}

impl LoadedSpec {
    /// An error about `field` (a dotted path such as `model.latent_dim`).
    pub fn error(&self, field: &str, message: impl Into<String>) -> SpecError {
        let origin = self
            .origins
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, line)| *line);
        SpecError {
            path: self.path.clone(),
            line: origin.or_else(|| locate(&self.text, field)),
            field: field.to_string(),
            message: message.into(),
        }
    }
}

pub fn load(path: &Path) -> Result<LoadedSpec, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|e| SpecError {
        path: path.to_path_buf(),
        line: None,
        field: "file".into(),
        message: format!("cannot read the spec: {e}"),
    })?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<LoadedSpec, SpecError> {
    let spec: ExperimentSpec = serde_yaml::from_str(text).map_err(|e| yaml_error(path, &e))?;
    let loaded = LoadedSpec {
        path: path.to_path_buf(),
        text: text.to_string(),
        spec,
        origins: Vec::new(),
    };
    let name = &loaded.spec.name;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        || name.starts_with('.')
    {
        return Err(loaded.error(
            "name",
            format!("expected letters, digits, '-', '_' or '.' (it names the report directory), got {name:?}"),
        ));
    }
    Ok(loaded)
}

/// Turns serde_yaml's message into "file:line: field: message".
pub fn yaml_error(path: &Path, error: &serde_yaml::Error) -> SpecError {
    let raw = error.to_string();
    // serde_yaml says "data.image_size: invalid type: ... at line 4 column 15".
    let without_location = raw.split(" at line ").next().unwrap_or(&raw).to_string();
    let (field, message) = match without_location.split_once(": ") {
        Some((field, message)) if !field.contains(' ') => (field.to_string(), message.to_string()),
        _ => ("spec".to_string(), without_location.clone()),
    };
    SpecError {
        path: path.to_path_buf(),
        line: error.location().map(|l| l.line()),
        field,
        message,
    }
}

/// Finds the line of `key` (taken whole, dots and all) under the top-level `section`; with
/// `item`, inside that list item of the section (block-style YAML).
pub fn locate_in_section(
    text: &str,
    section: &str,
    key: &str,
    item: Option<usize>,
) -> Option<usize> {
    let mut lines = text.lines().enumerate();
    let header = format!("{section}:");
    lines.by_ref().find(|(_, l)| l.starts_with(&header))?;
    let mut items_seen = 0usize;
    let mut in_item = item.is_none();
    let mut item_line = None;
    for (i, line) in lines {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') && !line.starts_with('-') {
            break;
        }
        let mut body = trimmed;
        if let Some(rest) = trimmed.strip_prefix("- ") {
            if let Some(wanted) = item {
                in_item = items_seen == wanted;
                if in_item {
                    item_line = Some(i + 1);
                }
            }
            items_seen += 1;
            body = rest.trim_start();
        }
        if in_item
            && body
                .strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with(':'))
        {
            return Some(i + 1);
        }
    }
    item_line
}

/// Finds the line (1-based) where a dotted field is written in block-style YAML.
pub fn locate(text: &str, dotted: &str) -> Option<usize> {
    let mut parts = dotted.split('.').peekable();
    let mut want = parts.next()?;
    let mut min_indent: Option<usize> = None;
    let mut found = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if min_indent.is_some_and(|min| indent < min) {
            break;
        }
        let Some(rest) = trimmed.strip_prefix(want) else {
            continue;
        };
        if rest.trim_start().starts_with(':') || rest.starts_with('"') {
            found = Some(i + 1);
            match parts.next() {
                Some(next) => {
                    want = next;
                    min_indent = Some(indent + 1);
                }
                None => return found,
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> String {
        parse(Path::new("x.yaml"), text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_fields_are_rejected_with_line_and_section() {
        let err = parse_err("name: a\nmodel:\n  latnt_dim: 3\n");
        assert!(
            err.starts_with("x.yaml:3: model: unknown field `latnt_dim`"),
            "{err}"
        );
    }

    #[test]
    fn wrong_types_name_the_field_and_line() {
        let err = parse_err("name: a\ntrain:\n  epochs: many\n");
        assert!(
            err.starts_with("x.yaml:3: train.epochs: invalid type"),
            "{err}"
        );
    }

    #[test]
    fn bad_names_are_rejected() {
        let err = parse_err("name: a/b\n");
        assert_eq!(
            err,
            "x.yaml:1: name: expected letters, digits, '-', '_' or '.' (it names the report directory), got \"a/b\""
        );
    }

    #[test]
    fn locate_in_section_finds_grid_keys_and_variant_items() {
        let text = "name: a\ngrid:\n  model.latent_dim: [1]\n  train.beta: [1]\nvariants:\n  - name: r\n    model.residual: true\n  - name: p\n    model.residual: false\n";
        assert_eq!(locate_in_section(text, "grid", "train.beta", None), Some(4));
        assert_eq!(
            locate_in_section(text, "variants", "model.residual", Some(1)),
            Some(9)
        );
        assert_eq!(
            locate_in_section(text, "variants", "name", Some(0)),
            Some(6)
        );
    }

    #[test]
    fn suggestions_for_close_names() {
        assert_eq!(
            did_you_mean("model.latent_dims", overridable()),
            " (did you mean `model.latent_dim`?)"
        );
        assert_eq!(did_you_mean("zzz.qqq", overridable()), "");
    }

    /// The overridable paths are the section structs' fields, so a field added to a spec
    /// struct is overridable with no second list to update.
    #[test]
    fn every_section_field_is_overridable_and_nothing_else() {
        let paths = overridable();
        for path in [
            "seed",
            "data.source",
            "data.hflip",
            "model.residual",
            "model.block",
            "model.blocks_per_stage",
            "train.epochs",
            "train.select",
        ] {
            assert!(paths.contains(&path), "{path} missing from {paths:?}");
        }
        assert!(!paths.iter().any(|p| p.starts_with("eval.")), "{paths:?}");
        // Each section struct rejects unknown fields, so a listed path that parses alone is
        // a real field; a made-up one does not.
        for path in &paths[1..] {
            let (section, field) = path.split_once('.').unwrap();
            let text = format!("name: a\n{section}:\n  {field}: null\n");
            assert!(parse(Path::new("e.yaml"), &text).is_ok(), "{path}");
        }
        assert!(parse(Path::new("e.yaml"), "name: a\nmodel:\n  depth: null\n").is_err());
        assert_eq!(paths.len(), 41, "seed and the 40 section fields: {paths:?}");
    }

    #[test]
    fn locate_finds_nested_fields() {
        let text =
            "name: a\n# c\ndata:\n  image_size: 3\nmodel:\n  latent_dim: 4\n  channels: [1]\n";
        assert_eq!(locate(text, "model.latent_dim"), Some(6));
        assert_eq!(locate(text, "data.image_size"), Some(4));
        assert_eq!(locate(text, "model.channels"), Some(7));
        assert_eq!(locate(text, "train.lr"), None);
    }
}
