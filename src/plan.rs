//! Resolution of a spec into fully specified, validated `RunConfig`s, with their labels.
use crate::config::{
    DataConfig, DataSource, EvalConfig, EvalSplit, ModelConfig, ResizeFilter, RunConfig, RunId,
    TrainConfig,
};
use serde_yaml::{Mapping, Value};

use crate::spec::{
    ExperimentSpec, LoadedSpec, OVERRIDABLE, SpecError, did_you_mean, locate_in_section, yaml_error,
};

pub const DEFAULT_CHANNELS: [usize; 5] = [32, 64, 128, 256, 512];

/// One run of an experiment: its resolved config, identity and human label.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    pub id: RunId,
    pub label: String,
    pub variant: Option<String>,
    /// The parameters that vary across the experiment: (field, value as written).
    pub coordinates: Vec<(String, String)>,
    pub config: RunConfig,
}

/// The expansion of a spec: its runs, and notes such as collapsed duplicates.
#[derive(Debug, Clone)]
pub struct Plan {
    pub experiment: String,
    pub runs: Vec<PlannedRun>,
    pub warnings: Vec<String>,
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
        root: spec.data.root.clone(),
        crop: match spec.data.crop {
            None => None,
            Some(v) => Some(positive(loaded, "data.crop", Some(v), 1)? as u32),
        },
        resize_filter: match spec.data.source.unwrap_or(DataSource::Synthetic) {
            DataSource::Synthetic => spec.data.resize_filter,
            _ => Some(spec.data.resize_filter.unwrap_or(ResizeFilter::Triangle)),
        },
        val_ratio: match (spec.data.source, spec.data.val_ratio) {
            (_, Some(r)) if !(r > 0.0 && r < 1.0) => {
                return Err(loaded.error(
                    "data.val_ratio",
                    format!("expected a number between 0 and 1, got {r}"),
                ));
            }
            (Some(DataSource::Folder), ratio) => Some(ratio.unwrap_or(0.1)),
            (_, ratio) => ratio,
        },
        split: match spec.data.split {
            Some(EvalSplit::Validation) | None => None,
            Some(EvalSplit::Test) => Some(EvalSplit::Test),
        },
        hflip: spec.data.hflip.unwrap_or(false),
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
        precision: t.precision.unwrap_or_default(),
    };
    let defaults = EvalConfig::default();
    let eval = EvalConfig {
        iwae_samples: positive(
            loaded,
            "eval.iwae_samples",
            spec.eval.iwae_samples,
            defaults.iwae_samples as i64,
        )?,
        iwae_images: positive(
            loaded,
            "eval.iwae_images",
            spec.eval.iwae_images,
            defaults.iwae_images as i64,
        )?,
        attribute: match &spec.eval.attribute {
            None => defaults.attribute,
            Some(name) if name.trim().is_empty() => {
                return Err(loaded.error("eval.attribute", "expected an attribute name, got \"\""));
            }
            Some(name) => {
                let known = crate::evaluation::attribute_names(data.source);
                if !known.is_empty() && !known.contains(&name.as_str()) {
                    return Err(loaded.error(
                        "eval.attribute",
                        format!(
                            "{name:?} is not an attribute of the {} dataset{}",
                            serde_yaml::to_string(&data.source)
                                .unwrap_or_default()
                                .trim(),
                            did_you_mean(name, known)
                        ),
                    ));
                }
                name.clone()
            }
        },
    };
    Ok(RunConfig {
        seed: spec.seed.unwrap_or(0),
        data,
        model,
        train,
        eval,
    })
}

fn render_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "null".into(),
        Value::Sequence(items) => items.iter().map(render_value).collect::<Vec<_>>().join(","),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn get_path<'v>(doc: &'v Value, dotted: &str) -> Option<&'v Value> {
    dotted.split('.').try_fold(doc, |v, part| v.get(part))
}

fn set_path(doc: &mut Value, dotted: &str, value: Value) {
    let mut node = doc;
    let parts: Vec<&str> = dotted.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        if !node.is_mapping() {
            *node = Value::Mapping(Mapping::new());
        }
        let map = node.as_mapping_mut().expect("just made a mapping");
        node = map
            .entry(Value::String((*part).to_string()))
            .or_insert(Value::Mapping(Mapping::new()));
        if node.is_null() {
            *node = Value::Mapping(Mapping::new());
        }
    }
    if !node.is_mapping() {
        *node = Value::Mapping(Mapping::new());
    }
    node.as_mapping_mut()
        .expect("just made a mapping")
        .insert(Value::String(parts[parts.len() - 1].to_string()), value);
}

fn key_str(loaded: &LoadedSpec, section: &str, key: &Value) -> Result<String, SpecError> {
    key.as_str().map(str::to_string).ok_or_else(|| {
        loaded.error(
            section,
            format!("expected field paths as keys, got {}", render_value(key)),
        )
    })
}

fn check_path(
    loaded: &LoadedSpec,
    section: &str,
    item: Option<usize>,
    path: &str,
) -> Result<(), SpecError> {
    if OVERRIDABLE.contains(&path) {
        return Ok(());
    }
    Err(SpecError {
        path: loaded.path.clone(),
        line: locate_in_section(&loaded.text, section, path, item),
        field: format!("{section}.{path}"),
        message: format!(
            "unknown field path{}; allowed: {}",
            did_you_mean(path, &OVERRIDABLE),
            OVERRIDABLE.join(", ")
        ),
    })
}

struct Variant {
    name: Option<String>,
    /// (field, value, the line that sets it).
    overrides: Vec<(String, Value, Option<usize>)>,
}

struct Axis {
    path: String,
    values: Vec<Value>,
    line: Option<usize>,
}

fn variants(loaded: &LoadedSpec) -> Result<Vec<Variant>, SpecError> {
    let Some(list) = &loaded.spec.variants else {
        return Ok(vec![Variant {
            name: None,
            overrides: Vec::new(),
        }]);
    };
    if list.is_empty() {
        return Err(loaded.error(
            "variants",
            "expected at least one variant, got an empty list",
        ));
    }
    let mut out: Vec<Variant> = Vec::new();
    for (index, entry) in list.iter().enumerate() {
        let at = |key: &str| locate_in_section(&loaded.text, "variants", key, Some(index));
        let name = match entry.get("name").and_then(Value::as_str) {
            Some(name) if !name.is_empty() && !name.contains('/') => name.to_string(),
            other => {
                return Err(SpecError {
                    path: loaded.path.clone(),
                    line: at("name"),
                    field: format!("variants[{index}].name"),
                    message: format!(
                        "expected a non-empty name without '/', got {}",
                        other.map_or("nothing".to_string(), |n| format!("{n:?}"))
                    ),
                });
            }
        };
        if out.iter().any(|v| v.name.as_deref() == Some(&name)) {
            return Err(SpecError {
                path: loaded.path.clone(),
                line: at("name"),
                field: format!("variants[{index}].name"),
                message: format!("expected unique variant names, got {name:?} twice"),
            });
        }
        let mut overrides = Vec::new();
        for (key, value) in entry {
            let key = key_str(loaded, "variants", key)?;
            if key == "name" {
                continue;
            }
            check_path(loaded, "variants", Some(index), &key)?;
            let line = at(&key);
            overrides.push((key, value.clone(), line));
        }
        out.push(Variant {
            name: Some(name),
            overrides,
        });
    }
    Ok(out)
}

fn axes(loaded: &LoadedSpec) -> Result<Vec<Axis>, SpecError> {
    let Some(grid) = &loaded.spec.grid else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (key, values) in grid {
        let path = key_str(loaded, "grid", key)?;
        check_path(loaded, "grid", None, &path)?;
        let values = match values {
            Value::Sequence(items) if !items.is_empty() => items.clone(),
            other => {
                return Err(SpecError {
                    path: loaded.path.clone(),
                    line: locate_in_section(&loaded.text, "grid", &path, None),
                    field: format!("grid.{path}"),
                    message: format!(
                        "expected a non-empty list of values, got {}",
                        render_value(other)
                    ),
                });
            }
        };
        let line = locate_in_section(&loaded.text, "grid", &path, None);
        out.push(Axis { path, values, line });
    }
    Ok(out)
}

fn seeds(loaded: &LoadedSpec) -> Result<Vec<u64>, SpecError> {
    match (&loaded.spec.seed, &loaded.spec.seeds) {
        (Some(_), Some(_)) => {
            Err(loaded.error("seeds", "expected either `seed` or `seeds`, got both"))
        }
        (_, Some(list)) if list.is_empty() => {
            Err(loaded.error("seeds", "expected at least one seed, got an empty list"))
        }
        (_, Some(list)) => Ok(list.clone()),
        (seed, None) => Ok(vec![seed.unwrap_or(0)]),
    }
}

/// Every run the spec describes: variants × grid × seeds, minus exclusions and duplicates.
pub fn plan(loaded: &LoadedSpec) -> Result<Plan, SpecError> {
    let variants = variants(loaded)?;
    let axes = axes(loaded)?;
    let seeds = seeds(loaded)?;
    let exclusions = loaded.spec.exclude.clone().unwrap_or_default();
    for (index, rule) in exclusions.iter().enumerate() {
        for key in rule.keys() {
            let key = key_str(loaded, "exclude", key)?;
            if key != "variant" {
                check_path(loaded, "exclude", Some(index), &key)?;
            }
        }
    }
    if let Some(baseline) = &loaded.spec.baseline
        && !variants.iter().any(|v| v.name.as_deref() == Some(baseline))
    {
        return Err(loaded.error(
            "baseline",
            format!("expected the name of a variant, got {baseline:?}"),
        ));
    }
    let mut base: Value =
        serde_yaml::from_str(&loaded.text).map_err(|e| yaml_error(&loaded.path, &e))?;
    if let Some(map) = base.as_mapping_mut() {
        for key in ["seeds", "grid", "variants", "exclude", "seed", "baseline"] {
            map.remove(key);
        }
    }

    let combos = axes.iter().fold(vec![Vec::<usize>::new()], |acc, axis| {
        acc.into_iter()
            .flat_map(|prefix| {
                (0..axis.values.len()).map(move |i| {
                    let mut next = prefix.clone();
                    next.push(i);
                    next
                })
            })
            .collect()
    });

    let mut runs: Vec<PlannedRun> = Vec::new();
    let mut seen: std::collections::HashMap<RunId, usize> = std::collections::HashMap::new();
    let mut warnings = Vec::new();
    for variant in &variants {
        for combo in &combos {
            for &seed in &seeds {
                let mut doc = base.clone();
                let mut origins = Vec::new();
                let mut coordinates = Vec::new();
                for (path, value, line) in &variant.overrides {
                    set_path(&mut doc, path, value.clone());
                    if let Some(line) = line {
                        origins.push((path.clone(), *line));
                    }
                }
                for (axis, &i) in axes.iter().zip(combo) {
                    set_path(&mut doc, &axis.path, axis.values[i].clone());
                    if let Some(line) = axis.line {
                        origins.push((axis.path.clone(), line));
                    }
                    let leaf = axis.path.rsplit('.').next().unwrap_or(&axis.path);
                    coordinates.push((leaf.to_string(), render_value(&axis.values[i])));
                }
                set_path(&mut doc, "seed", Value::Number(seed.into()));
                let excluded = exclusions.iter().any(|rule| {
                    rule.iter().all(|(key, want)| match key.as_str() {
                        Some("variant") => variant.name.as_deref() == want.as_str(),
                        Some(path) => {
                            get_path(&doc, path).is_some_and(|have| values_equal(have, want))
                        }
                        None => false,
                    })
                });
                if excluded {
                    continue;
                }
                let spec: ExperimentSpec = serde_yaml::from_value(doc).map_err(|e| {
                    // from_value errors carry no field path: find the override that caused it.
                    let overrides = variant
                        .overrides
                        .iter()
                        .map(|(p, v, _)| (p.clone(), v.clone()))
                        .chain(
                            axes.iter()
                                .zip(combo)
                                .map(|(axis, &i)| (axis.path.clone(), axis.values[i].clone())),
                        );
                    for (path, value) in overrides {
                        let mut alone = Value::Mapping(Mapping::new());
                        set_path(&mut alone, "name", Value::String("x".into()));
                        set_path(&mut alone, &path, value);
                        if let Err(single) = serde_yaml::from_value::<ExperimentSpec>(alone) {
                            let line = origins.iter().find(|(f, _)| *f == path).map(|(_, l)| *l);
                            return SpecError {
                                path: loaded.path.clone(),
                                line,
                                field: path,
                                message: single.to_string(),
                            };
                        }
                    }
                    yaml_error(&loaded.path, &e)
                })?;
                let expanded = LoadedSpec {
                    path: loaded.path.clone(),
                    text: loaded.text.clone(),
                    spec,
                    origins,
                };
                let config = resolve(&expanded)?;
                let mut label_parts: Vec<String> = variant.name.iter().cloned().collect();
                label_parts.extend(coordinates.iter().map(|(k, v)| format!("{k}={v}")));
                label_parts.push(format!("seed={seed}"));
                let label = label_parts.join("/");
                let id = config.id();
                if let Some(&first) = seen.get(&id) {
                    let first = &runs[first];
                    warnings.push(format!(
                        "{}: runs {label} and {} have the same resolved config; training it once",
                        loaded.path.display(),
                        first.label
                    ));
                    continue;
                }
                coordinates.push(("seed".into(), seed.to_string()));
                seen.insert(id.clone(), runs.len());
                runs.push(PlannedRun {
                    id,
                    label,
                    variant: variant.name.clone(),
                    coordinates,
                    config,
                });
            }
        }
    }
    if runs.is_empty() {
        return Err(loaded.error(
            "exclude",
            "every combination is excluded: the spec describes no run",
        ));
    }
    Ok(Plan {
        experiment: loaded.spec.name.clone(),
        runs,
        warnings,
    })
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

    fn plan_text(text: &str) -> Result<Plan, String> {
        let loaded = parse(Path::new("e.yaml"), text).map_err(|e| e.to_string())?;
        plan(&loaded).map_err(|e| e.to_string())
    }

    const ABLATION: &str = "name: ab\nseeds: [0, 1]\nmodel:\n  latent_dim: 16\ngrid:\n  model.latent_dim: [8, 16]\n  train.beta: [1, 4]\nvariants:\n  - name: residual\n    model.residual: true\n  - name: plain\n    model.residual: false\n";

    #[test]
    fn expansion_is_variants_times_grid_times_seeds_in_order() {
        let plan = plan_text(ABLATION).unwrap();
        assert_eq!(plan.runs.len(), 2 * 2 * 2 * 2);
        let labels: Vec<&str> = plan.runs.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels[0], "residual/latent_dim=8/beta=1/seed=0");
        assert_eq!(labels[1], "residual/latent_dim=8/beta=1/seed=1");
        assert_eq!(labels[2], "residual/latent_dim=8/beta=4/seed=0");
        assert_eq!(labels[15], "plain/latent_dim=16/beta=4/seed=1");
        let last = &plan.runs[15].config;
        assert!(!last.model.residual);
        assert_eq!(
            (last.model.latent_dim, last.train.beta, last.seed),
            (16, 4.0, 1)
        );
        let ids: std::collections::BTreeSet<_> = plan.runs.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids.len(), 16);
    }

    #[test]
    fn exclusions_drop_matching_runs() {
        let text = format!("{ABLATION}exclude:\n  - variant: plain\n    train.beta: 4\n");
        let plan = plan_text(&text).unwrap();
        assert_eq!(plan.runs.len(), 12);
        assert!(
            !plan
                .runs
                .iter()
                .any(|r| r.label.starts_with("plain/") && r.label.contains("beta=4"))
        );
    }

    #[test]
    fn duplicates_collapse_with_a_warning() {
        let plan = plan_text("name: d\ngrid:\n  train.beta: [1, 1.0]\n").unwrap();
        assert_eq!(plan.runs.len(), 1);
        assert_eq!(plan.warnings.len(), 1);
        assert!(
            plan.warnings[0].contains("beta=1.0/seed=0 and beta=1/seed=0"),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn spec_errors_in_sweeps_point_at_the_offending_line() {
        let cases = [
            (
                "name: a\ngrid:\n  model.latent_dims: [1]\n",
                "e.yaml:3: grid.model.latent_dims: unknown field path (did you mean `model.latent_dim`?); allowed:",
            ),
            (
                "name: a\ngrid:\n  model.latent_dim: [8, -3]\n",
                "e.yaml:3: model.latent_dim: expected a positive integer, got -3",
            ),
            (
                "name: a\nvariants:\n  - name: x\n    model.residual: true\n  - name: y\n    model.resid: false\n",
                "e.yaml:6: variants.model.resid: unknown field path (did you mean `model.residual`?)",
            ),
            (
                "name: a\nvariants:\n  - name: x\n  - name: x\n",
                "e.yaml:4: variants[1].name: expected unique variant names, got \"x\" twice",
            ),
            (
                "name: a\ngrid:\n  train.beta: []\n",
                "e.yaml:3: grid.train.beta: expected a non-empty list of values, got ",
            ),
            (
                "name: a\nseed: 1\nseeds: [1, 2]\n",
                "e.yaml:3: seeds: expected either `seed` or `seeds`, got both",
            ),
            (
                "name: a\ngrid:\n  train.lr: [fast]\n",
                "e.yaml:3: train.lr: invalid type: string \"fast\", expected f64",
            ),
            (
                "name: a\nbaseline: nope\n",
                "e.yaml:2: baseline: expected the name of a variant, got \"nope\"",
            ),
            (
                "name: a\neval:\n  attribute: Smilling\n",
                "e.yaml:3: eval.attribute: \"Smilling\" is not an attribute of the synthetic dataset (did you mean `Smiling`?)",
            ),
            (
                "name: a\neval:\n  iwae_samples: 0\n",
                "e.yaml:3: eval.iwae_samples: expected a positive integer, got 0",
            ),
        ];
        for (text, expected) in cases {
            let err = plan_text(text).unwrap_err();
            assert!(err.starts_with(expected), "\n got: {err}\nwant: {expected}");
        }
    }

    #[test]
    fn small_channel_lists_allow_small_images() {
        let config =
            resolve_text("name: a\ndata:\n  image_size: 8\nmodel:\n  channels: [4, 8]\n").unwrap();
        assert_eq!(config.data.image_size, 8);
    }
}
