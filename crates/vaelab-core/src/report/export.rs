//! One row per run: its id, state, flattened resolved config (`config.model.latent_dim`),
//! the last epoch's metrics (`final.val_loss`) and the end-of-run evaluation
//! (`eval.psnr`), for `vaelab export` (Parquet or CSV) and `vaelab runs`.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::progress::Reporter;
use crate::store::{RunDir, StoreError, write_atomic, write_parquet};

/// One value of a run's row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Flag(bool),
    Integer(i64),
    Number(f64),
    Text(String),
}

impl Value {
    /// As a person reads it in a table.
    pub fn display(&self) -> String {
        match self {
            Value::Flag(v) => v.to_string(),
            Value::Integer(v) => v.to_string(),
            Value::Number(v) => super::format::format_value(*v),
            Value::Text(v) => v.clone(),
        }
    }

    /// The value as a number, for comparisons and sorting.
    pub fn number(&self) -> Option<f64> {
        match self {
            Value::Integer(v) => Some(*v as f64),
            Value::Number(v) => Some(*v),
            _ => None,
        }
    }
}

/// A run's row: column name → value (absent columns are null).
pub type Row = BTreeMap<String, Value>;

/// Flattens JSON into dotted columns under `prefix`; lists become JSON text.
fn flatten(prefix: &str, value: &serde_json::Value, row: &mut Row) {
    use serde_json::Value as Json;
    match value {
        Json::Null => {}
        Json::Bool(v) => {
            row.insert(prefix.into(), Value::Flag(*v));
        }
        Json::Number(n) => {
            let cell = match n.as_i64() {
                Some(i) => Value::Integer(i),
                None => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            };
            row.insert(prefix.into(), cell);
        }
        Json::String(s) => {
            row.insert(prefix.into(), Value::Text(s.clone()));
        }
        Json::Array(_) => {
            row.insert(prefix.into(), Value::Text(value.to_string()));
        }
        Json::Object(map) => {
            for (key, inner) in map {
                flatten(&format!("{prefix}.{key}"), inner, row);
            }
        }
    }
}

/// The row of one run; a file that cannot be read is an error naming it.
pub fn run_row(dir: &RunDir) -> Result<Row, StoreError> {
    let mut row = Row::new();
    row.insert("id".into(), Value::Text(dir.id().full().into()));
    row.insert("path".into(), Value::Text(dir.path().display().to_string()));
    if let Some(config) = dir.read_config()? {
        let json = serde_json::to_value(&config).expect("RunConfig always serializes");
        flatten("config", &json, &mut row);
    }
    if let Some(state) = dir.read_state()? {
        row.insert("experiment".into(), Value::Text(state.experiment));
        row.insert("label".into(), Value::Text(state.label));
        // The standing word, as `status` says it (not state.json's own word).
        let standing = dir.own_standing(state.epochs_target)?;
        row.insert("status".into(), Value::Text(standing.word().into()));
        row.insert(
            "epochs_done".into(),
            Value::Integer(state.epochs_done.into()),
        );
        row.insert(
            "epochs_target".into(),
            Value::Integer(state.epochs_target.into()),
        );
        row.insert("device".into(), Value::Text(state.device));
        if let Some(parameters) = state.parameters {
            row.insert("parameters".into(), Value::Integer(parameters));
        }
        if let Some(error) = state.error {
            row.insert("error".into(), Value::Text(error));
        }
        let provenance = state.provenance;
        let texts = [
            ("vaelab_version", Some(state.vaelab_version)),
            ("libtorch_version", Some(state.libtorch_version)),
            ("vaelab_commit", provenance.vaelab_commit),
            ("spec_commit", provenance.spec_commit),
            ("data_fingerprint", state.data_fingerprint),
        ];
        for (name, value) in texts {
            if let Some(value) = value {
                row.insert(name.into(), Value::Text(value));
            }
        }
        if let Some(dirty) = provenance.spec_dirty {
            row.insert("spec_dirty".into(), Value::Flag(dirty));
        }
    }
    if let Some(last) = dir.read_metrics()?.last() {
        row.insert("final.epoch".into(), Value::Integer(last.epoch.into()));
        for column in &crate::store::METRICS_COLUMNS {
            row.insert(
                format!("final.{}", column.name),
                Value::Number((column.get)(last)),
            );
        }
    }
    if let Some(evaluation) = dir.read_evaluation()? {
        let frame = crate::store::evaluation_row(&evaluation).map_err(|e| StoreError::Corrupt {
            path: dir.path().join("evaluation.parquet"),
            detail: e.to_string(),
        })?;
        for column in frame.columns() {
            if let Some(value) = any_value(column.get(0).unwrap_or(AnyValue::Null)) {
                row.insert(format!("eval.{}", column.name()), value);
            }
        }
    }
    Ok(row)
}

/// The rows of `dirs`; a run whose files cannot be read keeps its id and path with the
/// problem (and a warning), so no run drops out of the table.
pub fn rows(dirs: &[RunDir], reporter: &dyn Reporter) -> Vec<Row> {
    dirs.iter()
        .map(|dir| {
            run_row(dir).unwrap_or_else(|error| {
                reporter.warn(&format!("{error}; listed with its id and the problem only"));
                Row::from([
                    ("id".to_string(), Value::Text(dir.id().full().into())),
                    (
                        "path".to_string(),
                        Value::Text(dir.path().display().to_string()),
                    ),
                    ("problem".to_string(), Value::Text(error.to_string())),
                ])
            })
        })
        .collect()
}

/// A row as JSON: numbers, booleans and strings under their column names.
pub fn row_json(row: &Row) -> serde_json::Value {
    let object = row
        .iter()
        .map(|(name, value)| {
            let json = match value {
                Value::Flag(v) => serde_json::json!(v),
                Value::Integer(v) => serde_json::json!(v),
                Value::Number(v) => serde_json::json!(v),
                Value::Text(v) => serde_json::json!(v),
            };
            (name.clone(), json)
        })
        .collect();
    serde_json::Value::Object(object)
}

fn any_value(value: AnyValue) -> Option<Value> {
    Some(match value {
        AnyValue::Null => return None,
        AnyValue::Boolean(v) => Value::Flag(v),
        AnyValue::Float64(v) => Value::Number(v),
        AnyValue::Float32(v) => Value::Number(v.into()),
        AnyValue::String(v) => Value::Text(v.to_string()),
        other => match other.extract::<i64>() {
            Some(v) if !matches!(other, AnyValue::Datetime(..)) => Value::Integer(v),
            _ => Value::Text(other.to_string()),
        },
    })
}

/// Every column of `rows`, in a stable order: identity and state first, then the rest.
pub fn columns(rows: &[Row]) -> Vec<String> {
    const FIRST: [&str; 8] = [
        "id",
        "experiment",
        "label",
        "status",
        "epochs_done",
        "epochs_target",
        "parameters",
        "device",
    ];
    let all: BTreeSet<&String> = rows.iter().flat_map(|r| r.keys()).collect();
    let mut ordered: Vec<String> = FIRST
        .iter()
        .filter(|c| all.iter().any(|a| a == c))
        .map(|c| c.to_string())
        .collect();
    ordered.extend(
        all.into_iter()
            .filter(|c| !FIRST.contains(&c.as_str()))
            .cloned(),
    );
    ordered
}

/// The rows as a DataFrame; a column whose values mix kinds is written as text.
pub fn frame(rows: &[Row]) -> PolarsResult<DataFrame> {
    let mut series = Vec::new();
    for name in columns(rows) {
        let cells: Vec<Option<&Value>> = rows.iter().map(|r| r.get(&name)).collect();
        let kinds: std::collections::HashSet<std::mem::Discriminant<Value>> = cells
            .iter()
            .flatten()
            .map(|v| std::mem::discriminant(*v))
            .collect();
        let first = cells.iter().flatten().next();
        let column = match (kinds.len(), first) {
            (1, Some(Value::Flag(_))) => Column::new(
                name.as_str().into(),
                cells
                    .iter()
                    .map(|c| match c {
                        Some(Value::Flag(v)) => Some(*v),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
            ),
            (1, Some(Value::Integer(_))) => Column::new(
                name.as_str().into(),
                cells
                    .iter()
                    .map(|c| match c {
                        Some(Value::Integer(v)) => Some(*v),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
            ),
            (_, Some(Value::Integer(_) | Value::Number(_)))
                if cells.iter().flatten().all(|v| v.number().is_some()) =>
            {
                Column::new(
                    name.as_str().into(),
                    cells
                        .iter()
                        .map(|c| c.and_then(Value::number))
                        .collect::<Vec<_>>(),
                )
            }
            _ => Column::new(
                name.as_str().into(),
                cells
                    .iter()
                    .map(|c| c.map(Value::display))
                    .collect::<Vec<_>>(),
            ),
        };
        series.push(column);
    }
    DataFrame::new(rows.len(), series)
}

/// Where an export goes, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Parquet,
    Csv,
}

impl ExportFormat {
    /// `.parquet` or `.csv`; anything else is none.
    pub fn of(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "parquet" => Some(Self::Parquet),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }
}

/// Writes `rows` to `path` atomically, as Parquet or CSV.
pub fn write(rows: &[Row], path: &Path, format: ExportFormat) -> Result<(), StoreError> {
    let corrupt = |e: PolarsError| StoreError::Corrupt {
        path: PathBuf::from(path),
        detail: e.to_string(),
    };
    match format {
        ExportFormat::Parquet => {
            let mut frame = frame(rows).map_err(corrupt)?;
            write_parquet(path, &mut frame)
        }
        ExportFormat::Csv => write_atomic(path, &csv_bytes(rows)),
    }
}

/// The rows as CSV, every column of [`columns`], numbers at full precision.
pub fn csv_bytes(rows: &[Row]) -> Vec<u8> {
    let header = columns(rows);
    let mut writer = csv::Writer::from_writer(Vec::new());
    // Writing into memory cannot fail, and every record has the header's width.
    let _ = writer.write_record(&header);
    for row in rows {
        let cells: Vec<String> = header
            .iter()
            .map(|c| row.get(c).map(csv_cell).unwrap_or_default())
            .collect();
        let _ = writer.write_record(cells);
    }
    writer.into_inner().unwrap_or_default()
}

/// Full precision in CSV, as the report's CSV tables are.
fn csv_cell(value: &Value) -> String {
    match value {
        Value::Number(v) => super::format::raw(*v),
        other => other.display(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_json_flattens_to_dotted_columns() {
        let json = serde_json::json!({"model": {"latent_dim": 8, "residual": true, "channels": [4, 8]}, "train": {"lr": 0.001}, "data": {"limit": null}});
        let mut row = Row::new();
        flatten("config", &json, &mut row);
        assert_eq!(row["config.model.latent_dim"], Value::Integer(8));
        assert_eq!(row["config.model.residual"], Value::Flag(true));
        assert_eq!(row["config.model.channels"], Value::Text("[4,8]".into()));
        assert_eq!(row["config.train.lr"], Value::Number(0.001));
        assert!(!row.contains_key("config.data.limit"));
    }

    #[test]
    fn columns_of_mixed_kinds_become_text_and_missing_cells_null() {
        let rows = vec![
            Row::from([
                ("a".to_string(), Value::Integer(1)),
                ("b".into(), Value::Flag(true)),
            ]),
            Row::from([
                ("a".to_string(), Value::Number(2.5)),
                ("c".into(), Value::Text("x".into())),
            ]),
        ];
        let frame = frame(&rows).unwrap();
        assert_eq!(frame.column("a").unwrap().f64().unwrap().get(1), Some(2.5));
        assert_eq!(frame.column("b").unwrap().bool().unwrap().get(1), None);
        assert_eq!(frame.column("c").unwrap().str().unwrap().get(1), Some("x"));
    }
}
