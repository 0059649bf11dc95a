//! A source row as one JSON line, written here from the row's binary values. The source only
//! reads and sends columns: building the object in SQL (`json_build_object`, `to_char` for the
//! microseconds) cost ~7× a plain read of the same rows and made the source the extract's
//! bottleneck. Types without a cheap exact form here keep PostgreSQL's own JSON (`to_json`).

use std::error::Error;
use std::io::Write;

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeDelta, Timelike};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Type};

pub(super) const NUMERIC_OID: i64 = 1700;
pub(super) const TIMESTAMP_OID: i64 = 1114;
const BOOL_OID: i64 = 16;
const INT8_OID: i64 = 20;
const INT2_OID: i64 = 21;
const INT4_OID: i64 = 23;
const TEXT_OID: i64 = 25;
const VARCHAR_OID: i64 = 1043;

/// How a column's value travels from the source into its JSON line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    /// `int2`/`int4`/`int8`: a JSON number.
    Integer,
    Bool,
    /// `text`/`varchar`: a JSON string (`char(n)` keeps its padding through `to_json`).
    Text,
    /// `numeric`: its exact text, as a JSON string (never through a float).
    NumericText,
    /// `timestamp`: `YYYY-MM-DDTHH:MM:SS.ffffff` (always six digits), `infinity`, `-infinity`.
    Timestamp,
    /// Anything else: PostgreSQL's `to_json`, embedded as it is.
    PgJson,
}

impl Encoding {
    /// The encoding for a column of this type (a domain's base type).
    pub(super) fn of(base_type: i64) -> Self {
        match base_type {
            INT2_OID | INT4_OID | INT8_OID => Self::Integer,
            BOOL_OID => Self::Bool,
            TEXT_OID | VARCHAR_OID => Self::Text,
            NUMERIC_OID => Self::NumericText,
            TIMESTAMP_OID => Self::Timestamp,
            _ => Self::PgJson,
        }
    }

    /// The select-list expression reading a column (`quoted`) for this encoding. Every one has a
    /// built-in result type, so a domain column decodes like its base type.
    pub(super) fn select_expr(self, quoted: &str) -> String {
        match self {
            Self::Integer => format!("{quoted}::int8"),
            Self::Bool => format!("{quoted}::bool"),
            Self::Text | Self::NumericText => format!("{quoted}::text"),
            Self::Timestamp => format!("{quoted}::timestamp"),
            Self::PgJson => format!("to_json({quoted})::text"),
        }
    }
}

/// One table's columns as JSON keys, with how each value is encoded.
pub(super) struct LineLayout {
    /// `"name":`, escaped once.
    keys: Vec<Vec<u8>>,
    encodings: Vec<Encoding>,
}

impl LineLayout {
    pub(super) fn new<'a>(columns: impl IntoIterator<Item = (&'a str, Encoding)>) -> Self {
        let (keys, encodings) = columns
            .into_iter()
            .map(|(name, encoding)| {
                let mut key = serde_json::to_vec(name).expect("a string serialises");
                key.push(b':');
                (key, encoding)
            })
            .unzip();
        Self { keys, encodings }
    }

    /// Appends the JSON object of `row`'s first columns (one per key, in order) to `line`.
    pub(super) fn write(&self, row: &Row, line: &mut Vec<u8>) -> Result<(), tokio_postgres::Error> {
        line.push(b'{');
        for (i, (key, encoding)) in self.keys.iter().zip(&self.encodings).enumerate() {
            if i > 0 {
                line.push(b',');
            }
            line.extend_from_slice(key);
            match encoding {
                Encoding::Integer => match row.try_get::<_, Option<i64>>(i)? {
                    Some(v) => write!(line, "{v}").expect("writing to a Vec"),
                    None => line.extend_from_slice(b"null"),
                },
                Encoding::Bool => line.extend_from_slice(match row.try_get::<_, Option<bool>>(i)? {
                    Some(true) => b"true",
                    Some(false) => b"false",
                    None => b"null",
                }),
                Encoding::Text | Encoding::NumericText => match row.try_get::<_, Option<&str>>(i)? {
                    Some(text) => serde_json::to_writer(&mut *line, text).expect("writing to a Vec"),
                    None => line.extend_from_slice(b"null"),
                },
                Encoding::Timestamp => match row.try_get::<_, Option<SourceTimestamp>>(i)? {
                    Some(SourceTimestamp(micros)) => write_timestamp(micros, line),
                    None => line.extend_from_slice(b"null"),
                },
                Encoding::PgJson => match row.try_get::<_, Option<&str>>(i)? {
                    Some(json) => line.extend_from_slice(json.as_bytes()),
                    None => line.extend_from_slice(b"null"),
                },
            }
        }
        line.push(b'}');
        Ok(())
    }
}

/// A `timestamp` as sent: microseconds from 2000-01-01 00:00, `i64::MAX`/`MIN` for ±infinity.
struct SourceTimestamp(i64);

impl<'a> FromSql<'a> for SourceTimestamp {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Self(postgres_protocol::types::timestamp_from_sql(raw)?))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMP
    }
}

/// The JSON string of a source timestamp: as `to_char(…, 'YYYY-MM-DD"T"HH24:MI:SS.US')` for
/// years 1–9999; outside them ISO 8601's signed years (`-0043-03-15T…` is 44 BC), where
/// `to_char` would drop the era.
fn write_timestamp(micros: i64, line: &mut Vec<u8>) {
    let epoch = NaiveDate::from_ymd_opt(2000, 1, 1).expect("a date").and_time(chrono::NaiveTime::MIN);
    let at: Option<NaiveDateTime> = epoch.checked_add_signed(TimeDelta::microseconds(micros));
    match (micros, at) {
        (i64::MAX, _) => line.extend_from_slice(b"\"infinity\""),
        (i64::MIN, _) => line.extend_from_slice(b"\"-infinity\""),
        (_, Some(at)) => {
            let year = at.year();
            let sign = if year < 0 {
                "-"
            } else if year > 9999 {
                "+"
            } else {
                ""
            };
            write!(
                line,
                "\"{sign}{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}\"",
                year.unsigned_abs(),
                at.month(),
                at.day(),
                at.hour(),
                at.minute(),
                at.second(),
                at.nanosecond() / 1000
            )
            .expect("writing to a Vec");
        }
        // Past chrono's range (PostgreSQL reaches year 294276): said as it is, for the transform
        // to reject with the row.
        (_, None) => write!(line, "\"{micros} microseconds after 2000-01-01\"").expect("writing to a Vec"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timestamp(micros: i64) -> String {
        let mut line = Vec::new();
        write_timestamp(micros, &mut line);
        String::from_utf8(line).expect("UTF-8")
    }

    #[test]
    fn timestamps_keep_six_digits_and_their_era() {
        // 2022-11-03 14:20:52.186 (the sample's first payment).
        let micros = 720_800_452_186_000;
        assert_eq!(timestamp(micros), "\"2022-11-03T14:20:52.186000\"");
        assert_eq!(timestamp(micros + 1), "\"2022-11-03T14:20:52.186001\"");
        assert_eq!(timestamp(0), "\"2000-01-01T00:00:00.000000\"");
        assert_eq!(timestamp(-1), "\"1999-12-31T23:59:59.999999\"");
        assert_eq!(timestamp(i64::MAX), "\"infinity\"");
        assert_eq!(timestamp(i64::MIN), "\"-infinity\"");
        // 0044-03-15 BC (astronomical year -43) and 10000-01-01.
        let day = 86_400_000_000i64;
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a date");
        let bc = date(-43, 3, 15).signed_duration_since(date(2000, 1, 1));
        assert_eq!(timestamp(bc.num_days() * day), "\"-0043-03-15T00:00:00.000000\"");
        let far = date(10000, 1, 1).signed_duration_since(date(2000, 1, 1));
        assert_eq!(timestamp(far.num_days() * day), "\"+10000-01-01T00:00:00.000000\"");
        assert_eq!(timestamp(i64::MAX - 1), format!("\"{} microseconds after 2000-01-01\"", i64::MAX - 1));
    }

    #[test]
    fn each_type_reads_through_a_built_in_type() {
        assert_eq!(Encoding::of(INT4_OID).select_expr("\"a\""), "\"a\"::int8");
        assert_eq!(Encoding::of(NUMERIC_OID).select_expr("\"a\""), "\"a\"::text");
        assert_eq!(Encoding::of(TIMESTAMP_OID).select_expr("\"a\""), "\"a\"::timestamp");
        // char(n), float8, date, json: PostgreSQL's own JSON.
        for other in [1042, 701, 1082, 114] {
            assert_eq!(Encoding::of(other), Encoding::PgJson);
        }
        let layout = LineLayout::new([("it's \"odd\"", Encoding::Integer)]);
        assert_eq!(layout.keys[0], b"\"it's \\\"odd\\\"\":");
    }
}
