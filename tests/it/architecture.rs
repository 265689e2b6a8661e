//! The layered layout holds: a module of `src/` imports only from its own layer or the
//! layers below it, and the submodules of one layer import each other without a cycle.
//!
//! The layer order is declared here once, in the order data flows (see ARCHITECTURE.md).
//! The binary's files (`main.rs`, `cli.rs`, `commands/`) sit above every layer and reach
//! the library only through `vaelab::`.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first. A layer is a folder (or file) directly under `src/`.
const LAYERS: [&str; 12] = [
    "progress",
    "rng",
    "experiment",
    "store",
    "data",
    "model",
    "evaluate",
    "train",
    "report",
    "serve",
    "cluster",
    "bench",
];

/// Files of the binary crate, where `crate::` means the binary, not the library.
const BINARY: [&str; 3] = ["main.rs", "cli.rs", "commands"];

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

/// Every `crate::a::b` path in `source` outside line comments, with `use crate::{a, b}`
/// groups expanded to their first segment, and `super::` resolved against `module`.
fn imports(source: &str, module: &[String]) -> Vec<Import> {
    let mut found = Vec::new();
    for (index, raw) in source.lines().enumerate() {
        let line = raw.split("//").next().unwrap_or("");
        for (prefix, base) in [("crate::", Vec::new()), ("super::", parent(module))] {
            let mut rest = line;
            while let Some(at) = rest.find(prefix) {
                let before = rest[..at].chars().last();
                rest = &rest[at + prefix.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let mut segments = base.clone();
                segments.extend(path_segments(rest));
                if segments.is_empty() {
                    continue;
                }
                found.push(Import {
                    line: index + 1,
                    segments,
                });
            }
        }
    }
    found
}

/// The module `super` names from `module` (`a/b.rs` and `a/b/mod.rs` are both `a::b`,
/// whose `super` is `a`).
fn parent(module: &[String]) -> Vec<String> {
    module[..module.len().saturating_sub(1)].to_vec()
}

/// `store::metrics::{A, B}` → `["store", "metrics"]`; `{store, data}` → the first.
fn path_segments(text: &str) -> Vec<String> {
    let mut segments = Vec::new();
    let mut rest = text.trim_start_matches('{');
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        segments.push(rest[..end].to_string());
        rest = &rest[end..];
        match rest.strip_prefix("::") {
            Some(next) => rest = next.trim_start_matches('{'),
            None => break,
        }
    }
    segments
}

fn layer_of(segments: &[String]) -> Option<usize> {
    LAYERS
        .iter()
        .position(|l| segments.first().is_some_and(|s| s == l))
}

/// Upward imports, as `file:line: layer imports higher-layer path` messages.
fn upward_imports(files: &BTreeMap<PathBuf, (Vec<String>, Vec<Import>)>) -> Vec<String> {
    let mut problems = Vec::new();
    for (file, (module, found)) in files {
        let Some(own) = layer_of(module) else {
            continue;
        };
        for import in found {
            if let Some(theirs) = layer_of(&import.segments)
                && theirs > own
            {
                problems.push(format!(
                    "{}:{}: `{}` (layer {}) imports `crate::{}` from the higher layer `{}`",
                    file.display(),
                    import.line,
                    module.join("::"),
                    LAYERS[own],
                    import.segments.join("::"),
                    LAYERS[theirs]
                ));
            }
        }
    }
    problems
}

/// Cycles among the direct submodules of each layer (e.g. `report::render` ↔
/// `report::aggregate`), as the modules on each cycle.
fn cycles_within_layers(files: &BTreeMap<PathBuf, (Vec<String>, Vec<Import>)>) -> Vec<String> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, found) in files.values() {
        if module.len() < 2 || layer_of(module).is_none() {
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

fn library_files(src: &Path) -> BTreeMap<PathBuf, (Vec<String>, Vec<Import>)> {
    let mut paths = Vec::new();
    rust_files(src, &mut paths);
    let mut files = BTreeMap::new();
    for path in paths {
        let relative = path.strip_prefix(src).expect("under src/").to_path_buf();
        let first = relative.components().next().expect("non-empty");
        if BINARY.iter().any(|b| first.as_os_str() == *b) || relative == Path::new("lib.rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("source is readable");
        let module = module_path(&relative);
        let found = imports(&source, &module);
        files.insert(relative, (module, found));
    }
    files
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = library_files(&src);
    for layer in LAYERS {
        assert!(
            files.values().any(|(m, _)| m[0] == layer),
            "layer `{layer}` has no files under src/: update LAYERS in this test"
        );
    }
    let unknown: Vec<_> = files
        .iter()
        .filter(|(_, (m, _))| layer_of(m).is_none())
        .map(|(f, _)| f.display().to_string())
        .collect();
    assert!(
        unknown.is_empty(),
        "files in no declared layer: {unknown:?}"
    );
    let problems = upward_imports(&files);
    assert!(
        problems.is_empty(),
        "upward imports:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_submodules_of_a_layer_import_each_other_without_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = cycles_within_layers(&library_files(&src));
    assert!(
        problems.is_empty(),
        "import cycles:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_lib_declares_the_layers_in_the_order_of_this_test() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("src/lib.rs");
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert_eq!(declared, LAYERS);
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
    let upward = upward_imports(&files);
    assert_eq!(upward.len(), 2, "{upward:#?}");
    assert!(upward[0].starts_with("data/b.rs:1:") && upward[0].contains("`train`"));
    assert!(
        upward[1].starts_with("store/a.rs:2:") && upward[1].contains("crate::report::render::slug")
    );
    let cycles = cycles_within_layers(&files);
    assert!(
        cycles.contains(&"report::c → report::d → report::c".to_string()),
        "{cycles:?}"
    );
}
