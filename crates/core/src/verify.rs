//! `onyx verify`: the warehouse checked against the source as of the newest loaded run's snapshot
//! (invariant 10), without moving whole tables.
//!
//! For every warehouse table, both databases compute the same canonical text of each row (a
//! `ROW(…)::text` of text columns) from their own side: the source through the joins the transform
//! applies, the warehouse from the dimension or the fact's `*_current` view. Per id range each side
//! returns only a row count and a sum of 64-bit hashes (`hashtextextended`, the function hash
//! partitioning relies on, so stable across PostgreSQL versions); ranges that differ are split into 16
//! and compared again, down to ranges of at most `leaf_size` ids, whose per-id hashes name the
//! missing, extra and different ids; the first few are fetched whole and compared column by
//! column. Memory is bounded by one leaf.
//!
//! **In flight.** A source row whose writing transaction the newest loaded run's snapshot could not
//! see — its `xmin` at or after the snapshot's `xmin` and not among the transactions that run saw
//! (`seen_transactions` of its manifest) — changed after that snapshot: it is counted as in flight
//! and left out of the comparison, on both sides.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde::Serialize;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient};

use crate::db::error_text;
use crate::extract::{self, IngestionManifest, PendingRead};
use crate::keys;
use crate::storage::{ObjectStore, StorageError};
use crate::tables::SOURCE_TABLES;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("verify: {side} query for {table} failed: {reason}")]
    Query { side: &'static str, table: &'static str, reason: String },
    #[error("verify: nothing is loaded yet: the warehouse ledger is empty")]
    NothingLoaded,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("verify: the ingestion manifest of run {run_id} is unreadable: {reason}")]
    Manifest { run_id: String, reason: String },
}

/// How a warehouse table is derived from the source, as SQL on each side. Both produce `id`
/// then the columns (as text, in the same order); the source ends with an `in_flight` boolean
/// built from `{F:alias}` (the in-flight test of that table alias's row).
struct Check {
    table: &'static str,
    /// Source table and key, warehouse table and key: where the id range is read (through the
    /// primary-key indexes, not the derived rows).
    ids: [&'static str; 4],
    columns: &'static [&'static str],
    source: &'static str,
    warehouse: &'static str,
}

const CHECKS: &[Check] = &[
    Check {
        table: "dim_staff",
        ids: ["staff", "staff_id", "dim_staff", "staff_id"],
        columns: &["first_name", "last_name", "department_name", "location", "email_address"],
        source: "SELECT s.staff_id, s.first_name::text, s.last_name::text, d.department_name::text, d.location::text,
                        s.email_address::text, {F:s} OR {F:d}
                 FROM staff s JOIN department d ON d.department_id = s.department_id",
        warehouse: "SELECT staff_id, first_name, last_name, department_name, location, email_address FROM dim_staff WHERE deleted_at IS NULL",
    },
    Check {
        table: "dim_location",
        ids: ["address", "address_id", "dim_location", "location_id"],
        columns: &["address_line_1", "address_line_2", "district", "city", "postal_code", "country", "phone"],
        source: "SELECT address_id, address_line_1::text, address_line_2::text, district::text, city::text,
                        postal_code::text, country::text, phone::text, {F:a} FROM address a",
        warehouse: "SELECT location_id, address_line_1, address_line_2, district, city, postal_code, country, phone
                    FROM dim_location WHERE deleted_at IS NULL",
    },
    Check {
        table: "dim_design",
        ids: ["design", "design_id", "dim_design", "design_id"],
        columns: &["design_name", "file_location", "file_name"],
        source: "SELECT design_id, design_name::text, file_location::text, file_name::text, {F:d} FROM design d",
        warehouse: "SELECT design_id, design_name, file_location, file_name FROM dim_design WHERE deleted_at IS NULL",
    },
    Check {
        table: "dim_currency",
        ids: ["currency", "currency_id", "dim_currency", "currency_id"],
        columns: &["currency_code"],
        source: "SELECT currency_id, currency_code::text, {F:c} FROM currency c",
        warehouse: "SELECT currency_id, currency_code FROM dim_currency WHERE deleted_at IS NULL",
    },
    Check {
        table: "dim_counterparty",
        ids: ["counterparty", "counterparty_id", "dim_counterparty", "counterparty_id"],
        columns: &[
            "counterparty_legal_name",
            "counterparty_legal_address_line_1",
            "counterparty_legal_address_line_2",
            "counterparty_legal_district",
            "counterparty_legal_city",
            "counterparty_legal_postal_code",
            "counterparty_legal_country",
            "counterparty_legal_phone_number",
        ],
        source:
            "SELECT c.counterparty_id, c.counterparty_legal_name::text, a.address_line_1::text, a.address_line_2::text,
                        a.district::text, a.city::text, a.postal_code::text, a.country::text, a.phone::text,
                        {F:c} OR {F:a}
                 FROM counterparty c JOIN address a ON a.address_id = c.legal_address_id",
        warehouse: "SELECT counterparty_id, counterparty_legal_name, counterparty_legal_address_line_1,
                           counterparty_legal_address_line_2, counterparty_legal_district, counterparty_legal_city,
                           counterparty_legal_postal_code, counterparty_legal_country, counterparty_legal_phone_number
                    FROM dim_counterparty WHERE deleted_at IS NULL",
    },
    Check {
        table: "dim_payment_type",
        ids: ["payment_type", "payment_type_id", "dim_payment_type", "payment_type_id"],
        columns: &["payment_type_name"],
        source: "SELECT payment_type_id, payment_type_name::text, {F:p} FROM payment_type p",
        warehouse: "SELECT payment_type_id, payment_type_name FROM dim_payment_type WHERE deleted_at IS NULL",
    },
    Check {
        table: "dim_transaction",
        ids: ["transaction", "transaction_id", "dim_transaction", "transaction_id"],
        columns: &["transaction_type", "sales_order_id", "purchase_order_id"],
        source: "SELECT transaction_id, transaction_type::text, sales_order_id::text, purchase_order_id::text, {F:t}
                 FROM transaction t",
        warehouse: "SELECT transaction_id, transaction_type, sales_order_id::text, purchase_order_id::text
                    FROM dim_transaction WHERE deleted_at IS NULL",
    },
    Check {
        table: "fact_sales_order",
        ids: ["sales_order", "sales_order_id", "fact_sales_order", "sales_order_id"],
        columns: &[
            "created_date",
            "created_time",
            "last_updated_date",
            "last_updated_time",
            "sales_staff_id",
            "counterparty_id",
            "units_sold",
            "unit_price",
            "currency_id",
            "design_id",
            "agreed_payment_date",
            "agreed_delivery_date",
            "agreed_delivery_location_id",
        ],
        source: "SELECT sales_order_id, created_at::date::text, created_at::time::text, last_updated::date::text,
                        last_updated::time::text, staff_id::text, counterparty_id::text, units_sold::text,
                        trim_scale(unit_price)::text, currency_id::text, design_id::text, agreed_payment_date::text,
                        agreed_delivery_date::text, agreed_delivery_location_id::text, {F:o}
                 FROM sales_order o",
        warehouse: "SELECT sales_order_id, created_date::text, created_time::text, last_updated_date::text,
                           last_updated_time::text, sales_staff_id::text, counterparty_id::text, units_sold::text,
                           trim_scale(unit_price)::text, currency_id::text, design_id::text, agreed_payment_date::text,
                           agreed_delivery_date::text, agreed_delivery_location_id::text
                    FROM fact_sales_order_current",
    },
    Check {
        table: "fact_purchase_order",
        ids: ["purchase_order", "purchase_order_id", "fact_purchase_order", "purchase_order_id"],
        columns: &[
            "created_date",
            "created_time",
            "last_updated_date",
            "last_updated_time",
            "staff_id",
            "counterparty_id",
            "item_code",
            "item_quantity",
            "item_unit_price",
            "currency_id",
            "agreed_delivery_date",
            "agreed_payment_date",
            "agreed_delivery_location_id",
        ],
        source: "SELECT purchase_order_id, created_at::date::text, created_at::time::text, last_updated::date::text,
                        last_updated::time::text, staff_id::text, counterparty_id::text, item_code::text,
                        item_quantity::text, trim_scale(item_unit_price)::text, currency_id::text,
                        agreed_delivery_date::text, agreed_payment_date::text, agreed_delivery_location_id::text, {F:o}
                 FROM purchase_order o",
        warehouse: "SELECT purchase_order_id, created_date::text, created_time::text, last_updated_date::text,
                           last_updated_time::text, staff_id::text, counterparty_id::text, item_code,
                           item_quantity::text, trim_scale(item_unit_price)::text, currency_id::text,
                           agreed_delivery_date::text, agreed_payment_date::text, agreed_delivery_location_id::text
                    FROM fact_purchase_order_current",
    },
    Check {
        table: "fact_payment",
        ids: ["payment", "payment_id", "fact_payment", "payment_id"],
        columns: &[
            "created_date",
            "created_time",
            "last_updated_date",
            "last_updated_time",
            "transaction_id",
            "counterparty_id",
            "payment_amount",
            "currency_id",
            "payment_type_id",
            "paid",
            "payment_date",
        ],
        source: "SELECT payment_id, created_at::date::text, created_at::time::text, last_updated::date::text,
                        last_updated::time::text, transaction_id::text, counterparty_id::text,
                        trim_scale(payment_amount)::text, currency_id::text, payment_type_id::text, paid::text,
                        payment_date::text, {F:p}
                 FROM payment p",
        warehouse: "SELECT payment_id, created_date::text, created_time::text, last_updated_date::text,
                           last_updated_time::text, transaction_id::text, counterparty_id::text,
                           trim_scale(payment_amount)::text, currency_id::text, payment_type_id::text, paid::text,
                           payment_date::text
                    FROM fact_payment_current",
    },
];

/// Tuning of a verification.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Ranges of at most this many ids are compared id by id.
    pub leaf_size: i64,
    /// Differing rows shown column by column, per table.
    pub examples: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self { leaf_size: 256, examples: 5 }
    }
}

/// One differing row: its id, what kind of difference, and the differing columns side by side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub id: i64,
    /// `missing` (in the source, not the warehouse), `extra` (the other way) or `different`.
    pub kind: &'static str,
    /// `(column, source value, warehouse value)`; filled for the first few differences only.
    pub columns: Vec<(String, Option<String>, Option<String>)>,
}

/// The verdict for one warehouse table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableReport {
    pub table: String,
    pub checked: u64,
    pub equal: u64,
    pub missing: u64,
    pub extra: u64,
    pub different: u64,
    pub in_flight: u64,
    pub differences: Vec<Difference>,
}

impl TableReport {
    pub fn difference_count(&self) -> u64 {
        self.missing + self.extra + self.different
    }
}

/// The whole verification.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The newest loaded run, whose snapshot the warehouse is compared as of.
    pub run_id: String,
    pub snapshot_time: String,
    /// Whether rows changed since can be told apart (not for runs before snapshot tracking).
    pub in_flight_known: bool,
    pub tables: Vec<TableReport>,
    pub duration_ms: u64,
}

impl VerifyReport {
    pub fn differences(&self) -> u64 {
        self.tables.iter().map(TableReport::difference_count).sum()
    }

    pub fn is_clean(&self) -> bool {
        self.differences() == 0
    }
}

/// The in-flight test of a row of `table` (as `alias`), as SQL with its numbers inlined (they
/// are integers): written after the snapshot, or in the part of a pass no run has reached yet
/// (`pending`: rows of tables after its table, and of its table after its key).
fn in_flight_sql(alias: &str, table: &str, window: Option<&(i32, Vec<i32>)>, pending: Option<&PendingRead>) -> String {
    let changed = match window {
        None => "false".into(),
        Some((span, seen)) => {
            let seen: Vec<String> = seen.iter().map(ToString::to_string).collect();
            let xmin = format!("{alias}.xmin");
            let seen = format!("'{{{}}}'::int4[]", seen.join(","));
            format!("({})", extract::unseen_by_snapshot_sql(&xmin, "0", &span.to_string(), &seen))
        }
    };
    let position = |name: &str| SOURCE_TABLES.iter().position(|t| t.name == name);
    let not_reached = match (pending, position(table)) {
        (Some(pending), Some(this)) => match position(&pending.table).map(|at| this.cmp(&at)) {
            Some(std::cmp::Ordering::Greater) => Some("true".to_string()),
            Some(std::cmp::Ordering::Equal) => Some(match pending.after_key {
                Some(key) => format!("{alias}.\"{}\" > {key}", SOURCE_TABLES[this].key),
                None => "true".to_string(),
            }),
            _ => None,
        },
        _ => None,
    };
    match not_reached {
        Some(not_reached) => format!("({changed} OR {not_reached})"),
        None => changed,
    }
}

/// The source tables a check's SQL reads, by alias (`FROM staff s JOIN department d …`).
fn aliases(sql: &str) -> Vec<(&str, &str)> {
    let words: Vec<&str> = sql.split_whitespace().collect();
    words
        .windows(3)
        .filter(|w| w[0].eq_ignore_ascii_case("FROM") || w[0].eq_ignore_ascii_case("JOIN"))
        .map(|w| (w[2], w[1]))
        .collect()
}

/// One side of a check: its SQL wrapped so that it yields `id`, the columns and (source)
/// `in_flight`, under fixed names.
struct Side<'a, C> {
    name: &'static str,
    client: &'a C,
    sql: String,
}

/// The canonical text of a row: `ROW(columns…)::text`, the same on both sides.
fn row_text(columns: &[&str]) -> String {
    format!("ROW({})::text", columns.iter().map(|c| format!("q.\"{c}\"")).collect::<Vec<_>>().join(", "))
}

impl<C: GenericClient> Side<'_, C> {
    async fn query(
        &self,
        table: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, VerifyError> {
        self.client.query(sql, params).await.map_err(|e| VerifyError::Query {
            side: self.name,
            table,
            reason: error_text(&e),
        })
    }
}

/// Compares the source with the warehouse as of the newest loaded run.
pub async fn verify(
    source: &mut Client,
    warehouse: &Client,
    ingestion: &dyn ObjectStore,
    options: &VerifyOptions,
) -> Result<VerifyReport, VerifyError> {
    let started = Instant::now();
    let ledger = |e: tokio_postgres::Error| VerifyError::Query {
        side: "warehouse",
        table: "onyx_load_ledger",
        reason: error_text(&e),
    };
    let newest: Option<String> = warehouse
        .query_one("SELECT max(run_id) FROM onyx_load_ledger WHERE status = 'loaded'", &[])
        .await
        .map_err(ledger)?
        .get(0);
    let run_id = newest.ok_or(VerifyError::NothingLoaded)?;
    let bytes = ingestion.get(&keys::manifest(&run_id)).await?;
    let manifest: IngestionManifest = serde_json::from_slice(&bytes)
        .map_err(|e| VerifyError::Manifest { run_id: run_id.clone(), reason: e.to_string() })?;

    // One snapshot of the source for the whole verification.
    let tx = source
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|e| VerifyError::Query { side: "source", table: "(snapshot)", reason: error_text(&e) })?;
    let window = match &manifest.snapshot {
        Some(snapshot) => {
            let next = extract::age_reference(&tx, snapshot).await.map_err(|e| VerifyError::Query {
                side: "source",
                table: "(snapshot)",
                reason: e.to_string(),
            })?;
            let span = next.saturating_sub(manifest.next_window_start().unwrap_or(snapshot.xmin));
            (span < (1 << 31)).then(|| {
                let seen = manifest.seen_transactions.iter().map(|x| next.saturating_sub(*x) as i32).collect();
                (span as i32, seen)
            })
        }
        None => None,
    };
    let mut tables = Vec::new();
    for check in CHECKS {
        let mut source_sql = check.source.to_string();
        for (alias, table) in aliases(check.source) {
            let in_flight = in_flight_sql(alias, table, window.as_ref(), manifest.pending.as_ref());
            source_sql = source_sql.replace(&format!("{{F:{alias}}}"), &in_flight);
        }

        let names: Vec<String> =
            std::iter::once("id".to_string()).chain(check.columns.iter().map(|c| format!("\"{c}\""))).collect();
        let source_side = Side {
            name: "source",
            client: &tx,
            sql: format!("(SELECT * FROM ({source_sql}) x({}, in_flight))", names.join(", ")),
        };
        let warehouse_side = Side {
            name: "warehouse",
            client: warehouse,
            sql: format!("(SELECT * FROM ({}) x({}))", check.warehouse, names.join(", ")),
        };
        tables.push(compare_table(check, &source_side, &warehouse_side, options).await?);
    }
    tables.push(check_dim_date(warehouse).await?);
    tx.commit().await.map_err(|e| VerifyError::Query {
        side: "source",
        table: "(snapshot)",
        reason: error_text(&e),
    })?;

    let report = VerifyReport {
        run_id,
        snapshot_time: manifest.snapshot_time,
        in_flight_known: window.is_some(),
        tables,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    for table in report.tables.iter().filter(|t| t.difference_count() > 0) {
        let ids: Vec<i64> = table.differences.iter().map(|d| d.id).collect();
        tracing::error!(
            stage = "verify",
            table = table.table,
            missing = table.missing,
            extra = table.extra,
            different = table.different,
            ids = ?ids,
            "the warehouse differs from the source"
        );
    }
    Ok(report)
}

/// Count and hash sum per bucket of `width` ids from `lo`, leaving out `excluded` ids.
async fn buckets<C: GenericClient>(
    side: &Side<'_, C>,
    check: &Check,
    lo: i64,
    hi: i64,
    width: i64,
    excluded: &[i64],
) -> Result<BTreeMap<i64, (i64, String)>, VerifyError> {
    let sql = format!(
        "SELECT (q.id::int8 - $1::int8) / $3::int8 AS bucket, count(*),
                coalesce(sum(hashtextextended({row}, 0)), 0)::text
         FROM {from} q WHERE q.id::int8 >= $1::int8 AND q.id::int8 < $2::int8 AND NOT (q.id::int8 = ANY($4)) GROUP BY 1",
        row = row_text(check.columns),
        from = side.sql
    );
    let excluded = excluded.to_vec();
    let rows = side.query(check.table, &sql, &[&lo, &hi, &width, &excluded]).await?;
    Ok(rows.iter().map(|r| (r.get::<_, i64>(0), (r.get::<_, i64>(1), r.get::<_, String>(2)))).collect())
}

/// Per-id hashes of a leaf range.
async fn leaf<C: GenericClient>(
    side: &Side<'_, C>,
    check: &Check,
    lo: i64,
    hi: i64,
    excluded: &[i64],
) -> Result<BTreeMap<i64, String>, VerifyError> {
    let sql = format!(
        "SELECT q.id::int8, hashtextextended({row}, 0)::text FROM {from} q WHERE q.id::int8 >= $1::int8 AND q.id::int8 < $2::int8 AND NOT (q.id::int8 = ANY($3))",
        row = row_text(check.columns),
        from = side.sql
    );
    let excluded = excluded.to_vec();
    let rows = side.query(check.table, &sql, &[&lo, &hi, &excluded]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The columns of some rows, as text.
async fn fetch<C: GenericClient>(
    side: &Side<'_, C>,
    check: &Check,
    ids: &[i64],
) -> Result<BTreeMap<i64, Vec<Option<String>>>, VerifyError> {
    let columns: Vec<String> = check.columns.iter().map(|c| format!("q.\"{c}\"::text")).collect();
    let sql = format!("SELECT q.id::int8, {} FROM {} q WHERE q.id::int8 = ANY($1)", columns.join(", "), side.sql);
    let ids = ids.to_vec();
    let rows = side.query(check.table, &sql, &[&ids]).await?;
    Ok(rows.iter().map(|r| (r.get(0), (1..=check.columns.len()).map(|i| r.get(i)).collect())).collect())
}

async fn compare_table<S: GenericClient, W: GenericClient>(
    check: &Check,
    source: &Side<'_, S>,
    warehouse: &Side<'_, W>,
    options: &VerifyOptions,
) -> Result<TableReport, VerifyError> {
    let in_flight: Vec<i64> = source
        .query(check.table, &format!("SELECT q.id::int8 FROM {} q WHERE q.in_flight", source.sql), &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let range = |table: &str, key: &str| format!("SELECT min(\"{key}\")::int8, max(\"{key}\")::int8 FROM \"{table}\"");
    let [source_table, source_key, warehouse_table, warehouse_key] = check.ids;
    let (source_range, warehouse_range) = (range(source_table, source_key), range(warehouse_table, warehouse_key));
    let (a, b) = tokio::join!(
        source.query(check.table, &source_range, &[]),
        warehouse.query(check.table, &warehouse_range, &[])
    );
    let mut lo = i64::MAX;
    let mut hi = i64::MIN;
    for row in [&a?[0], &b?[0]] {
        if let (Some(min), Some(max)) = (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1)) {
            lo = lo.min(min);
            hi = hi.max(max + 1);
        }
    }
    let mut checked: Option<u64> = None;
    let mut report =
        TableReport { table: check.table.to_string(), in_flight: in_flight.len() as u64, ..Default::default() };
    let mut pending = if lo < hi { vec![(lo, hi)] } else { Vec::new() };
    let mut differing: BTreeMap<i64, &'static str> = BTreeMap::new();
    while let Some((lo, hi)) = pending.pop() {
        if hi - lo <= options.leaf_size {
            let (a, b) =
                tokio::join!(leaf(source, check, lo, hi, &in_flight), leaf(warehouse, check, lo, hi, &in_flight));
            let (a, b) = (a?, b?);
            if checked.is_none() {
                checked = Some(a.len() as u64);
            }
            let ids: BTreeSet<i64> = a.keys().chain(b.keys()).copied().collect();
            for id in ids {
                match (a.get(&id), b.get(&id)) {
                    (Some(_), None) => differing.insert(id, "missing"),
                    (None, Some(_)) => differing.insert(id, "extra"),
                    (Some(x), Some(y)) if x != y => differing.insert(id, "different"),
                    _ => None,
                };
            }
            continue;
        }
        let width = (hi - lo + 15) / 16;
        let (a, b) = tokio::join!(
            buckets(source, check, lo, hi, width, &in_flight),
            buckets(warehouse, check, lo, hi, width, &in_flight)
        );
        let (a, b) = (a?, b?);
        if checked.is_none() {
            // The first range is the whole table: its source count is the rows checked.
            checked = Some(a.values().map(|(count, _)| *count as u64).sum());
        }
        let keys: BTreeSet<i64> = a.keys().chain(b.keys()).copied().collect();
        for bucket in keys.into_iter().rev() {
            if a.get(&bucket) != b.get(&bucket) {
                pending.push((lo + bucket * width, (lo + (bucket + 1) * width).min(hi)));
            }
        }
    }
    report.checked = checked.unwrap_or(0);
    for kind in differing.values() {
        match *kind {
            "missing" => report.missing += 1,
            "extra" => report.extra += 1,
            _ => report.different += 1,
        }
    }
    report.equal = report.checked.saturating_sub(report.missing + report.different);
    let shown: Vec<i64> = differing.keys().copied().take(options.examples).collect();
    let (a, b) = tokio::join!(fetch(source, check, &shown), fetch(warehouse, check, &shown));
    let (a, b) = (a?, b?);
    for (id, kind) in &differing {
        let mut columns = Vec::new();
        if shown.contains(id) {
            let none = vec![None; check.columns.len()];
            let (x, y) = (a.get(id).unwrap_or(&none), b.get(id).unwrap_or(&none));
            for (i, name) in check.columns.iter().enumerate() {
                if x[i] != y[i] {
                    columns.push((name.to_string(), x[i].clone(), y[i].clone()));
                }
            }
        }
        report.differences.push(Difference { id: *id, kind, columns });
    }
    Ok(report)
}

/// `dim_date`: every date a fact refers to is present, no day between its first and last is
/// missing (it is a contiguous calendar), and every row's attributes are right for its date (ISO
/// weekday, names, quarter). Ids are the dates as `YYYYMMDD`.
async fn check_dim_date(warehouse: &Client) -> Result<TableReport, VerifyError> {
    let query =
        |e: tokio_postgres::Error| VerifyError::Query { side: "warehouse", table: "dim_date", reason: error_text(&e) };
    let checked: i64 = warehouse.query_one("SELECT count(*) FROM dim_date", &[]).await.map_err(query)?.get(0);
    let wrong = warehouse
        .query(
            "SELECT to_char(date_id, 'YYYYMMDD')::int8 FROM dim_date
             WHERE year <> extract(year FROM date_id) OR month <> extract(month FROM date_id)
                OR day <> extract(day FROM date_id) OR day_of_week <> extract(isodow FROM date_id)
                OR quarter <> extract(quarter FROM date_id) OR day_name <> trim(to_char(date_id, 'FMDay'))
                OR month_name <> trim(to_char(date_id, 'FMMonth'))
             ORDER BY 1",
            &[],
        )
        .await
        .map_err(query)?;
    let missing = warehouse
        .query(
            "SELECT DISTINCT to_char(d, 'YYYYMMDD')::int8 FROM (
                 SELECT created_date AS d FROM fact_sales_order UNION SELECT last_updated_date FROM fact_sales_order
                 UNION SELECT agreed_payment_date FROM fact_sales_order UNION SELECT agreed_delivery_date FROM fact_sales_order
                 UNION SELECT created_date FROM fact_purchase_order UNION SELECT last_updated_date FROM fact_purchase_order
                 UNION SELECT agreed_payment_date FROM fact_purchase_order UNION SELECT agreed_delivery_date FROM fact_purchase_order
                 UNION SELECT created_date FROM fact_payment UNION SELECT last_updated_date FROM fact_payment
                 UNION SELECT payment_date FROM fact_payment
                 UNION SELECT g::date FROM generate_series((SELECT min(date_id) FROM dim_date),
                                                           (SELECT max(date_id) FROM dim_date), interval '1 day') g) f
             WHERE NOT EXISTS (SELECT 1 FROM dim_date WHERE date_id = f.d) ORDER BY 1",
            &[],
        )
        .await
        .map_err(query)?;
    let mut report = TableReport { table: "dim_date".into(), checked: checked as u64, ..Default::default() };
    report.different = wrong.len() as u64;
    report.missing = missing.len() as u64;
    report.equal = report.checked.saturating_sub(report.different);
    report.differences.extend(missing.iter().map(|r| Difference { id: r.get(0), kind: "missing", columns: vec![] }));
    report.differences.extend(wrong.iter().map(|r| Difference { id: r.get(0), kind: "different", columns: vec![] }));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_in_flight_placeholder_names_a_source_table() {
        for check in CHECKS {
            let resolved = aliases(check.source);
            for (alias, table) in &resolved {
                assert!(SOURCE_TABLES.iter().any(|t| t.name == *table), "{}: {alias} → {table}", check.table);
            }
            let mut sql = check.source.to_string();
            for (alias, _) in resolved {
                sql = sql.replace(&format!("{{F:{alias}}}"), "x");
            }
            assert!(!sql.contains("{F:"), "{}: {sql}", check.table);
        }
        let pending = PendingRead {
            started_by: "r".into(),
            reason: "first run".into(),
            window: None,
            table: "sales_order".into(),
            after_key: Some(70),
        };
        assert_eq!(in_flight_sql("o", "sales_order", None, Some(&pending)), "(false OR o.\"sales_order_id\" > 70)");
        assert_eq!(in_flight_sql("p", "payment", None, Some(&pending)), "(false OR true)");
        assert_eq!(in_flight_sql("s", "staff", None, Some(&pending)), "false");
    }
}
