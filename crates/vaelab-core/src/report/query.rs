//! Finding runs by their settings and results: `FIELD=VALUE`, `FIELD<VALUE` and
//! `FIELD>VALUE` conditions over the rows of [`super::export`], where a field is a dotted
//! config path (`model.residual`), a metric (`val_loss`, `psnr`) or a column as exported.
use std::collections::BTreeSet;

use super::export::{Row, Value};
use crate::experiment::spec::did_you_mean;

/// Where a short field name is looked up, in order.
const PREFIXES: [&str; 4] = ["", "config.", "final.", "eval."];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Equal,
    Less,
    Greater,
}

/// One `--where` condition, its field resolved to a column.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub column: String,
    pub comparison: Comparison,
    pub value: String,
}

/// The names a user may write for `columns`: config, metric and evaluation columns
/// without their prefix, and the other columns as they are.
pub fn field_names(columns: &[String]) -> Vec<String> {
    let names: BTreeSet<String> = columns
        .iter()
        .map(|column| {
            PREFIXES[1..]
                .iter()
                .find_map(|prefix| column.strip_prefix(prefix))
                .unwrap_or(column)
                .to_string()
        })
        .collect();
    names.into_iter().collect()
}

/// The column `field` names, or an error listing what is allowed.
pub fn resolve_field(field: &str, columns: &[String]) -> Result<String, String> {
    PREFIXES
        .iter()
        .map(|prefix| format!("{prefix}{field}"))
        .find(|candidate| columns.contains(candidate))
        .ok_or_else(|| {
            let names = field_names(columns);
            let known: Vec<&str> = names.iter().map(String::as_str).collect();
            format!(
                "unknown field `{field}`{}; fields: {}",
                did_you_mean(field, &known),
                known.join(", ")
            )
        })
}

/// Parses `FIELD=VALUE`, `FIELD<VALUE` or `FIELD>VALUE` against `columns`.
pub fn parse_condition(text: &str, columns: &[String]) -> Result<Condition, String> {
    let Some(at) = text.find(['=', '<', '>']) else {
        return Err(format!(
            "--where {text:?}: expected FIELD=VALUE, FIELD<VALUE or FIELD>VALUE"
        ));
    };
    let (field, rest) = text.split_at(at);
    let comparison = match &rest[..1] {
        "=" => Comparison::Equal,
        "<" => Comparison::Less,
        _ => Comparison::Greater,
    };
    let value = rest[1..].trim().to_string();
    if comparison != Comparison::Equal && value.parse::<f64>().is_err() {
        return Err(format!(
            "--where {text:?}: `<` and `>` need a number, got {value:?}"
        ));
    }
    let column =
        resolve_field(field.trim(), columns).map_err(|e| format!("--where {text:?}: {e}"))?;
    Ok(Condition {
        column,
        comparison,
        value,
    })
}

impl Condition {
    /// Whether `row` meets the condition; a run without the field does not.
    pub fn matches(&self, row: &Row) -> bool {
        let Some(cell) = row.get(&self.column) else {
            return false;
        };
        let wanted = self.value.parse::<f64>().ok();
        match (self.comparison, cell.number(), wanted) {
            (Comparison::Equal, Some(have), Some(want)) => have == want,
            (Comparison::Equal, _, _) => match cell {
                Value::Flag(flag) => self.value.parse::<bool>().ok() == Some(*flag),
                other => other.display() == self.value,
            },
            (Comparison::Less, Some(have), Some(want)) => have < want,
            (Comparison::Greater, Some(have), Some(want)) => have > want,
            _ => false,
        }
    }
}

/// The config columns whose values differ between `rows`: what tells the runs apart.
pub fn differing_config(rows: &[Row], columns: &[String]) -> Vec<String> {
    columns
        .iter()
        .filter(|c| c.starts_with("config."))
        .filter(|c| {
            let values: BTreeSet<String> = rows
                .iter()
                .map(|r| r.get(*c).map(Value::display).unwrap_or_default())
                .collect();
            values.len() > 1
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> Vec<String> {
        [
            "id",
            "config.model.residual",
            "config.train.beta",
            "final.val_loss",
            "eval.psnr",
        ]
        .map(String::from)
        .to_vec()
    }

    fn row(residual: bool, beta: f64, psnr: f64) -> Row {
        Row::from([
            ("config.model.residual".to_string(), Value::Flag(residual)),
            ("config.train.beta".into(), Value::Number(beta)),
            ("eval.psnr".into(), Value::Number(psnr)),
        ])
    }

    #[test]
    fn conditions_compare_flags_numbers_and_ranges() {
        let residual = parse_condition("model.residual=true", &columns()).unwrap();
        assert_eq!(residual.column, "config.model.residual");
        assert!(residual.matches(&row(true, 1.0, 10.0)));
        assert!(!residual.matches(&row(false, 1.0, 10.0)));
        let beta = parse_condition("train.beta=4", &columns()).unwrap();
        assert!(beta.matches(&row(true, 4.0, 10.0)) && !beta.matches(&row(true, 1.0, 10.0)));
        let psnr = parse_condition("psnr>12.5", &columns()).unwrap();
        assert_eq!(psnr.column, "eval.psnr");
        assert!(psnr.matches(&row(true, 1.0, 13.0)) && !psnr.matches(&row(true, 1.0, 12.0)));
        let low = parse_condition("psnr<12.5", &columns()).unwrap();
        assert!(low.matches(&row(true, 1.0, 12.0)));
        assert!(
            !low.matches(&Row::new()),
            "a run without the field does not match"
        );
    }

    #[test]
    fn bad_conditions_say_what_is_allowed() {
        let err = parse_condition("model.residul=true", &columns()).unwrap_err();
        assert!(
            err.contains("unknown field `model.residul` (did you mean `model.residual`?)"),
            "{err}"
        );
        assert!(err.contains("fields: "), "{err}");
        assert!(
            parse_condition("psnr>high", &columns())
                .unwrap_err()
                .contains("need a number")
        );
        assert!(
            parse_condition("psnr", &columns())
                .unwrap_err()
                .contains("expected FIELD=VALUE")
        );
    }

    #[test]
    fn the_differing_config_columns_tell_runs_apart() {
        let rows = [row(true, 1.0, 1.0), row(false, 1.0, 2.0)];
        assert_eq!(
            differing_config(&rows, &columns()),
            vec!["config.model.residual"]
        );
    }
}
