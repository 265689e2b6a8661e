//! `vaelab runs`: every run in the store, filtered by `--where` conditions, experiment and
//! status, sorted by a field; as a table of what tells the runs apart, or JSON or CSV.
use std::io::Write;

use anyhow::Result;

use crate::cli::RunsArgs;
use vaelab_core::progress::Reporter;
use vaelab_core::report::export::{self, Row, Value};
use vaelab_core::report::query::{self, Condition};
use vaelab_core::store::RunStore;

/// The results the table shows after the settings, when runs have them.
const SHOWN_RESULTS: [(&str, &str); 4] = [
    ("final.val_loss", "VAL"),
    ("eval.psnr", "PSNR"),
    ("eval.iwae_bpd", "IWAE"),
    ("eval.calibrated_iwae_bpd", "IWAE-CAL"),
];

pub fn execute(args: &RunsArgs, store: &RunStore, reporter: &dyn Reporter) -> Result<()> {
    let listing = store.scan()?;
    for damaged in &listing.damaged {
        reporter.warn(&damaged.describe());
    }
    let all = export::rows(&listing.runs, reporter);
    let columns = export::columns(&all);
    let conditions = args
        .conditions
        .iter()
        .map(|c| query::parse_condition(c, &columns))
        .collect::<Result<Vec<Condition>, String>>()
        .map_err(super::usage)?;
    let text_is = |row: &Row, column: &str, wanted: &Option<String>| {
        wanted
            .as_ref()
            .is_none_or(|w| row.get(column).is_some_and(|v| v.display() == *w))
    };
    let mut rows: Vec<Row> = all
        .into_iter()
        .filter(|r| text_is(r, "experiment", &args.experiment))
        .filter(|r| text_is(r, "status", &args.status))
        .filter(|r| conditions.iter().all(|c| c.matches(r)))
        .collect();
    let sort_column = match &args.sort {
        Some(field) => Some(
            query::resolve_field(field, &columns)
                .map_err(|e| super::usage(format!("--sort: {e}")))?,
        ),
        None => None,
    };
    if let Some(column) = &sort_column {
        let key = |r: &Row| {
            r.get(column)
                .and_then(Value::number)
                .unwrap_or(f64::INFINITY)
        };
        rows.sort_by(|a, b| key(a).total_cmp(&key(b)));
    }
    if args.json {
        let json: Vec<serde_json::Value> = rows.iter().map(export::row_json).collect();
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else if args.csv {
        std::io::stdout().write_all(&export::csv_bytes(&rows))?;
    } else {
        print_table(&rows, sort_column.as_deref());
    }
    Ok(())
}

/// Id, run, status, the config fields that differ between the listed runs, the results
/// (and the sort field), aligned.
fn print_table(rows: &[Row], sort_column: Option<&str>) {
    if rows.is_empty() {
        println!("no runs match");
        return;
    }
    let columns = export::columns(rows);
    let mut shown: Vec<(String, String)> = query::differing_config(rows, &columns)
        .into_iter()
        .map(|c| (c.clone(), c.trim_start_matches("config.").to_string()))
        .collect();
    shown.extend(
        SHOWN_RESULTS
            .iter()
            .filter(|(c, _)| columns.iter().any(|have| have == c))
            .map(|(c, title)| (c.to_string(), title.to_string())),
    );
    if let Some(sort) = sort_column.filter(|s| !shown.iter().any(|(c, _)| c == s)) {
        shown.push((sort.to_string(), sort.to_string()));
    }
    let cell = |row: &Row, column: &str| row.get(column).map(Value::display).unwrap_or("-".into());
    let mut table: Vec<Vec<String>> = vec![
        ["ID", "RUN", "STATUS"]
            .into_iter()
            .map(String::from)
            .chain(shown.iter().map(|(_, title)| title.to_uppercase()))
            .collect(),
    ];
    for row in rows {
        let id = cell(row, "id").chars().take(8).collect();
        let run = format!("{}/{}", cell(row, "experiment"), cell(row, "label"));
        let mut line = vec![id, run, cell(row, "status")];
        line.extend(shown.iter().map(|(c, _)| cell(row, c)));
        table.push(line);
    }
    let widths: Vec<usize> = (0..table[0].len())
        .map(|i| {
            table
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in table {
        let padded: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(text, &width)| format!("{text:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    }
}
