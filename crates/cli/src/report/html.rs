//! The report page: one static HTML file with inline CSS, no scripts and no network assets,
//! rendered from `templates/page.html` by minijinja, which escapes every value for HTML.

use minijinja::{Environment, context};
use serde::Serialize;

use super::figures::Figure;
use super::format::{amount, count, date_label, percent};
use super::{ReportData, charts, humanize};

/// A small table under a chart: the first `text_columns` columns are text, the others numbers
/// (right-aligned); the cells of `code_columns` are shown as code (run ids, table names). Plain
/// text throughout: the template escapes it.
#[derive(Serialize)]
pub struct Table {
    headers: Vec<String>,
    text_columns: usize,
    code_columns: Vec<usize>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: Vec<String>, text_columns: usize) -> Self {
        Self { headers, text_columns, code_columns: Vec::new(), rows: Vec::new() }
    }

    /// Shows column `index` as code.
    pub fn code_column(mut self, index: usize) -> Self {
        self.code_columns.push(index);
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
}

/// One "at a glance" card; each part is shown when present, in this order.
#[derive(Serialize, Default)]
struct Card {
    title: String,
    big: Option<String>,
    code: Option<String>,
    text: Option<String>,
    small: Option<String>,
    lines: Vec<Line>,
}

/// A line of a card's list, with its currency's colour.
#[derive(Serialize)]
struct Line {
    swatch: Option<String>,
    text: String,
}

/// The SQL shown in "Query it yourself" (static text).
const EXAMPLE_SQL: &str = "\
-- Sales value per month and currency
SELECT year, month_name, currency_code, orders, sales_value
FROM sales_by_month ORDER BY year, month, currency_code;

-- The 15 countries with the most orders (values stay per currency)
SELECT country, sum(orders) AS orders FROM sales_by_country
GROUP BY country ORDER BY orders DESC LIMIT 15;

-- Money still to be paid or received
SELECT payment_type_name, currency_code, outstanding_count, outstanding_amount
FROM payments_status ORDER BY outstanding_amount DESC;

-- The load history: one row per pipeline run
SELECT run_id, loaded_at, rows, quarantined_rows
FROM onyx_load_ledger ORDER BY loaded_at DESC LIMIT 10;";

/// The colour of a currency in the charts, as CSS.
fn swatch(data: &ReportData, currency: &str) -> Option<String> {
    let index = data.currencies.iter().position(|c| c == currency).unwrap_or(0);
    let plotters::style::RGBColor(r, g, b) = charts::PALETTE[index % charts::PALETTE.len()];
    Some(format!("#{r:02x}{g:02x}{b:02x}"))
}

/// The "at a glance" cards: sales per currency, orders, outstanding payments, last load, data span.
fn at_a_glance(data: &ReportData) -> Vec<Card> {
    let mut cards = Vec::new();
    let totals = data.totals();

    let mut lines: Vec<Line> = totals
        .iter()
        .map(|(currency, _, _, value)| Line { swatch: swatch(data, currency), text: amount(currency, *value) })
        .collect();
    if lines.is_empty() {
        lines.push(Line { swatch: None, text: "no sales yet".into() });
    }
    cards.push(Card { title: "Total sales value".into(), lines, ..Card::default() });

    let orders: i64 = totals.iter().map(|t| t.1).sum();
    let units: i64 = totals.iter().map(|t| t.2).sum();
    let per_currency: Vec<String> = totals.iter().map(|(c, o, _, _)| format!("{} {c}", count(*o))).collect();
    cards.push(Card {
        title: "Sales orders".into(),
        big: Some(count(orders)),
        small: Some(format!("{} units sold; {}", count(units), per_currency.join(", "))),
        ..Card::default()
    });

    let mut kinds: Vec<&str> = data.payments.iter().map(|p| p.payment_type.as_str()).collect();
    kinds.dedup();
    for kind in kinds {
        let rows: Vec<_> = data.payments.iter().filter(|p| p.payment_type == kind).collect();
        let open: i64 = rows.iter().map(|p| p.outstanding_count).sum();
        let all: i64 = rows.iter().map(|p| p.outstanding_count + p.paid_count).sum();
        cards.push(Card {
            title: format!("Outstanding: {}s", humanize(kind).to_lowercase()),
            big: Some(count(open)),
            small: Some(format!("of {} ({}) not yet paid", count(all), percent(open as f64, all as f64))),
            lines: rows
                .iter()
                .filter(|p| p.outstanding_count > 0)
                .map(|p| Line { swatch: swatch(data, &p.currency), text: amount(&p.currency, p.outstanding_amount) })
                .collect(),
            ..Card::default()
        });
    }

    if let Some(last) = data.runs.last() {
        let quarantined: i64 = data.runs.iter().map(|r| r.quarantined).sum();
        cards.push(Card {
            title: "Last loaded run".into(),
            code: Some(last.run_id.clone()),
            text: Some(format!("{} UTC", last.loaded_at)),
            small: Some(format!(
                "{} run{} loaded; {} rows quarantined in all",
                count(data.runs.len() as i64),
                if data.runs.len() == 1 { "" } else { "s" },
                count(quarantined)
            )),
            ..Card::default()
        });
    }

    let f = &data.freshness;
    let newest = [&f.sales_updated, &f.payments_updated, &f.purchases_updated].into_iter().flatten().max();
    let span = match (&f.first_order, &f.last_order) {
        (Some(first), Some(last)) => format!("orders created {} to {}", date_label(first), date_label(last)),
        _ => "no orders yet".into(),
    };
    cards.push(Card {
        title: "Data up to".into(),
        big: Some(newest.map_or("—".into(), |t| date_label(t))),
        small: Some(format!(
            "newest change in the facts: {} (source time); {span}",
            newest.map_or("—", |t| t.as_str())
        )),
        ..Card::default()
    });
    cards
}

/// The whole page.
pub fn page(data: &ReportData, figures: &[Figure]) -> anyhow::Result<String> {
    let mut environment = Environment::new();
    // The name ends in .html: minijinja escapes every value for HTML.
    environment.add_template("page.html", include_str!("templates/page.html"))?;
    let page = environment.get_template("page.html")?.render(context! {
        generated_at => data.freshness.generated_at,
        last_run => data.runs.last().map(|r| r.run_id.clone()),
        cards => at_a_glance(data),
        figures => figures,
        width => charts::WIDTH,
        example_sql => EXAMPLE_SQL,
    })?;
    Ok(page)
}
