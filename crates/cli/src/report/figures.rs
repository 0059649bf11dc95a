//! The report's six sections: for each, a chart (PNG), a one-sentence caption and a small table.

use std::path::Path;

use plotters::style::RGBColor;

use super::charts::{self, BarChart, LineChart, Series};
use super::format::{amount, compact, count, date_label, money, month_label, partial_month, percent};
use super::html::Table;
use super::{ItemSales, Ranked, ReportData, humanize, rank};

/// Charts go in this folder under the report's directory.
pub const CHART_DIR: &str = "charts";

/// One section of the report, all plain text: the page's template escapes it.
#[derive(serde::Serialize)]
pub struct Figure {
    pub id: &'static str,
    pub heading: String,
    /// Path relative to the report's directory, with `/`.
    pub file: String,
    pub height: u32,
    pub alt: String,
    pub caption: String,
    /// The tables under the chart (the figures behind it).
    pub tables: Vec<Table>,
}

const TOP_COUNTRIES: usize = 15;
const TOP_DESIGNS: usize = 10;
const TOP_STAFF: usize = 20;
const TABLE_ROWS: usize = 10;
const CHART_RUNS: usize = 15;

fn currency_color(data: &ReportData, currency: &str) -> RGBColor {
    let index = data.currencies.iter().position(|c| c == currency).unwrap_or(0);
    charts::PALETTE[index % charts::PALETTE.len()]
}

/// `["a", "b", "c"]` → `"a, b and c"`.
fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `"EUR 1.00, GBP 2.00 and USD 3.00"` for an item's values.
fn amounts(values: &std::collections::BTreeMap<String, f64>) -> String {
    join_and(&values.iter().map(|(c, v)| amount(c, *v)).collect::<Vec<_>>())
}

/// Writes every chart under `out_dir` and returns the sections in page order.
pub fn draw_all(data: &ReportData, out_dir: &Path) -> anyhow::Result<Vec<Figure>> {
    let chart = |name: &str| (format!("{CHART_DIR}/{name}.png"), out_dir.join(CHART_DIR).join(format!("{name}.png")));
    Ok(vec![
        sales_by_month(data, chart("sales_by_month"))?,
        sales_by_country(data, chart("sales_by_country"))?,
        top_designs(data, chart("top_designs"))?,
        staff_leaderboard(data, chart("staff_leaderboard"))?,
        payments(data, chart("payments_status"))?,
        freshness(data, chart("data_freshness"))?,
    ])
}

type ChartFile = (String, std::path::PathBuf);

fn sales_by_month(data: &ReportData, (file, path): ChartFile) -> anyhow::Result<Figure> {
    // Every month from the first to the last, so that a month without sales shows as a gap.
    let mut periods: Vec<(i32, i32)> = Vec::new();
    if let (Some(first), Some(last)) = (data.months.first(), data.months.last()) {
        let (mut year, mut month) = (first.year, first.month);
        while (year, month) <= (last.year, last.month) && periods.len() < 1200 {
            periods.push((year, month));
            (year, month) = if month >= 12 { (year + 1, 1) } else { (year, month + 1) };
        }
    }
    let series: Vec<Series> = data
        .currencies
        .iter()
        .filter(|c| data.months.iter().any(|m| &m.currency == *c))
        .map(|currency| Series {
            name: currency.clone(),
            color: currency_color(data, currency),
            values: periods
                .iter()
                .map(|&(y, m)| {
                    data.months.iter().find(|s| s.year == y && s.month == m && &s.currency == currency).map(|s| s.value)
                })
                .collect(),
        })
        .collect();
    let chart = LineChart {
        title: "Sales value by month".into(),
        subtitle: "Units sold × unit price of the orders created each month, one line per currency".into(),
        periods: periods.iter().map(|&(y, m)| month_label(y, m)).collect(),
        series,
        y_axis: "sales value (in the line's currency)".into(),
        partial: {
            let mut partial = Vec::new();
            if data.freshness.first_order.as_deref().is_some_and(|d| partial_month(d, true)) {
                partial.push(0);
            }
            if data.freshness.last_order.as_deref().is_some_and(|d| partial_month(d, false)) {
                partial.push(periods.len().saturating_sub(1));
            }
            partial
        },
    };
    charts::line_chart(&path, &chart)?;

    let best = data.months.iter().max_by(|a, b| a.value.total_cmp(&b.value));
    let caption = match (&data.freshness.first_order, &data.freshness.last_order, best) {
        (Some(first), Some(last), Some(best)) => {
            let partial = match (partial_month(first, true), partial_month(last, false)) {
                (true, true) => " (so the first and last months are partial)",
                (true, false) => " (so the first month is partial)",
                (false, true) => " (so the last month is partial)",
                (false, false) => "",
            };
            format!(
                "Orders were created from {} to {}{partial}; the best month was {} in {}, with {} from {} orders.",
                date_label(first),
                date_label(last),
                month_label(best.year, best.month),
                best.currency,
                amount(&best.currency, best.value),
                count(best.orders)
            )
        }
        _ => "There are no sales orders in the warehouse yet.".into(),
    };

    // The last six months with sales, one column per currency.
    let currencies: Vec<&String> = chart.series.iter().map(|s| &s.name).collect();
    let mut headers = vec!["Month".to_string(), "Orders".to_string()];
    headers.extend(currencies.iter().map(|c| format!("Sales value {c}")));
    let mut table = Table::new(headers, 1);
    let with_sales = periods.iter().rev().filter(|&&(y, m)| data.months.iter().any(|s| s.year == y && s.month == m));
    for &(y, m) in with_sales.take(6) {
        let rows: Vec<_> = data.months.iter().filter(|s| s.year == y && s.month == m).collect();
        let mut cells = vec![month_label(y, m), count(rows.iter().map(|s| s.orders).sum())];
        for currency in &currencies {
            cells.push(rows.iter().find(|s| &&s.currency == currency).map_or("—".into(), |s| money(s.value)));
        }
        table.row(cells);
    }
    Ok(Figure {
        id: "by-month",
        heading: "Sales by month".into(),
        file,
        height: charts::HEIGHT,
        alt: "Line chart of sales value by month, one line per currency".into(),
        caption,
        tables: vec![table],
    })
}

/// Bars of an item ranking, one series per currency.
fn ranked_series(data: &ReportData, ranked: &[Ranked]) -> Vec<Series> {
    data.currencies
        .iter()
        .filter(|c| ranked.iter().any(|r| r.values.contains_key(*c)))
        .map(|currency| Series {
            name: currency.clone(),
            color: currency_color(data, currency),
            values: ranked.iter().map(|r| r.values.get(currency).copied()).collect(),
        })
        .collect()
}

/// A table of the first items of a ranking: rank, name, (detail), orders, units, value per currency.
fn ranked_table(data: &ReportData, ranked: &[Ranked], name: &str, detail: Option<&str>) -> Table {
    let mut headers = vec!["#".to_string(), name.to_string()];
    headers.extend(detail.map(str::to_string));
    headers.extend(["Orders".to_string(), "Units sold".to_string()]);
    let fixed = headers.len() - 2;
    headers.extend(data.currencies.iter().map(|c| format!("Sales value {c}")));
    let mut table = Table::new(headers, fixed);
    for (i, item) in ranked.iter().take(TABLE_ROWS).enumerate() {
        let mut cells = vec![(i + 1).to_string(), item.name.clone()];
        if detail.is_some() {
            cells.push(item.detail.clone());
        }
        cells.push(count(item.orders));
        cells.push(count(item.units));
        for currency in &data.currencies {
            cells.push(item.values.get(currency).map_or("—".into(), |v| money(*v)));
        }
        table.row(cells);
    }
    table
}

fn ranking_figure(
    data: &ReportData,
    (file, path): ChartFile,
    rows: &[ItemSales],
    top: usize,
    label: impl Fn(&Ranked) -> String,
    text: RankingText,
) -> anyhow::Result<Figure> {
    let ranked = rank(rows, top);
    let chart = BarChart {
        title: text.title.clone(),
        subtitle: text.subtitle,
        categories: ranked.iter().map(&label).collect(),
        series: ranked_series(data, &ranked),
        x_axis: "sales value (in the bar's currency)".into(),
        value_labels: None,
    };
    let height = charts::bar_chart(&path, &chart)?;
    let caption = match ranked.first() {
        Some(first) => (text.caption)(first),
        None => "There are no sales orders in the warehouse yet.".into(),
    };
    Ok(Figure {
        id: text.id,
        heading: text.title,
        file,
        height,
        alt: text.alt,
        caption,
        tables: vec![ranked_table(data, &ranked, text.column, text.detail)],
    })
}

struct RankingText {
    id: &'static str,
    title: String,
    subtitle: String,
    alt: String,
    column: &'static str,
    detail: Option<&'static str>,
    caption: Box<dyn Fn(&Ranked) -> String>,
}

fn sales_by_country(data: &ReportData, file: ChartFile) -> anyhow::Result<Figure> {
    let countries = rank(&data.countries, usize::MAX).len();
    let text = RankingText {
        id: "by-country",
        title: format!("Top {TOP_COUNTRIES} delivery countries"),
        subtitle: "Ranked by number of orders (values in different currencies are not added); bars show sales value"
            .into(),
        alt: "Bar chart of sales value per currency for the countries with the most orders".into(),
        column: "Country",
        detail: None,
        caption: Box::new(move |first| {
            format!(
                "Of {countries} delivery countries, {} received the most orders ({}), worth {}.",
                first.name,
                count(first.orders),
                amounts(&first.values)
            )
        }),
    };
    ranking_figure(data, file, &data.countries, TOP_COUNTRIES, |r| r.name.clone(), text)
}

fn top_designs(data: &ReportData, file: ChartFile) -> anyhow::Result<Figure> {
    let designs = rank(&data.designs, usize::MAX).len();
    let text = RankingText {
        id: "by-design",
        title: format!("Top {TOP_DESIGNS} designs"),
        subtitle: "Ranked by number of orders; several designs share a name, so each shows its design id".into(),
        alt: "Bar chart of sales value per currency for the designs with the most orders".into(),
        column: "Design",
        detail: Some("Design id"),
        caption: Box::new(move |first| {
            format!(
                "Of {designs} designs sold, {} (design {}) was ordered most often ({} orders), worth {}.",
                first.name,
                first.key,
                count(first.orders),
                amounts(&first.values)
            )
        }),
    };
    ranking_figure(data, file, &data.designs, TOP_DESIGNS, |r| format!("{} (#{})", r.name, r.key), text)
}

fn staff_leaderboard(data: &ReportData, file: ChartFile) -> anyhow::Result<Figure> {
    let text = RankingText {
        id: "by-staff",
        title: "Sales staff leaderboard".into(),
        subtitle: "Every member of staff with sales, ranked by number of orders; bars show sales value".into(),
        alt: "Bar chart of sales value per currency for each member of the sales staff".into(),
        column: "Name",
        detail: Some("Department, location"),
        caption: Box::new(|first| {
            format!(
                "{} ({}) took the most orders ({}), worth {}.",
                first.name,
                first.detail,
                count(first.orders),
                amounts(&first.values)
            )
        }),
    };
    ranking_figure(data, file, &data.staff, TOP_STAFF, |r| r.name.clone(), text)
}

fn payments(data: &ReportData, (file, path): ChartFile) -> anyhow::Result<Figure> {
    let label = |p: &super::PaymentStatus| format!("{} · {}", humanize(&p.payment_type), p.currency);
    let chart = BarChart {
        title: "Payments: paid and outstanding".into(),
        subtitle: "Latest version of every payment, by payment type and currency".into(),
        categories: data.payments.iter().map(label).collect(),
        series: vec![
            Series {
                name: "paid".into(),
                color: charts::GOOD,
                values: data.payments.iter().map(|p| Some(p.paid_amount)).collect(),
            },
            Series {
                name: "outstanding".into(),
                color: charts::BAD,
                values: data.payments.iter().map(|p| Some(p.outstanding_amount)).collect(),
            },
        ],
        x_axis: "amount (in the row's currency)".into(),
        value_labels: Some(compact),
    };
    let height = charts::bar_chart(&path, &chart)?;

    let mut kinds: Vec<&str> = data.payments.iter().map(|p| p.payment_type.as_str()).collect();
    kinds.dedup();
    let sentences: Vec<String> = kinds
        .iter()
        .map(|kind| {
            let rows: Vec<_> = data.payments.iter().filter(|p| &p.payment_type == kind).collect();
            let open: i64 = rows.iter().map(|p| p.outstanding_count).sum();
            let all: i64 = rows.iter().map(|p| p.outstanding_count + p.paid_count).sum();
            format!(
                "{} of {} {}s ({}) are outstanding",
                count(open),
                count(all),
                humanize(kind).to_lowercase(),
                percent(open as f64, all as f64)
            )
        })
        .collect();
    let caption = if sentences.is_empty() {
        "There are no payments in the warehouse yet.".into()
    } else {
        format!("{}.", join_and(&sentences))
    };

    let headers = ["Payment type", "Currency", "Paid", "Paid amount", "Outstanding", "Outstanding amount"];
    let mut table = Table::new(headers.iter().map(|h| h.to_string()).collect(), 2);
    for p in &data.payments {
        table.row(vec![
            humanize(&p.payment_type),
            p.currency.clone(),
            count(p.paid_count),
            money(p.paid_amount),
            count(p.outstanding_count),
            money(p.outstanding_amount),
        ]);
    }
    Ok(Figure {
        id: "payments",
        heading: "Payments".into(),
        file,
        height,
        alt: "Bar chart of paid and outstanding payment amounts by payment type and currency".into(),
        caption,
        tables: vec![table],
    })
}

fn freshness(data: &ReportData, (file, path): ChartFile) -> anyhow::Result<Figure> {
    let recent: Vec<_> = data.runs.iter().rev().take(CHART_RUNS).collect();
    let newest = [&data.freshness.sales_updated, &data.freshness.payments_updated, &data.freshness.purchases_updated]
        .into_iter()
        .flatten()
        .max();
    let chart = BarChart {
        title: "Data freshness: rows per load".into(),
        subtitle: format!(
            "Rows loaded and quarantined per pipeline run, newest first ({} of {} run{}); newest change: {}",
            recent.len(),
            data.runs.len(),
            if data.runs.len() == 1 { "" } else { "s" },
            newest.map_or("none yet".into(), |t| date_label(t))
        ),
        categories: recent.iter().map(|r| format!("{} UTC", r.loaded_at)).collect(),
        series: vec![
            Series {
                name: "rows loaded".into(),
                color: charts::NEUTRAL,
                values: recent.iter().map(|r| Some(r.rows as f64)).collect(),
            },
            Series {
                name: "rows quarantined".into(),
                color: charts::BAD,
                values: recent.iter().map(|r| Some(r.quarantined as f64)).collect(),
            },
        ],
        x_axis: "rows".into(),
        value_labels: Some(|v| count(v.round() as i64)),
    };
    let height = charts::bar_chart(&path, &chart)?;

    let quarantined: i64 = data.runs.iter().map(|r| r.quarantined).sum();
    let caption = match data.runs.last() {
        Some(last) => format!(
            "The last load was run {} at {} UTC ({} rows, {} quarantined); {} run{} loaded in all with {} rows \
             quarantined{}.",
            last.run_id,
            last.loaded_at,
            count(last.rows),
            count(last.quarantined),
            count(data.runs.len() as i64),
            if data.runs.len() == 1 { "" } else { "s" },
            count(quarantined),
            newest.map_or(String::new(), |t| format!(", and the newest change in the facts is from {t} (source time)"))
        ),
        None => "No run has been loaded yet.".into(),
    };

    let mut table = Table::new(
        ["Run", "Loaded at (UTC)", "Rows loaded", "Rows quarantined"].iter().map(|h| h.to_string()).collect(),
        2,
    )
    .code_column(0);
    for run in data.runs.iter().rev().take(TABLE_ROWS) {
        table.row(vec![run.run_id.clone(), run.loaded_at.clone(), count(run.rows), count(run.quarantined)]);
    }
    let mut facts = Table::new(vec!["Fact table".into(), "Newest last_updated (source time)".into()], 2).code_column(0);
    for (table_name, at) in [
        ("fact_sales_order", &data.freshness.sales_updated),
        ("fact_payment", &data.freshness.payments_updated),
        ("fact_purchase_order", &data.freshness.purchases_updated),
    ] {
        facts.row(vec![table_name.to_string(), at.clone().unwrap_or_else(|| "—".into())]);
    }
    Ok(Figure {
        id: "freshness",
        heading: "Data freshness".into(),
        file,
        height,
        alt: "Bar chart of rows loaded and rows quarantined for the latest pipeline runs".into(),
        caption,
        tables: vec![table, facts],
    })
}
