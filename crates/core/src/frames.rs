//! Warehouse rows ↔ Parquet (through polars), typed by the warehouse descriptions: DATE, TIME,
//! exact DECIMAL, INT32, UTF-8 and BOOLEAN columns, nullable only where the description says so,
//! zstd-compressed.

use std::io::Cursor;

use chrono::{NaiveDate, NaiveTime, Timelike};
use polars::prelude::*;

use crate::values::{Cell, Decimal};
use crate::warehouse::{WColumn, WKind, WarehouseTable};

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{table}.{column}, row {row}: {reason}")]
    Value { table: &'static str, column: &'static str, row: usize, reason: String },
    #[error("{table}: Parquet error: {reason}")]
    Parquet { table: &'static str, reason: String },
    #[error("{table}: column {column} is missing from the Parquet file or has the wrong type: {reason}")]
    Schema { table: &'static str, column: &'static str, reason: String },
}

const EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => panic!("1970-01-01 is a date"),
};

fn days(date: NaiveDate) -> i32 {
    (date - EPOCH).num_days() as i32
}

fn nanos(time: NaiveTime) -> i64 {
    i64::from(time.num_seconds_from_midnight()) * 1_000_000_000 + i64::from(time.nanosecond())
}

/// The Parquet carrier of an unconstrained NUMERIC: DECIMAL(38, 18) keeps 18 decimal places and
/// 20 integer digits. Every processed file of a table has the same types, so a lake reader (Athena,
/// reading all of a table's files with one schema) can read them together.
pub const FREE_DECIMAL_CARRIER: (u8, u8) = (38, 18);

/// The Parquet `(precision, scale)` of a decimal column: the description's NUMERIC(p, s), or
/// [`FREE_DECIMAL_CARRIER`] for an unconstrained NUMERIC — never taken from the data.
pub fn decimal_carrier(kind: WKind) -> Option<(u8, u8)> {
    match kind {
        WKind::Decimal { precision, scale: Some(scale) } => Some((precision, scale)),
        WKind::Decimal { scale: None, .. } => Some(FREE_DECIMAL_CARRIER),
        _ => None,
    }
}

fn build_column(
    table: &'static WarehouseTable,
    column: &'static WColumn,
    cells: Vec<&Cell>,
) -> Result<Column, FrameError> {
    let name: PlSmallStr = column.name.into();
    let wrong = |row: usize, cell: &Cell| FrameError::Value {
        table: table.name,
        column: column.name,
        row,
        reason: format!("{cell:?} does not fit {}", column.kind.sql_type()),
    };
    let series = match column.kind {
        // The deletion marks are set by the load, never carried in Parquet.
        WKind::Timestamp => {
            return Err(FrameError::Value {
                table: table.name,
                column: column.name,
                row: 0,
                reason: "is set by the load, not carried in Parquet".into(),
            });
        }
        WKind::Int | WKind::Serial => {
            let mut values = Vec::with_capacity(cells.len());
            for (row, cell) in cells.iter().enumerate() {
                values.push(match cell {
                    Cell::Int(v) => Some(*v),
                    Cell::Null => None,
                    other => return Err(wrong(row, other)),
                });
            }
            Int32Chunked::from_iter_options(name, values.into_iter()).into_series()
        }
        WKind::Text => {
            let mut values: Vec<Option<&str>> = Vec::with_capacity(cells.len());
            for (row, cell) in cells.iter().enumerate() {
                values.push(match cell {
                    Cell::Text(v) => Some(v.as_str()),
                    Cell::Null => None,
                    other => return Err(wrong(row, other)),
                });
            }
            StringChunked::from_iter_options(name, values.into_iter()).into_series()
        }
        WKind::Bool => {
            let mut values = Vec::with_capacity(cells.len());
            for (row, cell) in cells.iter().enumerate() {
                values.push(match cell {
                    Cell::Bool(v) => Some(*v),
                    Cell::Null => None,
                    other => return Err(wrong(row, other)),
                });
            }
            BooleanChunked::from_iter_options(name, values.into_iter()).into_series()
        }
        WKind::Date => {
            let mut values = Vec::with_capacity(cells.len());
            for (row, cell) in cells.iter().enumerate() {
                values.push(match cell {
                    Cell::Date(v) => Some(days(*v)),
                    Cell::Null => None,
                    other => return Err(wrong(row, other)),
                });
            }
            Int32Chunked::from_iter_options(name, values.into_iter()).into_date().into_series()
        }
        WKind::Time => {
            let mut values = Vec::with_capacity(cells.len());
            for (row, cell) in cells.iter().enumerate() {
                values.push(match cell {
                    Cell::Time(v) => Some(nanos(*v)),
                    Cell::Null => None,
                    other => return Err(wrong(row, other)),
                });
            }
            Int64Chunked::from_iter_options(name, values.into_iter()).into_time().into_series()
        }
        kind @ WKind::Decimal { .. } => {
            let (precision, scale) = decimal_carrier(kind).unwrap_or(FREE_DECIMAL_CARRIER);
            let mut values = Vec::with_capacity(cells.len());
            for (row, cell) in cells.iter().enumerate() {
                values.push(match cell {
                    Cell::Decimal(d) => Some(d.rescale(scale).ok_or_else(|| FrameError::Value {
                        table: table.name,
                        column: column.name,
                        row,
                        reason: format!(
                            "{d} has real digits beyond {scale} decimal places, which its Parquet carrier DECIMAL({precision}, {scale}) cannot hold"
                        ),
                    })?),
                    Cell::Null => None,
                    other => return Err(wrong(row, other)),
                });
            }
            Int128Chunked::from_iter_options(name, values.into_iter())
                .into_decimal(usize::from(precision), usize::from(scale))
                .map_err(|e| FrameError::Value {
                    table: table.name,
                    column: column.name,
                    row: 0,
                    reason: e.to_string(),
                })?
                .into_series()
        }
    };
    Ok(series.into_column())
}

/// Builds the table's rows (cells in `data_columns` order) into Parquet bytes.
pub fn to_parquet(table: &'static WarehouseTable, rows: &[Vec<Cell>]) -> Result<Vec<u8>, FrameError> {
    let mut columns = Vec::new();
    for (i, column) in table.data_columns().enumerate() {
        let cells: Vec<&Cell> = rows.iter().map(|row| row.get(i).unwrap_or(&Cell::Null)).collect();
        if !column.nullable
            && let Some(row) = cells.iter().position(|c| **c == Cell::Null)
        {
            return Err(FrameError::Value {
                table: table.name,
                column: column.name,
                row,
                reason: "is NULL but required".into(),
            });
        }
        columns.push(build_column(table, column, cells)?);
    }
    let mut frame = DataFrame::new(rows.len(), columns)
        .map_err(|e| FrameError::Parquet { table: table.name, reason: e.to_string() })?;
    let mut out = Vec::new();
    ParquetWriter::new(&mut out)
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions::full())
        .finish(&mut frame)
        .map_err(|e| FrameError::Parquet { table: table.name, reason: e.to_string() })?;
    Ok(out)
}

/// Reads a table's Parquet object back into rows of cells (in `data_columns` order), checking
/// that every described column is present with its type.
pub fn from_parquet(table: &'static WarehouseTable, bytes: Vec<u8>) -> Result<Vec<Vec<Cell>>, FrameError> {
    let frame = ParquetReader::new(Cursor::new(bytes))
        .finish()
        .map_err(|e| FrameError::Parquet { table: table.name, reason: e.to_string() })?;
    let height = frame.height();
    let mut rows: Vec<Vec<Cell>> = (0..height).map(|_| Vec::with_capacity(table.columns.len())).collect();
    for column in table.data_columns() {
        let schema = |reason: String| FrameError::Schema { table: table.name, column: column.name, reason };
        let Ok(series) = frame.column(column.name) else {
            if column.since > 1 && column.kind == WKind::Text {
                // A file written before the column existed (e.g. `version_order`): the empty
                // text that the migration gave the rows already loaded then.
                rows.iter_mut().for_each(|row| row.push(Cell::Text(String::new())));
                continue;
            }
            return Err(schema("the column is missing".into()));
        };
        let series = series.as_materialized_series();
        let series = series.rechunk();
        match column.kind {
            WKind::Timestamp => return Err(schema("is set by the load, not carried in Parquet".into())),
            WKind::Int | WKind::Serial => {
                for (row, v) in rows.iter_mut().zip(series.i32().map_err(|e| schema(e.to_string()))?.iter()) {
                    row.push(Cell::opt_int(v));
                }
            }
            WKind::Text => {
                for (row, v) in rows.iter_mut().zip(series.str().map_err(|e| schema(e.to_string()))?.iter()) {
                    row.push(Cell::opt_text(v));
                }
            }
            WKind::Bool => {
                for (row, v) in rows.iter_mut().zip(series.bool().map_err(|e| schema(e.to_string()))?.iter()) {
                    row.push(v.map_or(Cell::Null, Cell::Bool));
                }
            }
            WKind::Date => {
                for (row, v) in rows.iter_mut().zip(series.date().map_err(|e| schema(e.to_string()))?.physical().iter())
                {
                    row.push(v.map_or(Cell::Null, |d| Cell::Date(EPOCH + chrono::Duration::days(i64::from(d)))));
                }
            }
            WKind::Time => {
                for (row, v) in rows.iter_mut().zip(series.time().map_err(|e| schema(e.to_string()))?.physical().iter())
                {
                    row.push(v.map_or(Cell::Null, |ns| {
                        let secs = (ns / 1_000_000_000) as u32;
                        let sub = (ns % 1_000_000_000) as u32;
                        NaiveTime::from_num_seconds_from_midnight_opt(secs, sub).map_or(Cell::Null, Cell::Time)
                    }));
                }
            }
            WKind::Decimal { scale: declared, .. } => {
                let decimals = series.decimal().map_err(|e| schema(e.to_string()))?;
                let scale = decimals.scale() as u8;
                // The carrier's padding zeros are not the value's: read back at the column's scale,
                // or for an unconstrained NUMERIC at the value's own scale, two places at least.
                let min_scale = declared.unwrap_or(2);
                for (row, v) in rows.iter_mut().zip(decimals.physical().iter()) {
                    row.push(
                        v.map_or(Cell::Null, |unscaled| Cell::Decimal(Decimal { unscaled, scale }.trimmed(min_scale))),
                    );
                }
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::FACT_PAYMENT;

    #[test]
    fn rows_survive_a_parquet_round_trip_exactly() {
        let date = NaiveDate::from_ymd_opt(2022, 11, 3).expect("date");
        let time = NaiveTime::from_hms_micro_opt(14, 20, 52, 186_123).expect("time");
        let row = |id: i32, amount: &str, paid: bool| {
            vec![
                Cell::Int(id),
                Cell::Date(date),
                Cell::Time(time),
                Cell::Date(date),
                Cell::Time(time),
                Cell::Int(3),
                Cell::Int(17),
                Cell::Decimal(Decimal::parse(amount).expect("amount")),
                Cell::Int(2),
                Cell::Int(3),
                Cell::Bool(paid),
                Cell::Date(date),
                Cell::Text(format!("20261128T070000000-0001:{id:010}")),
            ]
        };
        let rows = vec![row(1, "56925.44", true), row(2, "0.5", false)];
        let bytes = to_parquet(&FACT_PAYMENT, &rows).expect("write");
        let back = from_parquet(&FACT_PAYMENT, bytes).expect("read");
        assert_eq!(back[0], rows[0]);
        assert_eq!(back[1][7].clone(), Cell::Decimal(Decimal { unscaled: 50, scale: 2 }), "rescaled, exact");
    }

    /// `build_column` writes an unconstrained NUMERIC with one fixed carrier, DECIMAL(38, 18),
    /// whatever scales a run's values have (Athena reads all of a table's files with one schema),
    /// and `from_parquet` gives back each value exactly, trailing zeros beyond two places dropped.
    #[test]
    fn unconstrained_numeric_has_one_parquet_type_in_every_run() {
        let date = NaiveDate::from_ymd_opt(2022, 11, 3).expect("date");
        let time = NaiveTime::from_hms_milli_opt(14, 20, 52, 186).expect("time");
        let row = |amount: &str| {
            let amount = Cell::Decimal(Decimal::parse(amount).expect("amount"));
            let (d, t) = (Cell::Date(date), Cell::Time(time));
            let ints = |v: i32| Cell::Int(v);
            vec![
                ints(1),
                d.clone(),
                t.clone(),
                d.clone(),
                t,
                ints(3),
                ints(17),
                amount,
                ints(2),
                ints(3),
                Cell::Bool(true),
                d,
                Cell::Text("20261128T070000000-0001:0000000000".into()),
            ]
        };
        for amounts in
            [&["56925.44", "0.5"][..], &["1392.9300000000000000", "1.1234567890123", "12345678901234567890.5"]]
        {
            let rows: Vec<Vec<Cell>> = amounts.iter().map(|a| row(a)).collect();
            let bytes = to_parquet(&FACT_PAYMENT, &rows).expect("write");
            let frame = ParquetReader::new(Cursor::new(bytes.clone())).finish().expect("read");
            assert_eq!(
                frame.column("payment_amount").expect("column").dtype(),
                &DataType::Decimal(38, 18),
                "{amounts:?}"
            );
            let back = from_parquet(&FACT_PAYMENT, bytes).expect("read");
            for (row, amount) in back.iter().zip(amounts) {
                let Cell::Decimal(value) = row[7] else { panic!("decimal") };
                let expected = Decimal::parse(amount).expect("amount");
                assert_eq!(value.rescale(20), expected.rescale(20), "{amount}: exact by value");
                assert!(value.scale <= 18, "{value}");
            }
        }
        let back = from_parquet(&FACT_PAYMENT, to_parquet(&FACT_PAYMENT, &[row("1392.9300000000000000")]).expect("w"))
            .expect("read");
        assert_eq!(back[0][7], Cell::Decimal(Decimal { unscaled: 139_293, scale: 2 }), "read back as 1392.93");
    }
}
