//! Typed values flowing through the pipeline: exact decimals, and the cells of warehouse rows.

use std::fmt;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// An exact decimal: `unscaled × 10^-scale`. Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    pub unscaled: i128,
    pub scale: u8,
}

impl Decimal {
    /// Parses `-123.4500`-style text (what PostgreSQL prints for NUMERIC).
    pub fn parse(text: &str) -> Option<Decimal> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && fraction.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !fraction.bytes().all(|b| b.is_ascii_digit())
            || whole.len() + fraction.len() > 38
        {
            return None;
        }
        let mut unscaled: i128 = 0;
        for b in whole.bytes().chain(fraction.bytes()) {
            unscaled = unscaled.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        Some(Decimal { unscaled: if negative { -unscaled } else { unscaled }, scale: fraction.len() as u8 })
    }

    /// The same value at a larger (or equal) scale; `None` if digits would be lost.
    pub fn rescale(self, scale: u8) -> Option<i128> {
        if scale < self.scale {
            return None;
        }
        self.unscaled.checked_mul(10i128.checked_pow(u32::from(scale - self.scale))?)
    }

    pub fn is_positive(self) -> bool {
        self.unscaled > 0
    }

    /// Digits before the decimal point (for precision checks).
    pub fn integer_digits(self) -> u32 {
        let whole = self.unscaled.unsigned_abs() / 10u128.pow(u32::from(self.scale));
        if whole == 0 { 0 } else { whole.ilog10() + 1 }
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        format_unscaled(f, self.unscaled, self.scale)
    }
}

/// Writes `unscaled × 10^-scale` exactly, e.g. (12345, 2) → `123.45`.
pub fn format_unscaled(out: &mut impl fmt::Write, unscaled: i128, scale: u8) -> fmt::Result {
    let sign = if unscaled < 0 { "-" } else { "" };
    let digits = unscaled.unsigned_abs().to_string();
    let scale = usize::from(scale);
    if scale == 0 {
        return write!(out, "{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    write!(out, "{sign}{whole}.{fraction}")
}

/// One value of a warehouse row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i32),
    Text(String),
    Decimal(Decimal),
    Date(NaiveDate),
    Time(NaiveTime),
    Bool(bool),
}

impl Cell {
    pub fn text(value: &str) -> Cell {
        Cell::Text(value.to_string())
    }

    pub fn opt_text(value: Option<&str>) -> Cell {
        value.map_or(Cell::Null, Cell::text)
    }

    pub fn opt_int(value: Option<i32>) -> Cell {
        value.map_or(Cell::Null, Cell::Int)
    }
}

/// Source timestamps as the extract writes them (milliseconds; more digits accepted).
pub fn parse_timestamp(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok()
}

/// The source's `YYYY-MM-DD` date strings.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_round_trip_exactly() {
        for text in ["0.00", "56925.44", "-1.5", "2", "0.001", "123456789012345678901234567890.12345678"] {
            assert_eq!(Decimal::parse(text).expect(text).to_string(), text);
        }
        assert_eq!(Decimal::parse("2.5").and_then(|d| d.rescale(2)), Some(250));
        assert_eq!(Decimal::parse("2.555").and_then(|d| d.rescale(2)), None);
        assert_eq!(Decimal::parse("12345.6").map(|d| d.integer_digits()), Some(5));
        for bad in ["", ".", "1e5", "NaN", "1.2.3", "abc", "- 1"] {
            assert_eq!(Decimal::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates_and_times_parse_strictly() {
        assert!(parse_date("2022-11-03").is_some());
        assert!(parse_date("2022-11-3").is_none());
        assert!(parse_date("2022-02-30").is_none());
        let t = parse_timestamp("2022-11-03T14:20:52.186").expect("timestamp");
        assert_eq!(t.and_utc().timestamp_subsec_millis(), 186);
    }
}
