//! The layered layout holds: a module imports only from its own layer or the layers below
//! it, and the submodules of one layer import each other without a cycle.
//!
//! The layer order is declared here once, in the order data flows (see ARCHITECTURE.md):
//! `vaelab-core`'s layers (`crates/vaelab-core/src/`, which cannot reach the crate above
//! it at all), then the `vaelab` crate's own (`src/`), which re-exports the core layers
//! and so sees them as `crate::store` and the like, below its own. The binary's files
//! (`main.rs`, `cli.rs`, `commands/`) sit above every layer and reach the library only
//! through `vaelab::`.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `vaelab-core`'s layers, lowest first: each a folder (or file) directly under its `src/`.
const CORE_LAYERS: [&str; 7] = [
    "progress",
    "experiment",
    "store",
    "data",
    "report",
    "serve",
    "cluster",
];

/// The `vaelab` crate's own layers, lowest first, all above the core's.
const TORCH_LAYERS: [&str; 8] = [
    "rng", "runtime", "data", "model", "optim", "evaluate", "train", "bench",
];

/// How a `crate::` path of the `vaelab` crate is ranked: the core layers it re-exports
/// (its `data` is its own, which re-exports the core's), then its own layers.
fn torch_order() -> Vec<&'static str> {
    CORE_LAYERS
        .iter()
        .copied()
        .filter(|l| !TORCH_LAYERS.contains(l))
        .chain(TORCH_LAYERS)
        .collect()
}

fn core_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/vaelab-core/src")
}

fn torch_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Files of the binaries (`vaelab`, and `vaelab-torch` under `bin/`), where `crate::`
/// means the binary, not the library.
const BINARY: [&str; 4] = ["main.rs", "cli.rs", "commands", "bin"];

/// One `crate::...` (or `super::...`) path found in a source file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Import {
    line: usize,
    /// Path segments after `crate`, e.g. `["store", "metrics", "EpochMetrics"]`.
    segments: Vec<String>,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("src/ entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/`: `store/metrics.rs` → `["store", "metrics"]`,
/// `store/mod.rs` → `["store"]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut segments: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if segments.last().is_some_and(|s| s == "mod") {
        segments.pop();
    }
    segments
}

/// Every `crate::a::b` path in `source` outside line comments, with `use` groups expanded
/// to each of their paths (`crate::{a, b::{c, d}}`, across lines too), and `super::`
/// resolved against `module`.
fn imports(source: &str, module: &[String]) -> Vec<Import> {
    // Comments go, lines stay: each line's start offset maps a match back to its line.
    let cleaned: Vec<&str> = source
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect();
    let text = cleaned.join("\n");
    let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
    let mut found = Vec::new();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent(module))] {
        let mut from = 0;
        while let Some(at) = text[from..].find(prefix).map(|i| i + from) {
            from = at + prefix.len();
            let before = text[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let (paths, _) = use_tree(&text[from..]);
            for path in paths {
                let mut segments = base.clone();
                for segment in path {
                    match segment.as_str() {
                        "super" => {
                            segments.pop();
                        }
                        "self" => {}
                        _ => segments.push(segment),
                    }
                }
                if !segments.is_empty() {
                    found.push(Import {
                        line: line_of(at),
                        segments,
                    });
                }
            }
        }
    }
    found.sort();
    found
}

/// The module `super` names from `module` (`a/b.rs` and `a/b/mod.rs` are both `a::b`,
/// whose `super` is `a`).
fn parent(module: &[String]) -> Vec<String> {
    module[..module.len().saturating_sub(1)].to_vec()
}

/// The paths of a `use` tree at the start of `text` (`store::metrics::{A, B}` →
/// `store::metrics::A`, `store::metrics::B`; `{store, data}` → both), and the bytes it took.
fn use_tree(text: &str) -> (Vec<Vec<String>>, usize) {
    let skip_space = |at: usize| at + text[at..].len() - text[at..].trim_start().len();
    let mut at = skip_space(0);
    if text[at..].starts_with('{') {
        at += 1;
        let mut paths = Vec::new();
        loop {
            at = skip_space(at);
            match text[at..].chars().next() {
                None => return (paths, at),
                Some('}') => return (paths, at + 1),
                Some(',') => at += 1,
                Some(_) => {
                    let (inner, used) = use_tree(&text[at..]);
                    if used == 0 {
                        return (paths, at);
                    }
                    paths.extend(inner);
                    at += used;
                }
            }
        }
    }
    let end = text[at..]
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(text.len(), |e| e + at);
    if end == at {
        return (Vec::new(), 0);
    }
    let ident = text[at..end].to_string();
    match text[end..].strip_prefix("::") {
        Some(_) => {
            let (inner, used) = use_tree(&text[end + 2..]);
            let paths = if inner.is_empty() {
                vec![vec![ident]]
            } else {
                inner
                    .into_iter()
                    .map(|p| std::iter::once(ident.clone()).chain(p).collect())
                    .collect()
            };
            (paths, end + 2 + used)
        }
        None => (vec![vec![ident]], end),
    }
}

fn layer_of(segments: &[String], layers: &[&str]) -> Option<usize> {
    layers
        .iter()
        .position(|l| segments.first().is_some_and(|s| s == l))
}

/// Upward imports among `layers` (lowest first), as `file:line: layer imports
/// higher-layer path` messages.
fn upward_imports(
    files: &BTreeMap<PathBuf, (Vec<String>, Vec<Import>)>,
    layers: &[&str],
) -> Vec<String> {
    let mut problems = Vec::new();
    for (file, (module, found)) in files {
        let Some(own) = layer_of(module, layers) else {
            continue;
        };
        for import in found {
            if let Some(theirs) = layer_of(&import.segments, layers)
                && theirs > own
            {
                problems.push(format!(
                    "{}:{}: `{}` (layer {}) imports `crate::{}` from the higher layer `{}`",
                    file.display(),
                    import.line,
                    module.join("::"),
                    layers[own],
                    import.segments.join("::"),
                    layers[theirs]
                ));
            }
        }
    }
    problems
}

/// Cycles among the direct submodules of each layer, and of the binary's `commands/`
/// (e.g. `report::render` ↔ `report::aggregate`), as the modules on each cycle.
fn cycles_within_layers(
    files: &BTreeMap<PathBuf, (Vec<String>, Vec<Import>)>,
    layers: &[&str],
) -> Vec<String> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, found) in files.values() {
        if module.len() < 2 || (layer_of(module, layers).is_none() && module[0] != "commands") {
            continue;
        }
        let from = format!("{}::{}", module[0], module[1]);
        for import in found {
            if import.segments.len() >= 2 && import.segments[0] == module[0] {
                let to = format!("{}::{}", import.segments[0], import.segments[1]);
                if to != from
                    && files
                        .values()
                        .any(|(m, _)| m.len() >= 2 && m[..2] == import.segments[..2])
                {
                    edges.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    let mut problems = Vec::new();
    for start in edges.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((node, path)) = stack.pop() {
            for next in edges.get(&node).into_iter().flatten() {
                if next == start {
                    let mut cycle = path.clone();
                    cycle.push(start.clone());
                    problems.push(cycle.join(" → "));
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    problems
}

/// Every file of `src/` but `lib.rs`, the binary's (`main.rs`, `cli.rs`, `commands/`)
/// included, with its module path and imports.
fn source_files(src: &Path) -> BTreeMap<PathBuf, (Vec<String>, Vec<Import>)> {
    let mut paths = Vec::new();
    rust_files(src, &mut paths);
    let mut files = BTreeMap::new();
    for path in paths {
        let relative = path.strip_prefix(src).expect("under src/").to_path_buf();
        if relative == Path::new("lib.rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("source is readable");
        // `bin/vaelab-torch/commands/run/mod.rs` is that binary's `commands::run`.
        let in_binary = match relative.strip_prefix("bin") {
            Ok(rest) => rest.components().skip(1).collect(),
            Err(_) => relative.clone(),
        };
        let module = module_path(&in_binary);
        let found = imports(&source, &module);
        files.insert(relative, (module, found));
    }
    files
}

/// The library's files: [`source_files`] less the binary's.
fn library_files(src: &Path) -> BTreeMap<PathBuf, (Vec<String>, Vec<Import>)> {
    source_files(src)
        .into_iter()
        .filter(|(relative, _)| {
            let first = relative.components().next().expect("non-empty");
            !BINARY.iter().any(|b| first.as_os_str() == *b)
        })
        .collect()
}

/// Every file of `src` in a layer of `own`, none in no layer, and no upward import when
/// paths are ranked by `order`.
fn assert_layered(src: &Path, own: &[&str], order: &[&str]) {
    let files = library_files(src);
    for layer in own {
        assert!(
            files.values().any(|(m, _)| m[0] == *layer),
            "layer `{layer}` has no files under {}: update this test",
            src.display()
        );
    }
    let unknown: Vec<_> = files
        .iter()
        .filter(|(_, (m, _))| layer_of(m, own).is_none())
        .map(|(f, _)| f.display().to_string())
        .collect();
    assert!(
        unknown.is_empty(),
        "files in no declared layer: {unknown:?}"
    );
    let problems = upward_imports(&files, order);
    assert!(
        problems.is_empty(),
        "upward imports:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    assert_layered(&core_src(), &CORE_LAYERS, &CORE_LAYERS);
    assert_layered(&torch_src(), &TORCH_LAYERS, &torch_order());
}

#[test]
fn the_submodules_of_a_layer_import_each_other_without_a_cycle() {
    let mut problems = cycles_within_layers(&source_files(&core_src()), &CORE_LAYERS);
    problems.extend(cycles_within_layers(
        &source_files(&torch_src()),
        &torch_order(),
    ));
    assert!(
        problems.is_empty(),
        "import cycles:\n{}",
        problems.join("\n")
    );
}

/// The `pub mod` lines of a `lib.rs`, in order.
fn declared_modules(lib: &str) -> Vec<String> {
    lib.lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_string())
        .collect()
}

#[test]
fn the_libs_declare_the_layers_in_the_order_of_this_test() {
    let read = |src: PathBuf| std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    assert_eq!(declared_modules(&read(core_src())), CORE_LAYERS);
    let torch = read(torch_src());
    assert_eq!(declared_modules(&torch), TORCH_LAYERS);
    // Every core layer the vaelab crate does not extend is re-exported under its name.
    let reexported: BTreeSet<&str> = torch
        .split_once("pub use vaelab_core::{")
        .and_then(|(_, rest)| rest.split_once('}'))
        .expect("src/lib.rs re-exports the core layers")
        .0
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect();
    let expected: BTreeSet<&str> = torch_order()
        .into_iter()
        .filter(|l| !TORCH_LAYERS.contains(l))
        .collect();
    assert_eq!(reexported, expected);
}

/// The checker itself: an upward import, a `use crate::{...}` group, a `super::` path and a
/// cycle are each caught, and a downward import is not.
#[test]
fn the_checker_catches_upward_imports_and_cycles() {
    let file = |module: &[&str], source: &str| {
        let module: Vec<String> = module.iter().map(|s| s.to_string()).collect();
        let found = imports(source, &module);
        (module, found)
    };
    let mut files = BTreeMap::new();
    files.insert(
        PathBuf::from("store/a.rs"),
        file(
            &["store", "a"],
            "use crate::experiment::config::RunConfig;\nuse crate::report::render::slug;\n",
        ),
    );
    files.insert(
        PathBuf::from("data/b.rs"),
        file(
            &["data", "b"],
            "    let x = crate::{train, model}::f(); // crate::bench in a comment\n",
        ),
    );
    files.insert(
        PathBuf::from("report/c.rs"),
        file(&["report", "c"], "use super::d::X;\n"),
    );
    files.insert(
        PathBuf::from("report/d.rs"),
        file(&["report", "d"], "use crate::report::c::Y;\n"),
    );
    // The binary's commands: a group over several lines, whose second path closes a circle.
    files.insert(
        PathBuf::from("commands/run.rs"),
        file(
            &["commands", "run"],
            "use super::{\n    select,\n    workers::{self, execute},\n};\n",
        ),
    );
    files.insert(
        PathBuf::from("commands/workers.rs"),
        file(
            &["commands", "workers"],
            "use super::run::EXIT_INTERRUPTED;\n",
        ),
    );
    let order = [
        "experiment",
        "store",
        "data",
        "model",
        "train",
        "report",
        "bench",
    ];
    let upward = upward_imports(&files, &order);
    assert_eq!(upward.len(), 3, "{upward:#?}");
    assert!(upward[0].starts_with("data/b.rs:1:") && upward[0].contains("`model`"));
    assert!(upward[1].starts_with("data/b.rs:1:") && upward[1].contains("`train`"));
    assert!(
        upward[2].starts_with("store/a.rs:2:") && upward[2].contains("crate::report::render::slug")
    );
    let cycles = cycles_within_layers(&files, &order);
    assert!(
        cycles.contains(&"report::c → report::d → report::c".to_string()),
        "{cycles:?}"
    );
    assert!(
        cycles.contains(&"commands::run → commands::workers → commands::run".to_string()),
        "{cycles:?}"
    );
    let (_, grouped) = &files[Path::new("commands/run.rs")];
    let paths: Vec<String> = grouped.iter().map(|i| i.segments.join("::")).collect();
    assert_eq!(
        paths,
        [
            "commands::select",
            "commands::workers",
            "commands::workers::execute"
        ]
    );
}

/// ARCHITECTURE.md's layer table and the tree stay in step: every layer folder of both
/// crates has its row, and every module file of a layer is named in its row (as `name`,
/// or `folder/name` for a module in a sub-folder).
#[test]
fn architecture_md_names_every_layer_and_module() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let row = |layer: &str, core: bool| -> Option<&str> {
        let head = format!("| `{layer}/` {}|", if core { "(core) " } else { "" });
        text.lines().find(|l| l.starts_with(&head)).or_else(|| {
            let any = format!("| `{layer}/` |");
            text.lines().find(|l| l.starts_with(&any))
        })
    };
    fn modules(dir: &std::path::Path, prefix: &str, into: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                modules(&path, &format!("{prefix}{name}/"), into);
            } else if path.extension().is_some_and(|e| e == "rs") && name != "mod" {
                into.push(format!("{prefix}{name}"));
            }
        }
    }
    let mut missing = Vec::new();
    for (crate_src, core) in [
        (root.join("crates/vaelab-core/src"), true),
        (root.join("src"), false),
    ] {
        for entry in std::fs::read_dir(&crate_src).unwrap() {
            let path = entry.unwrap().path();
            let layer = path.file_name().unwrap().to_string_lossy().into_owned();
            if !path.is_dir() || layer == "commands" || layer == "bin" {
                continue;
            }
            let Some(line) = row(&layer, core) else {
                missing.push(format!("no row for {layer}/"));
                continue;
            };
            let mut found = Vec::new();
            modules(&path, "", &mut found);
            for module in found {
                let leaf = module.rsplit('/').next().unwrap();
                if !line.contains(&format!("`{module}`")) && !line.contains(&format!("`{leaf}`")) {
                    missing.push(format!("{layer}/{module}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not in ARCHITECTURE.md's layer table: {missing:?}"
    );
}
