//! Expansion of a spec into its runs: variants × grid × seeds, exclusions, labels, and
//! duplicates collapsed, each point resolved by `resolve` into a `RunConfig`.
//!
//! Over 500 lines only because its unit tests (the expansion and error-location table)
//! sit beside the code; the code itself is about 600.
use super::resolve::resolve;
use crate::experiment::capacity::{capacity, widths_matching};
use crate::experiment::config::{DataConfig, DataSource, ModelKind, RunConfig, RunId};
use crate::experiment::question::{self, Question};
use serde_yaml::{Mapping, Value};

use crate::experiment::spec::{
    ExperimentSpec, LoadedSpec, SpecError, did_you_mean, locate_in_section, overridable, yaml_error,
};

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
    /// The spec's `description:` and `baseline:` variant, for its report.
    pub description: Option<String>,
    pub baseline: Option<String>,
    /// The declared question, whose seeds are added round by round (`report::study`);
    /// `runs` then holds every run up to its maximum seeds.
    pub question: Option<Question>,
    pub runs: Vec<PlannedRun>,
    pub warnings: Vec<String>,
}

/// The runs of a plan that a command works on (`--only` applied), with the plan they
/// belong to.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'a> {
    pub plan: &'a Plan,
    pub runs: &'a [&'a PlannedRun],
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
    if overridable().contains(&path) {
        return Ok(());
    }
    Err(SpecError {
        path: loaded.path.clone(),
        line: locate_in_section(&loaded.text, section, path, item),
        field: format!("{section}.{path}"),
        message: format!(
            "unknown field path{}; allowed: {}",
            did_you_mean(path, overridable()),
            overridable().join(", ")
        ),
    })
}

struct Variant {
    name: Option<String>,
    /// (field, value, the line that sets it).
    overrides: Vec<(String, Value, Option<usize>)>,
    /// `match_parameters: OTHER`: this variant's widths scale to OTHER's parameter count.
    match_parameters: Option<String>,
}

/// The variant key that scales a variant's widths to another variant's parameter count.
const MATCH_PARAMETERS: &str = "match_parameters";

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
            match_parameters: None,
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
        let mut match_parameters = None;
        for (key, value) in entry {
            let key = key_str(loaded, "variants", key)?;
            if key == "name" {
                continue;
            }
            if key == MATCH_PARAMETERS {
                match_parameters =
                    Some(
                        value
                            .as_str()
                            .map(str::to_string)
                            .ok_or_else(|| SpecError {
                                path: loaded.path.clone(),
                                line: at(&key),
                                field: format!("variants[{index}].{MATCH_PARAMETERS}"),
                                message: format!(
                                    "expected the name of another variant, got {value:?}"
                                ),
                            })?,
                    );
                continue;
            }
            check_path(loaded, "variants", Some(index), &key)?;
            let line = at(&key);
            overrides.push((key, value.clone(), line));
        }
        out.push(Variant {
            name: Some(name),
            overrides,
            match_parameters,
        });
    }
    check_matches(loaded, &out)?;
    Ok(out)
}

/// Every `match_parameters` names another variant, which matches none itself.
fn check_matches(loaded: &LoadedSpec, variants: &[Variant]) -> Result<(), SpecError> {
    for (index, variant) in variants.iter().enumerate() {
        let Some(target) = &variant.match_parameters else {
            continue;
        };
        let named = variants.iter().find(|v| v.name.as_ref() == Some(target));
        let problem = match named {
            None => Some(format!(
                "expected the name of another variant, got {target:?}"
            )),
            Some(v) if std::ptr::eq(v, variant) => {
                Some("a variant cannot match its own parameter count".to_string())
            }
            Some(v) if v.match_parameters.is_some() => Some(format!(
                "{target:?} matches another variant's count itself; name the variant it matches"
            )),
            Some(_) => None,
        };
        if let Some(message) = problem {
            return Err(SpecError {
                path: loaded.path.clone(),
                line: locate_in_section(&loaded.text, "variants", MATCH_PARAMETERS, Some(index)),
                field: format!("variants[{index}].{MATCH_PARAMETERS}"),
                message,
            });
        }
    }
    Ok(())
}

/// `config`'s widths scaled to the parameter count of the same point under `target`.
fn match_parameters(
    loaded: &LoadedSpec,
    point: &Point,
    target: &Variant,
    base: &Value,
    config: &mut RunConfig,
) -> Result<(), SpecError> {
    let twin = Point {
        variant: target,
        ..*point
    };
    let expanded = twin.document(base);
    let matched = resolve(&twin.parse(loaded, expanded.doc, expanded.origins)?)?;
    let image_size = config.data.image_size as usize;
    let wanted = capacity(&matched.model, image_size).parameters;
    let field = format!(
        "{MATCH_PARAMETERS} of {}",
        point.variant.name.as_deref().unwrap_or("")
    );
    if config.model.kind == ModelKind::Mlp {
        return Err(loaded.error(
            &field,
            "scales convolutional widths; an mlp's size is its `model.hidden`",
        ));
    }
    config.model.channels =
        widths_matching(&config.model, image_size, wanted).ok_or_else(|| {
            loaded.error(
                &field,
                format!("no width multiplier up to 16 reaches {wanted} parameters"),
            )
        })?;
    Ok(())
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

/// What identity needs from the data layer: the content fingerprint of the dataset a data
/// config reads (`None` for synthetic data), or why it cannot be taken.
pub type Fingerprints<'a> = &'a dyn Fn(&DataConfig) -> Result<Option<String>, String>;

/// For callers without datasets on disk (tests, benchmarks): synthetic data has no
/// fingerprint, and a dataset on disk is refused rather than given an id without one.
pub fn synthetic_only(data: &DataConfig) -> Result<Option<String>, String> {
    match data.source {
        DataSource::Synthetic => Ok(None),
        _ => Err("a dataset on disk needs its fingerprint (data::fingerprint::plan)".into()),
    }
}

/// Every run the spec describes: variants × grid × seeds, minus exclusions and duplicates.
/// Each distinct data config is fingerprinted once.
pub fn plan(loaded: &LoadedSpec, fingerprints: Fingerprints) -> Result<Plan, SpecError> {
    let variants = variants(loaded)?;
    let axes = axes(loaded)?;
    let exclusions = loaded.spec.exclude.clone().unwrap_or_default();
    check_exclusions_and_baseline(loaded, &variants, &exclusions)?;
    let names: Vec<&str> = variants.iter().filter_map(|v| v.name.as_deref()).collect();
    let question = question::resolve(loaded, &names)?;
    let seeds = match &question {
        Some(q) => q.seeds(q.seeds.max),
        None => seeds(loaded)?,
    };
    let base = base_document(loaded)?;
    let combos = combinations(&axes);
    let mut runs: Vec<PlannedRun> = Vec::new();
    let mut seen: std::collections::HashMap<RunId, usize> = std::collections::HashMap::new();
    let mut warnings = Vec::new();
    let mut fingerprinted: Vec<(DataConfig, Option<String>)> = Vec::new();
    for variant in &variants {
        for combo in &combos {
            for &seed in &seeds {
                let point = Point {
                    variant,
                    axes: &axes,
                    combo,
                    seed,
                };
                let expanded = point.document(&base);
                if is_excluded(&exclusions, variant, &expanded.doc) {
                    continue;
                }
                let mut config = resolve(&point.parse(loaded, expanded.doc, expanded.origins)?)?;
                if let Some(target) = &variant.match_parameters {
                    let target = variants
                        .iter()
                        .find(|v| v.name.as_ref() == Some(target))
                        .expect("checked by check_matches");
                    match_parameters(loaded, &point, target, &base, &mut config)?;
                }
                config.data.fingerprint =
                    match fingerprinted.iter().find(|(d, _)| *d == config.data) {
                        Some((_, known)) => known.clone(),
                        None => {
                            let found = fingerprints(&config.data)
                                .map_err(|message| loaded.error("data.root", message))?;
                            fingerprinted.push((config.data.clone(), found.clone()));
                            found
                        }
                    };
                let label = point.label(&expanded.coordinates);
                let id = config.id();
                if let Some(&first) = seen.get(&id) {
                    warnings.push(format!(
                        "{}: runs {label} and {} have the same resolved config; training it once",
                        loaded.path.display(),
                        runs[first].label
                    ));
                    continue;
                }
                let mut coordinates = expanded.coordinates;
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
    if let Some(question) = &question {
        let arms = question.compare.iter().chain([&question.baseline]);
        for arm in arms {
            if !runs.iter().any(|r| r.variant.as_ref() == Some(arm)) {
                return Err(loaded.error(
                    "question.compare",
                    format!(
                        "variant {arm:?} has no runs of its own (excluded, or the same resolved config as another variant): it cannot be compared"
                    ),
                ));
            }
        }
    }
    Ok(Plan {
        experiment: loaded.spec.name.clone(),
        description: loaded.spec.description.clone(),
        baseline: question
            .as_ref()
            .map(|q| q.baseline.clone())
            .or_else(|| loaded.spec.baseline.clone()),
        question,
        runs,
        warnings,
    })
}

/// Exclusion rules may name only `variant` and overridable fields; `baseline` must name
/// a variant.
fn check_exclusions_and_baseline(
    loaded: &LoadedSpec,
    variants: &[Variant],
    exclusions: &[Mapping],
) -> Result<(), SpecError> {
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
    Ok(())
}

/// The spec document without the sweep's own keys: what every run starts from.
fn base_document(loaded: &LoadedSpec) -> Result<Value, SpecError> {
    let mut base: Value =
        serde_yaml::from_str(&loaded.text).map_err(|e| yaml_error(&loaded.path, &e))?;
    if let Some(map) = base.as_mapping_mut() {
        for key in [
            "seeds", "grid", "variants", "exclude", "seed", "baseline", "question",
        ] {
            map.remove(key);
        }
    }
    Ok(base)
}

/// Every combination of one value index per axis, the last axis varying fastest.
fn combinations(axes: &[Axis]) -> Vec<Vec<usize>> {
    axes.iter().fold(vec![Vec::<usize>::new()], |acc, axis| {
        acc.into_iter()
            .flat_map(|prefix| {
                (0..axis.values.len()).map(move |i| {
                    let mut next = prefix.clone();
                    next.push(i);
                    next
                })
            })
            .collect()
    })
}

fn is_excluded(exclusions: &[Mapping], variant: &Variant, doc: &Value) -> bool {
    exclusions.iter().any(|rule| {
        rule.iter().all(|(key, want)| match key.as_str() {
            Some("variant") => variant.name.as_deref() == want.as_str(),
            Some(path) => get_path(doc, path).is_some_and(|have| values_equal(have, want)),
            None => false,
        })
    })
}

/// One point of the sweep: a variant, one value per grid axis, a seed.
#[derive(Clone, Copy)]
struct Point<'a> {
    variant: &'a Variant,
    axes: &'a [Axis],
    combo: &'a [usize],
    seed: u64,
}

/// A point's spec document, where each overridden field was written, and the grid
/// coordinates (leaf name, value as written) that label it.
struct Expanded {
    doc: Value,
    origins: Vec<(String, usize)>,
    coordinates: Vec<(String, String)>,
}

impl Point<'_> {
    /// The overrides of this point, variant first, in the order they apply.
    fn overrides(&self) -> impl Iterator<Item = (&String, &Value, Option<usize>)> {
        let from_variant = self.variant.overrides.iter().map(|(p, v, l)| (p, v, *l));
        let from_grid = self
            .axes
            .iter()
            .zip(self.combo)
            .map(|(axis, &i)| (&axis.path, &axis.values[i], axis.line));
        from_variant.chain(from_grid)
    }

    fn document(&self, base: &Value) -> Expanded {
        let mut doc = base.clone();
        let mut origins = Vec::new();
        for (path, value, line) in self.overrides() {
            set_path(&mut doc, path, value.clone());
            if let Some(line) = line {
                origins.push((path.clone(), line));
            }
        }
        let coordinates = self
            .axes
            .iter()
            .zip(self.combo)
            .map(|(axis, &i)| {
                let leaf = axis.path.rsplit('.').next().unwrap_or(&axis.path);
                (leaf.to_string(), render_value(&axis.values[i]))
            })
            .collect();
        set_path(&mut doc, "seed", Value::Number(self.seed.into()));
        Expanded {
            doc,
            origins,
            coordinates,
        }
    }

    /// Parses the point's document; a type error is traced to the override that caused
    /// it, since `from_value` errors carry no field path.
    fn parse(
        &self,
        loaded: &LoadedSpec,
        doc: Value,
        origins: Vec<(String, usize)>,
    ) -> Result<LoadedSpec, SpecError> {
        let spec: ExperimentSpec = match serde_yaml::from_value(doc) {
            Ok(spec) => spec,
            Err(e) => return Err(self.locate_error(loaded, &origins, &e)),
        };
        Ok(LoadedSpec {
            path: loaded.path.clone(),
            text: loaded.text.clone(),
            spec,
            origins,
        })
    }

    fn locate_error(
        &self,
        loaded: &LoadedSpec,
        origins: &[(String, usize)],
        error: &serde_yaml::Error,
    ) -> SpecError {
        for (path, value, _) in self.overrides() {
            let mut alone = Value::Mapping(Mapping::new());
            set_path(&mut alone, "name", Value::String("x".into()));
            set_path(&mut alone, path, value.clone());
            if let Err(single) = serde_yaml::from_value::<ExperimentSpec>(alone) {
                let line = origins.iter().find(|(f, _)| f == path).map(|(_, l)| *l);
                return SpecError {
                    path: loaded.path.clone(),
                    line,
                    field: path.clone(),
                    message: single.to_string(),
                };
            }
        }
        yaml_error(&loaded.path, error)
    }

    /// `variant/leaf=value/.../seed=N`.
    fn label(&self, coordinates: &[(String, String)]) -> String {
        let mut parts: Vec<String> = self.variant.name.iter().cloned().collect();
        parts.extend(coordinates.iter().map(|(k, v)| format!("{k}={v}")));
        parts.push(format!("seed={}", self.seed));
        parts.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::spec::parse;
    use std::path::Path;

    fn plan_text(text: &str) -> Result<Plan, String> {
        let loaded = parse(Path::new("e.yaml"), text).map_err(|e| e.to_string())?;
        plan(&loaded, &synthetic_only).map_err(|e| e.to_string())
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
                "name: a\ndata:\n  source: folder\n  split: test\n",
                "e.yaml:4: data.split: an image folder has no test partition",
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
    fn a_matched_variant_scales_its_widths_to_the_named_variant_s_count() {
        let plan = plan_text(
            "name: m\ndata:\n  image_size: 32\nmodel:\n  channels: [16, 32, 64]\n  latent_dim: 16\n\
             grid:\n  model.latent_dim: [8, 32]\nvariants:\n  - name: residual\n    model.residual: true\n\
             \x20 - name: plain\n    model.residual: false\n  - name: matched\n    model.residual: false\n    match_parameters: residual\n",
        )
        .unwrap();
        let find = |label: &str| plan.runs.iter().find(|r| r.label == label).unwrap();
        for latent in [8, 32] {
            let residual = &find(&format!("residual/latent_dim={latent}/seed=0")).config;
            let matched = &find(&format!("matched/latent_dim={latent}/seed=0")).config;
            let plain = &find(&format!("plain/latent_dim={latent}/seed=0")).config;
            let count = |c: &RunConfig| capacity(&c.model, 32).parameters;
            assert!(count(matched) >= count(residual));
            assert!((count(matched) as f64) < 1.05 * count(residual) as f64);
            assert!(count(plain) < count(residual));
            assert!(matched.model.channels.iter().all(|w| w % 8 == 0));
            assert_ne!(matched.model.channels, plain.model.channels);
            assert_ne!(matched.id(), plain.id(), "the resolved widths are identity");
        }
    }

    #[test]
    fn match_parameters_must_name_another_variant() {
        let spec = |target: &str| {
            format!(
                "name: m\nvariants:\n  - name: a\n    model.residual: true\n  - name: b\n    model.residual: false\n    match_parameters: {target}\n"
            )
        };
        let err = plan_text(&spec("c")).unwrap_err();
        assert!(
            err.starts_with("e.yaml:7: variants[1].match_parameters: expected the name of another variant, got \"c\""),
            "{err}"
        );
        let err = plan_text(&spec("b")).unwrap_err();
        assert!(err.contains("cannot match its own"), "{err}");
    }
}
