//! Source rows as the transform reads them: JSON objects checked against the table descriptions
//! (every column present, typed, NULL only where allowed).

use chrono::NaiveDateTime;
use serde_json::{Map, Value};

use crate::tables::{Kind, SourceTable};
use crate::values::{Decimal, parse_timestamp};

/// A typed source value.
#[derive(Debug, Clone, PartialEq)]
pub enum SrcValue {
    Null,
    Int(i32),
    Text(String),
    Numeric(Decimal),
    Timestamp(NaiveDateTime),
    Bool(bool),
}

/// Why a row cannot proceed: the column at fault (if one) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub column: Option<String>,
    pub reason: String,
    /// The row's content is valid and only a reference it names is not known yet: a fact
    /// rejected for this alone is held and released by a later run (see `state::Held`).
    pub unknown_reference: bool,
}

impl Rejection {
    pub fn column(column: &str, reason: impl Into<String>) -> Rejection {
        Rejection { column: Some(column.to_string()), reason: reason.into(), unknown_reference: false }
    }
    pub fn row(reason: impl Into<String>) -> Rejection {
        Rejection { column: None, reason: reason.into(), unknown_reference: false }
    }
    /// `column` names a row of `table` that neither this run nor an earlier one has.
    pub fn unknown_reference(column: &str, table: &str, id: i32) -> Rejection {
        Rejection {
            column: Some(column.to_string()),
            reason: format!("unknown reference: {table} {id} is in neither this run nor an earlier one"),
            unknown_reference: true,
        }
    }
}

/// A validated row of a source table.
#[derive(Debug, Clone)]
pub struct SourceRow {
    pub table: &'static SourceTable,
    values: Vec<SrcValue>,
}

impl SourceRow {
    /// Checks a JSON object against the table's description.
    pub fn parse(table: &'static SourceTable, raw: &Map<String, Value>) -> Result<SourceRow, Rejection> {
        let mut values = Vec::with_capacity(table.columns.len());
        for column in table.columns {
            let value =
                raw.get(column.name).ok_or_else(|| Rejection::column(column.name, "required column is missing"))?;
            let typed = match (column.kind, value) {
                (_, Value::Null) if column.nullable => SrcValue::Null,
                (_, Value::Null) => return Err(Rejection::column(column.name, "is null but required")),
                (Kind::Int, Value::Number(n)) => n
                    .as_i64()
                    .and_then(|v| i32::try_from(v).ok())
                    .map(SrcValue::Int)
                    .ok_or_else(|| Rejection::column(column.name, format!("{n} is not a 32-bit integer")))?,
                (Kind::Text, Value::String(s)) => SrcValue::Text(s.clone()),
                (Kind::Numeric, Value::String(s)) => Decimal::parse(s)
                    .map(SrcValue::Numeric)
                    .ok_or_else(|| Rejection::column(column.name, format!("{s:?} is not an exact decimal")))?,
                (Kind::Timestamp, Value::String(s)) => parse_timestamp(s)
                    .map(SrcValue::Timestamp)
                    .ok_or_else(|| Rejection::column(column.name, format!("{s:?} is not a timestamp")))?,
                (Kind::Bool, Value::Bool(b)) => SrcValue::Bool(*b),
                (kind, other) => {
                    return Err(Rejection::column(
                        column.name,
                        format!("{other} is not of type {}", kind.pg_data_type()),
                    ));
                }
            };
            values.push(typed);
        }
        Ok(SourceRow { table, values })
    }

    fn value(&self, column: &str) -> Result<&SrcValue, Rejection> {
        self.table
            .columns
            .iter()
            .position(|c| c.name == column)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| Rejection::column(column, format!("is not a column of {}", self.table.name)))
    }

    /// The row's primary key.
    pub fn key(&self) -> Result<i32, Rejection> {
        self.int(self.table.key)
    }

    pub fn int(&self, column: &str) -> Result<i32, Rejection> {
        match self.value(column)? {
            SrcValue::Int(v) => Ok(*v),
            _ => Err(Rejection::column(column, "is not an integer")),
        }
    }

    pub fn opt_int(&self, column: &str) -> Result<Option<i32>, Rejection> {
        match self.value(column)? {
            SrcValue::Null => Ok(None),
            _ => self.int(column).map(Some),
        }
    }

    pub fn text(&self, column: &str) -> Result<&str, Rejection> {
        match self.value(column)? {
            SrcValue::Text(v) => Ok(v),
            _ => Err(Rejection::column(column, "is not text")),
        }
    }

    pub fn opt_text(&self, column: &str) -> Result<Option<&str>, Rejection> {
        match self.value(column)? {
            SrcValue::Null => Ok(None),
            _ => self.text(column).map(Some),
        }
    }

    pub fn decimal(&self, column: &str) -> Result<Decimal, Rejection> {
        match self.value(column)? {
            SrcValue::Numeric(v) => Ok(*v),
            _ => Err(Rejection::column(column, "is not a decimal")),
        }
    }

    pub fn timestamp(&self, column: &str) -> Result<NaiveDateTime, Rejection> {
        match self.value(column)? {
            SrcValue::Timestamp(v) => Ok(*v),
            _ => Err(Rejection::column(column, "is not a timestamp")),
        }
    }

    pub fn bool(&self, column: &str) -> Result<bool, Rejection> {
        match self.value(column)? {
            SrcValue::Bool(v) => Ok(*v),
            _ => Err(Rejection::column(column, "is not a boolean")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::CURRENCY;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn rows_are_checked_column_by_column() {
        let good = obj(json!({"currency_id": 1, "currency_code": "GBP",
            "created_at": "2022-11-03T14:20:49.962", "last_updated": "2022-11-03T14:20:49.962"}));
        let row = SourceRow::parse(&CURRENCY, &good).expect("valid");
        assert_eq!(row.key(), Ok(1));
        assert_eq!(row.text("currency_code"), Ok("GBP"));

        let mut missing = good.clone();
        missing.remove("currency_code");
        assert_eq!(
            SourceRow::parse(&CURRENCY, &missing).err().and_then(|r| r.column).as_deref(),
            Some("currency_code")
        );
        let mut wrong = good.clone();
        wrong.insert("currency_id".into(), json!("one"));
        let rejection = SourceRow::parse(&CURRENCY, &wrong).expect_err("string id");
        assert!(rejection.reason.contains("integer"), "{rejection:?}");
        let mut null = good;
        null.insert("created_at".into(), Value::Null);
        assert!(SourceRow::parse(&CURRENCY, &null).is_err());
    }
}
