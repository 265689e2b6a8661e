//! `metrics.parquet`: one row per epoch. The schema is declared once, in [`COLUMNS`], and
//! that one list writes the file, reads it back and names the columns the report shows.
use std::fs::File;
use std::path::Path;

use chrono::{DateTime, Utc};
use polars::prelude::*;

use super::StoreError;

/// One row of `metrics.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochMetrics {
    pub epoch: u32,
    pub train_loss: f64,
    pub train_recon: f64,
    pub train_kl: f64,
    pub val_loss: f64,
    pub val_recon: f64,
    pub val_kl: f64,
    pub beta: f64,
    pub lr: f64,
    pub epoch_seconds: f64,
    pub images_per_second: f64,
    /// Mean per-image PSNR (dB) of the validation reconstructions the loss saw; NaN in
    /// metrics written before it was recorded.
    pub val_psnr: f64,
    pub finished_at: DateTime<Utc>,
}

/// The epoch up to `up_to` with the lowest validation loss (the earliest of equals;
/// epochs without a finite one never count).
pub fn best_epoch(rows: &[EpochMetrics], up_to: u32) -> Option<u32> {
    rows.iter()
        .filter(|m| m.epoch <= up_to && m.val_loss.is_finite())
        .min_by(|a, b| {
            a.val_loss
                .total_cmp(&b.val_loss)
                .then(a.epoch.cmp(&b.epoch))
        })
        .map(|m| m.epoch)
}

/// One floating-point column of `metrics.parquet`: its name, where its value lives in an
/// [`EpochMetrics`], whether files written before it existed lack it, and which curve
/// (if any) the report and the dashboard draw it on.
pub struct MetricsColumn {
    pub name: &'static str,
    pub get: fn(&EpochMetrics) -> f64,
    set: fn(&mut EpochMetrics, f64),
    /// Added after the first release: absent in older files, read as NaN.
    added_later: bool,
    /// Learned rather than timed: must replay bit for bit on resume.
    pub(crate) learned: bool,
    /// The quantity this column is one split of, for the per-epoch figures.
    plotted: Option<Plotted>,
}

/// A quantity drawn per epoch: its key in file names (`curves-loss.png`) and its title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    pub key: &'static str,
    pub title: &'static str,
}

impl Quantity {
    const fn new(key: &'static str, title: &'static str) -> Self {
        Self { key, title }
    }
}

/// Which split of a [`Quantity`] a column holds.
#[derive(Clone, Copy)]
enum Plotted {
    Train(Quantity),
    Validation(Quantity),
}

const LOSS: Quantity = Quantity::new("loss", "total loss");
const RECON: Quantity = Quantity::new("recon", "reconstruction (sum of squares)");
const KL: Quantity = Quantity::new("kl", "KL (nats)");
const PSNR: Quantity = Quantity::new("psnr", "PSNR (dB)");

macro_rules! column {
    ($field:ident, learned: $learned:expr, added_later: $later:expr, plotted: $plotted:expr) => {
        MetricsColumn {
            name: stringify!($field),
            get: |m| m.$field,
            set: |m, v| m.$field = v,
            added_later: $later,
            learned: $learned,
            plotted: $plotted,
        }
    };
}

use Plotted::{Train, Validation};

/// Every floating-point column, in file order (after `epoch`, before `finished_at`). A new
/// per-epoch metric is one entry here (and its field in [`EpochMetrics`]): the file, the
/// report's curves and tables, the dashboard's charts and `export` all follow from it.
pub static COLUMNS: [MetricsColumn; 11] = [
    column!(train_loss, learned: true, added_later: false, plotted: Some(Train(LOSS))),
    column!(train_recon, learned: true, added_later: false, plotted: Some(Train(RECON))),
    column!(train_kl, learned: true, added_later: false, plotted: Some(Train(KL))),
    column!(val_loss, learned: true, added_later: false, plotted: Some(Validation(LOSS))),
    column!(val_recon, learned: true, added_later: false, plotted: Some(Validation(RECON))),
    column!(val_kl, learned: true, added_later: false, plotted: Some(Validation(KL))),
    column!(beta, learned: false, added_later: false, plotted: None),
    column!(lr, learned: false, added_later: false, plotted: None),
    column!(epoch_seconds, learned: false, added_later: false, plotted: None),
    column!(images_per_second, learned: false, added_later: false, plotted: None),
    column!(val_psnr, learned: true, added_later: true, plotted: Some(Validation(PSNR))),
];

/// One per-epoch figure: a quantity's validation column and, where it has one, its
/// training column.
pub struct Curve {
    pub quantity: Quantity,
    pub train: Option<&'static MetricsColumn>,
    pub validation: &'static MetricsColumn,
}

/// The curves [`COLUMNS`] declares, in the order their validation columns appear.
pub fn curves() -> Vec<Curve> {
    let train_of = |quantity: Quantity| {
        COLUMNS
            .iter()
            .find(|c| matches!(c.plotted, Some(Train(q)) if q == quantity))
    };
    COLUMNS
        .iter()
        .filter_map(|column| match column.plotted {
            Some(Validation(quantity)) => Some(Curve {
                quantity,
                train: train_of(quantity),
                validation: column,
            }),
            _ => None,
        })
        .collect()
}

const EPOCH: &str = "epoch";
const FINISHED_AT: &str = "finished_at";

impl EpochMetrics {
    /// A row with every floating-point column NaN, to be filled in.
    fn blank(epoch: u32, finished_at: DateTime<Utc>) -> Self {
        Self {
            epoch,
            train_loss: f64::NAN,
            train_recon: f64::NAN,
            train_kl: f64::NAN,
            val_loss: f64::NAN,
            val_recon: f64::NAN,
            val_kl: f64::NAN,
            beta: f64::NAN,
            lr: f64::NAN,
            epoch_seconds: f64::NAN,
            images_per_second: f64::NAN,
            val_psnr: f64::NAN,
            finished_at,
        }
    }

    /// The learned quantities, without timings: what must replay bit for bit on resume.
    pub fn learned(&self) -> Vec<f64> {
        COLUMNS
            .iter()
            .filter(|c| c.learned)
            .map(|c| (c.get)(self))
            .collect()
    }
}

fn utc_micros() -> DataType {
    DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
}

pub(crate) fn metrics_to_frame(rows: &[EpochMetrics]) -> PolarsResult<DataFrame> {
    let mut columns: Vec<Column> = Vec::with_capacity(COLUMNS.len() + 2);
    columns.push(Column::new(
        EPOCH.into(),
        rows.iter().map(|r| r.epoch).collect::<Vec<u32>>(),
    ));
    for column in &COLUMNS {
        let values: Vec<f64> = rows.iter().map(column.get).collect();
        columns.push(Column::new(column.name.into(), values));
    }
    let finished: Vec<i64> = rows
        .iter()
        .map(|r| r.finished_at.timestamp_micros())
        .collect();
    let finished = Series::new(FINISHED_AT.into(), finished).cast(&utc_micros())?;
    columns.push(finished.into());
    DataFrame::new(rows.len(), columns)
}

pub(crate) fn metrics_from_frame(frame: &DataFrame) -> PolarsResult<Vec<EpochMetrics>> {
    let missing = || PolarsError::ComputeError("null in metrics".into());
    let epochs = frame.column(EPOCH)?.u32()?;
    let finished = frame.column(FINISHED_AT)?.cast(&DataType::Int64)?;
    let finished = finished.i64()?;
    let values: Vec<Option<&Float64Chunked>> = COLUMNS
        .iter()
        .map(|column| match frame.column(column.name) {
            Ok(values) => values.f64().map(Some),
            Err(_) if column.added_later => Ok(None),
            Err(e) => Err(e),
        })
        .collect::<PolarsResult<_>>()?;
    (0..frame.height())
        .map(|i| {
            let micros = finished.get(i).ok_or_else(missing)?;
            let mut row = EpochMetrics::blank(
                epochs.get(i).ok_or_else(missing)?,
                DateTime::from_timestamp_micros(micros).ok_or_else(missing)?,
            );
            for (column, values) in COLUMNS.iter().zip(&values) {
                if let Some(values) = values {
                    (column.set)(&mut row, values.get(i).ok_or_else(missing)?);
                }
            }
            Ok(row)
        })
        .collect()
}

/// Reads a `metrics.parquet` file.
pub fn read_metrics_file(path: &Path) -> Result<Vec<EpochMetrics>, StoreError> {
    let corrupt = |e: PolarsError| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let file = File::open(path).map_err(super::io_err(path, "cannot open"))?;
    let frame = ParquetReader::new(file).finish().map_err(corrupt)?;
    metrics_from_frame(&frame).map_err(corrupt)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn the_best_epoch_has_the_lowest_finite_validation_loss_and_is_the_earliest_of_equals() {
        let with_loss = |epoch, val_loss| EpochMetrics {
            val_loss,
            ..row(epoch)
        };
        let rows = [
            with_loss(1, 5.0),
            with_loss(2, 3.0),
            with_loss(3, f64::NAN),
            with_loss(4, 3.0),
            with_loss(5, 1.0),
        ];
        assert_eq!(best_epoch(&rows, 5), Some(5));
        assert_eq!(
            best_epoch(&rows, 4),
            Some(2),
            "ties go to the earlier epoch"
        );
        assert_eq!(best_epoch(&rows[2..3], 5), None);
    }

    pub(crate) fn row(epoch: u32) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 1.5 + epoch as f64,
            train_recon: 1.0,
            train_kl: 0.5,
            val_loss: 2.0,
            val_recon: 1.25,
            val_kl: 0.75,
            beta: 1.0,
            lr: 1e-3,
            epoch_seconds: 3.0,
            images_per_second: 100.0,
            val_psnr: 21.5,
            finished_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
        }
    }

    #[test]
    fn the_curves_pair_each_quantity_s_training_and_validation_columns() {
        let drawn: Vec<(&str, Option<&str>, &str)> = curves()
            .iter()
            .map(|c| (c.quantity.key, c.train.map(|t| t.name), c.validation.name))
            .collect();
        assert_eq!(
            drawn,
            [
                ("loss", Some("train_loss"), "val_loss"),
                ("recon", Some("train_recon"), "val_recon"),
                ("kl", Some("train_kl"), "val_kl"),
                ("psnr", None, "val_psnr"),
            ]
        );
    }

    #[test]
    fn metrics_without_later_columns_read_them_as_nan() {
        let mut frame = metrics_to_frame(&[row(1)]).unwrap();
        let _ = frame.drop_in_place("val_psnr").unwrap();
        let rows = metrics_from_frame(&frame).unwrap();
        assert!(rows[0].val_psnr.is_nan());
        assert_eq!(rows[0].val_loss, 2.0);
    }

    #[test]
    fn a_missing_original_column_is_an_error() {
        let mut frame = metrics_to_frame(&[row(1)]).unwrap();
        let _ = frame.drop_in_place("val_loss").unwrap();
        assert!(metrics_from_frame(&frame).is_err());
    }

    #[test]
    fn the_file_has_the_columns_of_the_schema_in_order() {
        let frame = metrics_to_frame(&[row(1)]).unwrap();
        let names: Vec<&str> = frame
            .get_column_names()
            .iter()
            .map(|n| n.as_str())
            .collect();
        let mut expected = vec!["epoch"];
        expected.extend(COLUMNS.iter().map(|c| c.name));
        expected.push("finished_at");
        assert_eq!(names, expected);
    }

    #[test]
    fn every_column_reads_back_into_its_own_field() {
        // Distinct values per column, so a swapped accessor cannot go unnoticed.
        let mut original = row(3);
        for (i, column) in COLUMNS.iter().enumerate() {
            (column.set)(&mut original, 10.0 + i as f64);
        }
        let frame = metrics_to_frame(std::slice::from_ref(&original)).unwrap();
        assert_eq!(metrics_from_frame(&frame).unwrap(), vec![original.clone()]);
        assert_eq!(
            original.learned(),
            vec![10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 20.0]
        );
    }
}
