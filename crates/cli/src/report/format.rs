//! Pure text helpers for the report: numbers with thousands separators, short axis numbers and
//! dates (HTML escaping is the page template's, digit grouping num-format's).

use num_format::{Locale, ToFormattedString};

/// A whole number with thousands separators: `11187` → `"11,187"`.
pub fn count(n: i64) -> String {
    n.to_formatted_string(&Locale::en)
}

/// An amount with two decimals and thousands separators: `1234.5` → `"1,234.50"`. Exact to the
/// cent for the warehouse's sums (well below 10^13, within an f64's 15 significant digits).
pub fn money(value: f64) -> String {
    let text = format!("{:.2}", value.abs());
    let (whole, cents) = text.split_once('.').unwrap_or((text.as_str(), "00"));
    let sign = if value < 0.0 && text.bytes().any(|b| b.is_ascii_digit() && b != b'0') { "-" } else { "" };
    let whole = whole.parse::<u64>().map_or_else(|_| whole.to_string(), |w| w.to_formatted_string(&Locale::en));
    format!("{sign}{whole}.{cents}")
}

/// An amount with its currency code: `"EUR 1,234.50"`.
pub fn amount(currency: &str, value: f64) -> String {
    format!("{currency} {}", money(value))
}

/// A short number for chart axes and bar labels: `0`, `950`, `12.5k`, `38.1M`, `1.2B`.
pub fn compact(value: f64) -> String {
    let magnitude = value.abs();
    let (scaled, suffix) = if magnitude >= 1e9 {
        (value / 1e9, "B")
    } else if magnitude >= 1e6 {
        (value / 1e6, "M")
    } else if magnitude >= 1e3 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    let text = if scaled.abs() >= 100.0 || suffix.is_empty() { format!("{scaled:.0}") } else { format!("{scaled:.1}") };
    let text = text.strip_suffix(".0").unwrap_or(&text);
    let text = if text == "-0" { "0" } else { text };
    format!("{text}{suffix}")
}

/// `part` as a whole percentage of `whole` (`"—"` when `whole` is zero).
pub fn percent(part: f64, whole: f64) -> String {
    if whole == 0.0 { "—".to_string() } else { format!("{:.0}%", 100.0 * part / whole) }
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `(2022, 11)` → `"Nov 2022"`.
pub fn month_label(year: i32, month: i32) -> String {
    match usize::try_from(month).ok().and_then(|m| MONTHS.get(m.wrapping_sub(1))) {
        Some(name) => format!("{name} {year}"),
        None => format!("{year}-{month:02}"),
    }
}

/// `"2024-11-15"` (or a timestamp starting so) → `"15 Nov 2024"`; anything else unchanged.
pub fn date_label(iso: &str) -> String {
    let parts: Vec<&str> = iso.get(..10).unwrap_or(iso).split('-').collect();
    if let [year, month, day] = parts.as_slice()
        && let (Ok(year), Ok(month), Ok(day)) = (year.parse::<i32>(), month.parse::<usize>(), day.parse::<u32>())
        && (1..=12).contains(&month)
    {
        return format!("{day} {} {year}", MONTHS[month - 1]);
    }
    iso.to_string()
}

/// Days in a month of the Gregorian calendar.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Whether the month of `iso` (`YYYY-MM-DD…`) is only partly covered when data start (`first`)
/// or end (`!first`) on that day.
pub fn partial_month(iso: &str, first: bool) -> bool {
    let number = |range: std::ops::Range<usize>| iso.get(range).and_then(|s| s.parse::<u32>().ok());
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return false;
    };
    if first { day > 1 } else { day < days_in_month(year as i32, month) }
}
