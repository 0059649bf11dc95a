//! `onyx report`: a static HTML report with PNG charts drawn from the warehouse views.
//!
//! Reads the analysis views (`sales_by_month`, `sales_by_country`, `sales_by_design`,
//! `sales_by_staff`, `payments_status`), the facts' latest change and the load ledger with static
//! SQL, draws six charts into `DIR/charts/` and writes `DIR/index.html` (inline CSS, no scripts,
//! nothing fetched from the network). Amounts are always shown per currency: they are never added
//! across currencies, so rankings go by number of orders.

mod canvas;
mod charts;
mod figures;
mod format;
mod html;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use onyx_core::db::error_text;
use onyx_core::tokio_postgres::types::FromSql;
use onyx_core::tokio_postgres::{Client, Row};

/// What the report wrote.
#[derive(Debug)]
pub struct ReportSummary {
    pub index: std::path::PathBuf,
    pub charts: Vec<std::path::PathBuf>,
}

/// Sales of one month in one currency (`sales_by_month`).
struct MonthSales {
    year: i32,
    month: i32,
    currency: String,
    orders: i64,
    units: i64,
    value: f64,
}

/// One row of `sales_by_country`, `sales_by_design` or `sales_by_staff`: an item's sales in one
/// currency. `key` identifies the item (country name, design id, staff id).
struct ItemSales {
    key: String,
    name: String,
    detail: String,
    currency: String,
    orders: i64,
    units: i64,
    value: f64,
}

/// An item's sales over all currencies: orders and units add up, values stay per currency.
#[derive(Debug, Clone, PartialEq)]
struct Ranked {
    key: String,
    name: String,
    detail: String,
    orders: i64,
    units: i64,
    values: BTreeMap<String, f64>,
}

/// One row of `payments_status`.
struct PaymentStatus {
    payment_type: String,
    currency: String,
    paid_count: i64,
    paid_amount: f64,
    outstanding_count: i64,
    outstanding_amount: f64,
}

/// One row of the load ledger.
struct LoadedRun {
    run_id: String,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    loaded_at: String,
    rows: i64,
    quarantined: i64,
}

/// How current the warehouse is.
struct Freshness {
    /// When the report was made, `YYYY-MM-DD HH:MM UTC`.
    generated_at: String,
    /// First and last day an order (current version) was created, `YYYY-MM-DD`.
    first_order: Option<String>,
    last_order: Option<String>,
    /// The newest `last_updated` (source time) in each fact table, `YYYY-MM-DD HH:MM:SS`.
    sales_updated: Option<String>,
    payments_updated: Option<String>,
    purchases_updated: Option<String>,
}

/// Everything the report shows, read from the warehouse.
struct ReportData {
    months: Vec<MonthSales>,
    countries: Vec<ItemSales>,
    designs: Vec<ItemSales>,
    staff: Vec<ItemSales>,
    payments: Vec<PaymentStatus>,
    /// Oldest first.
    runs: Vec<LoadedRun>,
    freshness: Freshness,
    /// Every currency with sales or payments, sorted; a currency's colour is its place here.
    currencies: Vec<String>,
}

const MONTHS_SQL: &str = "SELECT year::int4, month::int4, currency_code::text, orders::int8, \
     coalesce(units_sold, 0)::int8, coalesce(sales_value, 0)::float8 \
     FROM sales_by_month ORDER BY year, month, currency_code";

const COUNTRIES_SQL: &str = "SELECT coalesce(country, '(unknown)'), coalesce(country, '(unknown)'), '', \
     currency_code::text, orders::int8, coalesce(units_sold, 0)::int8, coalesce(sales_value, 0)::float8 \
     FROM sales_by_country";

const DESIGNS_SQL: &str = "SELECT design_id::text, coalesce(design_name, '(unnamed)'), design_id::text, \
     currency_code::text, orders::int8, coalesce(units_sold, 0)::int8, coalesce(sales_value, 0)::float8 \
     FROM sales_by_design";

const STAFF_SQL: &str = "SELECT staff_id::text, concat_ws(' ', first_name, last_name), \
     concat_ws(', ', department_name, location), \
     currency_code::text, orders::int8, coalesce(units_sold, 0)::int8, coalesce(sales_value, 0)::float8 \
     FROM sales_by_staff";

const PAYMENTS_SQL: &str = "SELECT payment_type_name::text, currency_code::text, paid_count::int8, \
     paid_amount::float8, outstanding_count::int8, outstanding_amount::float8 \
     FROM payments_status ORDER BY payment_type_name DESC, currency_code";

/// Rows per run: the sum of the numbers in the ledger's `rows` object (table → rows loaded).
const LEDGER_SQL: &str = "SELECT run_id, to_char(loaded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), \
     (SELECT coalesce(sum((r.value #>> '{}')::numeric), 0) \
        FROM jsonb_each(CASE WHEN jsonb_typeof(rows) = 'object' THEN rows ELSE '{}'::jsonb END) AS r \
        WHERE jsonb_typeof(r.value) = 'number')::int8, \
     coalesce(quarantined_rows, 0)::int8 \
     FROM onyx_load_ledger ORDER BY loaded_at, run_id";

const FRESHNESS_SQL: &str = "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI \"UTC\"'), \
     (SELECT to_char(min(created_date), 'YYYY-MM-DD') FROM fact_sales_order_current), \
     (SELECT to_char(max(created_date), 'YYYY-MM-DD') FROM fact_sales_order_current), \
     (SELECT to_char(max(last_updated_date + last_updated_time), 'YYYY-MM-DD HH24:MI:SS') FROM fact_sales_order), \
     (SELECT to_char(max(last_updated_date + last_updated_time), 'YYYY-MM-DD HH24:MI:SS') FROM fact_payment), \
     (SELECT to_char(max(last_updated_date + last_updated_time), 'YYYY-MM-DD HH24:MI:SS') FROM fact_purchase_order)";

async fn query(client: &Client, what: &str, sql: &str) -> anyhow::Result<Vec<Row>> {
    client
        .query(sql, &[])
        .await
        .map_err(|e| anyhow::anyhow!("could not read {what} from the warehouse: {}", error_text(&e)))
}

fn column<'a, T: FromSql<'a>>(row: &'a Row, index: usize, what: &str) -> anyhow::Result<T> {
    row.try_get(index).map_err(|e| anyhow::anyhow!("unexpected value in {what} (column {}): {e}", index + 1))
}

fn item_sales(rows: &[Row], what: &str) -> anyhow::Result<Vec<ItemSales>> {
    rows.iter()
        .map(|row| {
            Ok(ItemSales {
                key: column(row, 0, what)?,
                name: column(row, 1, what)?,
                detail: column(row, 2, what)?,
                currency: column(row, 3, what)?,
                orders: column(row, 4, what)?,
                units: column(row, 5, what)?,
                value: column(row, 6, what)?,
            })
        })
        .collect()
}

impl ReportData {
    async fn read(client: &Client) -> anyhow::Result<Self> {
        let ledger = query(client, "the load ledger (onyx_load_ledger)", LEDGER_SQL).await?;
        if ledger.is_empty() {
            anyhow::bail!("the warehouse has no loaded runs yet: run `onyx run` (or `onyx load`) first");
        }
        let what = "onyx_load_ledger";
        let runs = ledger
            .iter()
            .map(|row| {
                Ok(LoadedRun {
                    run_id: column(row, 0, what)?,
                    loaded_at: column(row, 1, what)?,
                    rows: column(row, 2, what)?,
                    quarantined: column(row, 3, what)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;

        let what = "sales_by_month";
        let months = query(client, "the view sales_by_month", MONTHS_SQL)
            .await?
            .iter()
            .map(|row| {
                Ok(MonthSales {
                    year: column(row, 0, what)?,
                    month: column(row, 1, what)?,
                    currency: column(row, 2, what)?,
                    orders: column(row, 3, what)?,
                    units: column(row, 4, what)?,
                    value: column(row, 5, what)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let countries =
            item_sales(&query(client, "the view sales_by_country", COUNTRIES_SQL).await?, "sales_by_country")?;
        let designs = item_sales(&query(client, "the view sales_by_design", DESIGNS_SQL).await?, "sales_by_design")?;
        let staff = item_sales(&query(client, "the view sales_by_staff", STAFF_SQL).await?, "sales_by_staff")?;

        let what = "payments_status";
        let payments = query(client, "the view payments_status", PAYMENTS_SQL)
            .await?
            .iter()
            .map(|row| {
                Ok(PaymentStatus {
                    payment_type: column(row, 0, what)?,
                    currency: column(row, 1, what)?,
                    paid_count: column(row, 2, what)?,
                    paid_amount: column(row, 3, what)?,
                    outstanding_count: column(row, 4, what)?,
                    outstanding_amount: column(row, 5, what)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;

        let what = "the fact tables";
        let rows = query(client, "the fact tables' dates", FRESHNESS_SQL).await?;
        let row = rows.first().context("the warehouse returned no row for the fact tables' dates")?;
        let freshness = Freshness {
            generated_at: column(row, 0, what)?,
            first_order: column(row, 1, what)?,
            last_order: column(row, 2, what)?,
            sales_updated: column(row, 3, what)?,
            payments_updated: column(row, 4, what)?,
            purchases_updated: column(row, 5, what)?,
        };

        let mut currencies: Vec<String> =
            months.iter().map(|m| m.currency.clone()).chain(payments.iter().map(|p| p.currency.clone())).collect();
        currencies.sort();
        currencies.dedup();
        Ok(Self { months, countries, designs, staff, payments, runs, freshness, currencies })
    }

    /// Orders, units and sales value per currency (from `sales_by_month`, which covers every order).
    fn totals(&self) -> Vec<(String, i64, i64, f64)> {
        let mut totals: BTreeMap<&str, (i64, i64, f64)> = BTreeMap::new();
        for m in &self.months {
            let t = totals.entry(&m.currency).or_default();
            t.0 += m.orders;
            t.1 += m.units;
            t.2 += m.value;
        }
        totals.into_iter().map(|(c, (o, u, v))| (c.to_string(), o, u, v)).collect()
    }
}

/// Adds up each item's rows over currencies and sorts the items by orders (then units, then
/// name), most first; keeps the first `top`.
fn rank(rows: &[ItemSales], top: usize) -> Vec<Ranked> {
    let mut items: BTreeMap<&str, Ranked> = BTreeMap::new();
    for row in rows {
        let item = items.entry(&row.key).or_insert_with(|| Ranked {
            key: row.key.clone(),
            name: row.name.clone(),
            detail: row.detail.clone(),
            orders: 0,
            units: 0,
            values: BTreeMap::new(),
        });
        item.orders += row.orders;
        item.units += row.units;
        *item.values.entry(row.currency.clone()).or_default() += row.value;
    }
    let mut ranked: Vec<Ranked> = items.into_values().collect();
    ranked.sort_by(|a, b| b.orders.cmp(&a.orders).then(b.units.cmp(&a.units)).then_with(|| a.name.cmp(&b.name)));
    ranked.truncate(top);
    ranked
}

/// `"SALES_RECEIPT"` → `"Sales receipt"`.
fn humanize(code: &str) -> String {
    let lower = code.replace('_', " ").to_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Writes `out_dir/index.html` and its charts from the warehouse's views.
pub async fn write_report(client: &onyx_core::tokio_postgres::Client, out_dir: &Path) -> anyhow::Result<ReportSummary> {
    let data = ReportData::read(client).await?;
    let chart_dir = out_dir.join(figures::CHART_DIR);
    std::fs::create_dir_all(&chart_dir)
        .with_context(|| format!("could not create the report directory {}", chart_dir.display()))?;
    let figures = figures::draw_all(&data, out_dir)?;
    let index = out_dir.join("index.html");
    std::fs::write(&index, html::page(&data, &figures)?)
        .with_context(|| format!("could not write {}", index.display()))?;
    let charts: Vec<PathBuf> = figures.iter().map(|f| out_dir.join(&f.file)).collect();
    Ok(ReportSummary { index, charts })
}

#[cfg(test)]
mod tests {
    use super::format::*;
    use super::*;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(11187), "11,187");
        assert_eq!(count(-1234567), "-1,234,567");
        assert_eq!(money(567792732.95), "567,792,732.95");
        assert_eq!(money(1000.0), "1,000.00");
        assert_eq!(money(0.004), "0.00");
        assert_eq!(money(-0.004), "0.00");
        assert_eq!(money(-1234.5), "-1,234.50");
        assert_eq!(amount("EUR", 3548629.31), "EUR 3,548,629.31");
        assert_eq!(percent(1.0, 3.0), "33%");
        assert_eq!(percent(1.0, 0.0), "—");
    }

    #[test]
    fn axis_numbers_are_short() {
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(950.0), "950");
        assert_eq!(compact(2500.0), "2.5k");
        assert_eq!(compact(5_000_000.0), "5M");
        assert_eq!(compact(38_090_343.75), "38.1M");
        assert_eq!(compact(250_000_000.0), "250M");
        assert_eq!(compact(1_200_000_000.0), "1.2B");
    }

    #[test]
    fn dates_and_months_read_naturally() {
        assert_eq!(month_label(2022, 11), "Nov 2022");
        assert_eq!(month_label(2023, 13), "2023-13");
        assert_eq!(date_label("2024-11-15"), "15 Nov 2024");
        assert_eq!(date_label("2024-11-15 14:20:09"), "15 Nov 2024");
        assert_eq!(date_label("soon"), "soon");
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(1900, 2), 28);
        assert!(partial_month("2024-11-15", false));
        assert!(!partial_month("2024-11-30", false));
        assert!(partial_month("2022-11-03", true));
        assert!(!partial_month("2022-11-01", true));
        assert_eq!(humanize("SALES_RECEIPT"), "Sales receipt");
    }

    /// Mechanism: the page template (minijinja, `.html`: every value escaped). Text from the
    /// database reaches the page as text wherever it appears: a table cell, a caption, a card.
    #[test]
    fn database_text_is_escaped_by_the_template() {
        let data = ReportData {
            months: vec![],
            countries: vec![],
            designs: vec![],
            staff: vec![],
            payments: vec![],
            runs: vec![LoadedRun {
                run_id: "<b>run</b>".into(),
                loaded_at: "2026-12-03 10:00:00".into(),
                rows: 1,
                quarantined: 0,
            }],
            freshness: Freshness {
                generated_at: "2026-12-03 10:00 UTC".into(),
                first_order: None,
                last_order: None,
                sales_updated: None,
                payments_updated: None,
                purchases_updated: None,
            },
            currencies: vec![],
        };
        let mut table = html::Table::new(vec!["Country".into(), "Orders".into()], 1);
        table.row(vec!["Svalbard & Jan Mayen <Islands>".into(), "1".into()]);
        let figure = figures::Figure {
            id: "t",
            heading: r#"O'Brien "Bob""#.into(),
            file: "charts/t.png".into(),
            height: 10,
            alt: "a chart".into(),
            caption: "<script>alert(1)</script>".into(),
            tables: vec![table],
        };
        let page = html::page(&data, &[figure]).expect("the page renders");
        assert!(page.contains("<td>Svalbard &amp; Jan Mayen &lt;Islands&gt;</td><td class=\"num\">1</td>"), "{page}");
        assert!(!page.contains("<script>") && page.contains("&lt;script&gt;alert(1)"), "{page}");
        assert!(page.contains("<code>&lt;b&gt;run&lt;"), "the run id, as code and as text: {page}");
        assert!(!page.contains(r#"O'Brien "Bob""#) && page.contains("O&#x27;Brien &quot;Bob&quot;"), "{page}");
    }

    #[test]
    fn ranking_adds_orders_over_currencies_but_keeps_values_apart() {
        let row = |key: &str, currency: &str, orders, value| ItemSales {
            key: key.into(),
            name: format!("name {key}"),
            detail: String::new(),
            currency: currency.into(),
            orders,
            units: orders * 10,
            value,
        };
        let rows =
            [row("a", "EUR", 5, 50.0), row("b", "EUR", 4, 400.0), row("b", "USD", 3, 30.0), row("c", "GBP", 1, 1.0)];
        let ranked = rank(&rows, 2);
        assert_eq!(ranked.len(), 2);
        assert_eq!(ranked[0].key, "b");
        assert_eq!(ranked[0].orders, 7);
        assert_eq!(ranked[0].values, BTreeMap::from([("EUR".to_string(), 400.0), ("USD".to_string(), 30.0)]));
        assert_eq!(ranked[1].key, "a");
    }
}
