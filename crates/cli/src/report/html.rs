//! The report page: one static HTML file with inline CSS, no scripts and no network assets.

use std::fmt::Write;

use super::figures::Figure;
use super::format::{amount, count, date_label, escape, percent};
use super::{ReportData, charts, humanize};

/// A small HTML table: the first `text_columns` columns are text, the others numbers (right-aligned).
pub struct Table {
    headers: Vec<String>,
    text_columns: usize,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// `headers` are plain text.
    pub fn new(headers: Vec<String>, text_columns: usize) -> Self {
        Self { headers, text_columns, rows: Vec::new() }
    }

    /// `cells` are HTML (escape any text from the database first).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn html(&self) -> String {
        let class = |i: usize| if i < self.text_columns { "" } else { " class=\"num\"" };
        let mut out = String::from("<table>\n<thead><tr>");
        for (i, header) in self.headers.iter().enumerate() {
            let _ = write!(out, "<th{}>{}</th>", class(i), escape(header));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for row in &self.rows {
            out.push_str("<tr>");
            for (i, cell) in row.iter().enumerate() {
                let _ = write!(out, "<td{}>{cell}</td>", class(i));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>");
        out
    }
}

const STYLE: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f5f7; color: #212529;
  font: 15px/1.5 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 980px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 28px; margin: 8px 0 4px; }
h2 { font-size: 21px; margin: 0 0 10px; }
.lead { color: #555d66; margin: 0 0 18px; }
nav { margin: 0 0 18px; font-size: 14px; }
nav a { color: #0b5cad; margin-right: 14px; text-decoration: none; }
nav a:hover { text-decoration: underline; }
section { background: #fff; border: 1px solid #dfe2e6; border-radius: 8px; padding: 18px 20px; margin: 0 0 20px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(210px, 1fr)); gap: 12px; }
.card { border: 1px solid #e3e6ea; border-radius: 6px; padding: 10px 12px; background: #fafbfc; }
.card h3 { font-size: 13px; font-weight: normal; color: #626a72; margin: 0 0 4px; text-transform: uppercase;
  letter-spacing: .04em; }
.card .big { font-size: 22px; font-weight: bold; }
.card ul { list-style: none; margin: 0; padding: 0; }
.card li { font-variant-numeric: tabular-nums; }
.card small, .note { color: #626a72; font-size: 13px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
figure { margin: 0 0 12px; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #e3e6ea; border-radius: 4px; }
figcaption { margin-top: 8px; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; margin: 10px 0 4px; }
th, td { padding: 5px 8px; border-bottom: 1px solid #e6e8eb; text-align: left; vertical-align: top; }
th { background: #f1f3f5; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafbfc; }
pre { background: #1f2428; color: #e6edf3; padding: 12px 14px; border-radius: 6px; overflow-x: auto;
  font-size: 13px; line-height: 1.45; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
footer { color: #626a72; font-size: 13px; text-align: center; }
"#;

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

fn swatch(data: &ReportData, currency: &str) -> String {
    let index = data.currencies.iter().position(|c| c == currency).unwrap_or(0);
    let plotters::style::RGBColor(r, g, b) = charts::PALETTE[index % charts::PALETTE.len()];
    format!("<span class=\"swatch\" style=\"background:#{r:02x}{g:02x}{b:02x}\"></span>")
}

fn card(out: &mut String, title: &str, body: &str) {
    let _ = writeln!(out, "<div class=\"card\"><h3>{}</h3>{body}</div>", escape(title));
}

/// The "at a glance" cards: sales per currency, orders, outstanding payments, last load, data span.
fn at_a_glance(data: &ReportData) -> String {
    let mut out = String::from("<div class=\"cards\">\n");
    let totals = data.totals();

    let mut body = String::from("<ul>");
    for (currency, _, _, value) in &totals {
        let _ = write!(body, "<li>{}{}</li>", swatch(data, currency), escape(&amount(currency, *value)));
    }
    if totals.is_empty() {
        body.push_str("<li>no sales yet</li>");
    }
    body.push_str("</ul>");
    card(&mut out, "Total sales value", &body);

    let orders: i64 = totals.iter().map(|t| t.1).sum();
    let units: i64 = totals.iter().map(|t| t.2).sum();
    let per_currency: Vec<String> = totals.iter().map(|(c, o, _, _)| format!("{} {}", count(*o), escape(c))).collect();
    card(
        &mut out,
        "Sales orders",
        &format!(
            "<div class=\"big\">{}</div><small>{} units sold; {}</small>",
            count(orders),
            count(units),
            per_currency.join(", ")
        ),
    );

    let mut kinds: Vec<&str> = data.payments.iter().map(|p| p.payment_type.as_str()).collect();
    kinds.dedup();
    for kind in kinds {
        let rows: Vec<_> = data.payments.iter().filter(|p| p.payment_type == kind).collect();
        let open: i64 = rows.iter().map(|p| p.outstanding_count).sum();
        let all: i64 = rows.iter().map(|p| p.outstanding_count + p.paid_count).sum();
        let mut body = format!(
            "<div class=\"big\">{}</div><small>of {} ({}) not yet paid</small><ul>",
            count(open),
            count(all),
            percent(open as f64, all as f64)
        );
        for p in rows.iter().filter(|p| p.outstanding_count > 0) {
            let _ = write!(
                body,
                "<li>{}{}</li>",
                swatch(data, &p.currency),
                escape(&amount(&p.currency, p.outstanding_amount))
            );
        }
        body.push_str("</ul>");
        card(&mut out, &format!("Outstanding: {}s", humanize(kind).to_lowercase()), &body);
    }

    if let Some(last) = data.runs.last() {
        let quarantined: i64 = data.runs.iter().map(|r| r.quarantined).sum();
        card(
            &mut out,
            "Last loaded run",
            &format!(
                "<div><code>{}</code></div><div>{} UTC</div><small>{} run{} loaded; {} rows quarantined in all</small>",
                escape(&last.run_id),
                escape(&last.loaded_at),
                count(data.runs.len() as i64),
                if data.runs.len() == 1 { "" } else { "s" },
                count(quarantined)
            ),
        );
    }

    let f = &data.freshness;
    let newest = [&f.sales_updated, &f.payments_updated, &f.purchases_updated].into_iter().flatten().max();
    let span = match (&f.first_order, &f.last_order) {
        (Some(first), Some(last)) => format!("orders created {} to {}", date_label(first), date_label(last)),
        _ => "no orders yet".into(),
    };
    card(
        &mut out,
        "Data up to",
        &format!(
            "<div class=\"big\">{}</div><small>newest change in the facts: {} (source time); {}</small>",
            newest.map_or("—".into(), |t| escape(&date_label(t))),
            newest.map_or("—".into(), |t| escape(t)),
            escape(&span)
        ),
    );
    out.push_str("</div>\n");
    out
}

/// The whole page.
pub fn page(data: &ReportData, figures: &[Figure]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Onyx warehouse report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
    );
    let _ = write!(
        out,
        "<h1>Onyx warehouse report</h1>\n<p class=\"lead\">Sales and payments of the business, from the \
         warehouse's analysis views. Made {}; data loaded up to run <code>{}</code>.</p>\n",
        escape(&data.freshness.generated_at),
        data.runs.last().map_or("—".into(), |r| escape(&r.run_id))
    );
    out.push_str("<nav><a href=\"#glance\">At a glance</a>");
    for figure in figures {
        let _ = write!(out, "<a href=\"#{}\">{}</a>", figure.id, escape(&figure.heading));
    }
    out.push_str("<a href=\"#sql\">Query it yourself</a></nav>\n");

    out.push_str("<section id=\"glance\">\n<h2>At a glance</h2>\n");
    out.push_str(&at_a_glance(data));
    out.push_str(
        "<p class=\"note\">Amounts are in each order's or payment's own currency and are never added across \
         currencies; rankings therefore go by number of orders.</p>\n</section>\n",
    );

    for figure in figures {
        let _ = write!(
            out,
            "<section id=\"{}\">\n<h2>{}</h2>\n<figure>\n<img src=\"{}\" width=\"{}\" height=\"{}\" alt=\"{}\">\n\
             <figcaption>{}</figcaption>\n</figure>\n{}\n</section>\n",
            figure.id,
            escape(&figure.heading),
            escape(&figure.file),
            charts::WIDTH,
            figure.height,
            escape(&figure.alt),
            escape(&figure.caption),
            figure.table
        );
    }

    let _ = write!(
        out,
        "<section id=\"sql\">\n<h2>Query it yourself</h2>\n<p>Every chart comes from a view in the warehouse \
         (<code>sales_by_month</code>, <code>sales_by_country</code>, <code>sales_by_design</code>, \
         <code>sales_by_staff</code>, <code>payments_status</code>) or from the load ledger \
         <code>onyx_load_ledger</code>. Connect with <code>psql</code> (or Power BI, or a notebook) and try:</p>\n\
         <pre><code>{}</code></pre>\n<p class=\"note\">The <code>*_current</code> views \
         (<code>fact_sales_order_current</code>, <code>fact_payment_current</code>, …) hold the latest version of \
         every order and payment; the fact tables keep every version.</p>\n</section>\n",
        escape(EXAMPLE_SQL)
    );
    let _ = write!(
        out,
        "<footer>Written by <code>onyx report</code> on {}. A static page: no scripts, nothing loaded from the \
         network.</footer>\n</main>\n</body>\n</html>\n",
        escape(&data.freshness.generated_at)
    );
    out
}
