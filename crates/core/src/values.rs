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
        // Trailing zeros are not digits of the value: drop them only when needed to fit 38 digits.
        let fraction = if whole.len() + fraction.len() > 38 { fraction.trim_end_matches('0') } else { fraction };
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

    /// The unscaled value at `scale`, by value: trailing zeros are not precision (`3.000` at scale 2
    /// is `300`); `None` if a real digit would be lost or the result overflows.
    pub fn rescale(self, scale: u8) -> Option<i128> {
        let value = self.trimmed(scale);
        if scale < value.scale {
            return None;
        }
        value.unscaled.checked_mul(10i128.checked_pow(u32::from(scale - value.scale))?)
    }

    /// The same value with trailing fractional zeros dropped, down to `min_scale` places at least
    /// (`1392.9300000000000000` → `1392.93` with `min_scale` 2).
    pub fn trimmed(self, min_scale: u8) -> Decimal {
        let mut value = self;
        while value.scale > min_scale && value.unscaled % 10 == 0 {
            value.unscaled /= 10;
            value.scale -= 1;
        }
        value
    }

    /// Decimal places holding a real (non-trailing-zero) digit.
    pub fn real_scale(self) -> u8 {
        self.trimmed(0).scale
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

/// Source timestamps as the extract writes them (microseconds; fewer digits accepted).
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

    /// Trailing zeros are not precision: `rescale` compares by value, so a scale-20 text of a
    /// two-place amount and a `3.000` both fit smaller scales, while a real third digit does not.
    #[test]
    fn rescale_is_by_value_not_by_the_digits_written() {
        let d = |text: &str| Decimal::parse(text).expect(text);
        assert_eq!(d("1392.9300000000000000").rescale(2), Some(139_293));
        assert_eq!(d("1392.9300000000000000").rescale(18), Some(1_392_930_000_000_000_000_000));
        assert_eq!(d("3.000").rescale(2), Some(300));
        assert_eq!(d("3.000").rescale(0), Some(3));
        assert_eq!(d("2.505").rescale(2), None, "a real digit beyond the scale");
        assert_eq!(d("0.0000000000000000001").rescale(18), None);
        assert_eq!(d("1392.9300000000000000").trimmed(2).to_string(), "1392.93");
        assert_eq!(d("100.500").trimmed(2).to_string(), "100.50");
        assert_eq!(d("1.1234567890123000000").real_scale(), 13);
        let long = "1234567890123456789012.5000000000000000000";
        assert_eq!(Decimal::parse(long).map(|v| v.to_string()), Some("1234567890123456789012.5".into()));
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
