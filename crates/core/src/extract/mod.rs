//! Extract: ToteSys tables → JSON Lines in the ingestion bucket, one consistent snapshot per run,
//! every committed row version exactly once.
//!
//! **What is new is decided by commit visibility, not by stamps.** Each run records its database
//! snapshot (`pg_current_snapshot()`). The next run reads every row whose writing transaction
//! (`xmin`) is at or after that snapshot's `xmin` — which covers every transaction the snapshot
//! could not see, subtransactions included — and skips the transactions whose rows the previous
//! run already saw (`seen_transactions`).
//! So a transaction that stays open for hours, a `last_updated` set to a past time, or an update
//! that does not touch `last_updated` at all are all found, exactly once, and all the rows of one
//! transaction land in the same run. No clock is compared, so time zones and clocks that go
//! back cannot lose rows. See `docs/architecture.md` for the argument and the limits.

pub mod claim;
pub mod manifest;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::{TryStreamExt, pin_mut};
use tokio_postgres::{Client, IsolationLevel, Transaction};

pub use manifest::{IngestionManifest, SchemaChange, SourceColumn, SourceSnapshot, TableExtract};

use crate::db::{DbError, error_text};
use crate::keys;
use crate::storage::{ObjectStore, StorageError, latest_manifest_key};
use crate::tables::{SOURCE_TABLES, SourceTable};

/// Timestamps in manifests and extracted rows: microseconds, the source's full precision.
pub const SOURCE_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6f";

/// The same, as a PostgreSQL `to_char` pattern.
const PG_TIME_FORMAT: &str = "YYYY-MM-DD\"T\"HH24:MI:SS.US";

/// Transaction ids wrap at 2^32; a row's 32-bit `xmin` is placed in the newest epoch that keeps it
/// below the snapshot's `xmax`. Beyond half the range, that placement could be wrong.
const XID_WINDOW_LIMIT: u64 = (1 << 31) - (1 << 24);

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("reading table {table} from the source failed: {reason}")]
    Query { table: String, reason: String },
    #[error("the source snapshot could not be opened: {reason}")]
    Snapshot { reason: String },
    #[error("the source time zone {zone:?} (ONYX_SOURCE_TIMEZONE) is not one PostgreSQL knows: {reason}")]
    TimeZone { zone: String, reason: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the previous run manifest {key} is unreadable: {reason}")]
    BadManifest { key: String, reason: String },
    #[error(
        "another extract holds the place after run {previous}: claim {key} by run {holder} at {claimed_at}; this run wrote nothing"
    )]
    ClaimHeld { previous: String, key: String, holder: String, claimed_at: String },
    #[error(
        "run {run_id} took {elapsed_s} s, longer than its claim's lease of {lease_s} s; it wrote no manifest (another run may have taken over)"
    )]
    LeaseExpired { run_id: String, elapsed_s: u64, lease_s: u64 },
}

impl ExtractError {
    pub fn is_retryable(&self) -> bool {
        match self {
            ExtractError::Database(e) => e.is_retryable(),
            ExtractError::Storage(e) => e.is_retryable(),
            ExtractError::Query { .. } | ExtractError::Snapshot { .. } | ExtractError::LeaseExpired { .. } => true,
            ExtractError::BadManifest { .. } | ExtractError::TimeZone { .. } | ExtractError::ClaimHeld { .. } => false,
        }
    }

    /// Whether the run stood aside for another extract: not a failure, nothing to alarm on.
    pub fn is_claim_held(&self) -> bool {
        matches!(self, ExtractError::ClaimHeld { .. })
    }
}

/// Tuning of an extract run.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// The time zone the source's `timestamp` columns are written in (`ONYX_SOURCE_TIMEZONE`):
    /// the extract session uses it, so the recorded snapshot time compares with the stamps.
    pub source_timezone: String,
    /// A table's delta is split into objects of about this many bytes: the transform holds one
    /// object's rows at a time, so this bounds its memory (16 MiB ≈ 60k rows ≈ 200 MiB parsed).
    pub max_object_bytes: usize,
    /// How long a run's claim holds; a run that takes longer writes no manifest. Longer than
    /// the extract function's timeout (at most 15 minutes).
    pub claim_lease: Duration,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            source_timezone: "UTC".into(),
            max_object_bytes: 16 * 1024 * 1024,
            claim_lease: Duration::from_secs(20 * 60),
        }
    }
}

/// The outcome of one extract run.
#[derive(Debug, Clone)]
pub struct ExtractSummary {
    pub manifest: IngestionManifest,
    pub manifest_key: String,
    pub duration: Duration,
}

/// Reads the extraction state: the newest run manifest in the ingestion bucket, if any.
pub async fn latest_manifest(store: &dyn ObjectStore) -> Result<Option<IngestionManifest>, ExtractError> {
    let Some(key) = latest_manifest_key(store).await? else {
        return Ok(None);
    };
    let bytes = store.get(&key).await?;
    let manifest: IngestionManifest = serde_json::from_slice(&bytes)
        .map_err(|e| ExtractError::BadManifest { key: key.clone(), reason: e.to_string() })?;
    if manifest.format > manifest::FORMAT {
        return Err(ExtractError::BadManifest {
            key,
            reason: format!(
                "format {} is newer than this build understands ({}); upgrade Onyx",
                manifest.format,
                manifest::FORMAT
            ),
        });
    }
    Ok(Some(manifest))
}

/// Runs one extraction: claims the place after the newest run, reads every table's changes from
/// one read-only repeatable-read snapshot, writes them as JSON Lines, then the manifest last.
///
/// A run that fails before its manifest is written leaves only objects no manifest refers to
/// and releases its claim; the next run starts again from the previous manifest.
pub async fn run(
    client: &mut Client,
    store: &dyn ObjectStore,
    options: &ExtractOptions,
) -> Result<ExtractSummary, ExtractError> {
    let started = Instant::now();
    let previous = latest_manifest(store).await?;
    let previous_id = previous.as_ref().map(|p| p.run_id.as_str());
    let run_id = next_run_id(Utc::now(), previous_id);
    let held = match claim::claim(store, previous_id, &run_id, options.claim_lease, Utc::now()).await? {
        Ok(held) => held,
        Err(other) => {
            return Err(ExtractError::ClaimHeld {
                previous: previous_id.unwrap_or("(none: first run)").to_string(),
                key: other.key,
                holder: other.holder,
                claimed_at: other.claimed_at,
            });
        }
    };
    let result = extract_run(client, store, options, previous.as_ref(), &run_id, started).await;
    match result {
        Ok(summary) => Ok(summary),
        Err(error) => {
            claim::release(store, &held, &error.to_string()).await;
            Err(error)
        }
    }
}

async fn extract_run(
    client: &mut Client,
    store: &dyn ObjectStore,
    options: &ExtractOptions,
    previous: Option<&IngestionManifest>,
    run_id: &str,
    started: Instant,
) -> Result<ExtractSummary, ExtractError> {
    let snapshot_error = |e: tokio_postgres::Error| ExtractError::Snapshot { reason: error_text(&e) };
    // Outside the snapshot transaction: a login without the right to read it must not abort it.
    let system_id: Option<String> = client
        .query_opt("SELECT system_identifier::text FROM pg_control_system()", &[])
        .await
        .ok()
        .flatten()
        .map(|row| row.get(0));
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(snapshot_error)?;
    // The first statement takes the snapshot; everything below reads from it.
    tx.query_one("SELECT set_config('TimeZone', $1, true)", &[&options.source_timezone])
        .await
        .map_err(|e| ExtractError::TimeZone { zone: options.source_timezone.clone(), reason: error_text(&e) })?;
    let row = tx
        .query_one(
            &format!(
                "SELECT pg_current_snapshot()::text, to_char(LOCALTIMESTAMP, '{PG_TIME_FORMAT}'),
                        (SELECT oid::text FROM pg_database WHERE datname = current_database())"
            ),
            &[],
        )
        .await
        .map_err(snapshot_error)?;
    let snapshot_text: String = row.get(0);
    let snapshot = SourceSnapshot::parse(&snapshot_text)
        .ok_or_else(|| ExtractError::Snapshot { reason: format!("unexpected snapshot {snapshot_text:?}") })?;
    let snapshot_time: String = row.get(1);
    let identity = format!("{}/{}", system_id.as_deref().unwrap_or("?"), row.get::<_, String>(2));

    let window = read_window(previous, &snapshot, &identity);
    let next_xid = age_reference(&tx, &snapshot).await?;
    if let ReadWindow::All { reason: Some(reason) } = &window {
        tracing::warn!(stage = "extract", run_id, reason, "reading every row of every table once");
    }
    let catalog = read_catalog(&tx).await?;

    // What the previous run saw is only meaningful against its own snapshot: a full read (a
    // different or restored database, say) skips nothing.
    let skip: &[u64] = match (&window, previous) {
        (ReadWindow::Since { .. }, Some(previous)) => &previous.seen_transactions,
        _ => &[],
    };
    // Skipped in the database by their `age()`; those this snapshot still has to look at again
    // (at or after its xmin) stay seen for the next run.
    let skip_ages: Vec<i32> = skip.iter().map(|x| next_xid.saturating_sub(*x) as i32).collect();
    let mut seen: BTreeSet<u64> = skip.iter().copied().filter(|x| *x >= snapshot.xmin).collect();
    let mut tables = Vec::with_capacity(SOURCE_TABLES.len());
    for table in SOURCE_TABLES {
        let columns = catalog.get(table.name).cloned().unwrap_or_default();
        let extract = if columns.is_empty() {
            TableExtract { table: table.name.to_string(), rows: 0, objects: Vec::new(), columns: Vec::new() }
        } else {
            let read = TableRead { window: &window, snapshot: &snapshot, next_xid, skip_ages: &skip_ages };
            extract_table(&tx, store, table, run_id, columns, &read, &mut seen, options).await?
        };
        tables.push(extract);
    }
    tx.commit().await.map_err(snapshot_error)?;

    let unmodelled_tables: Vec<String> =
        catalog.keys().filter(|name| SourceTable::named(name).is_none()).cloned().collect();
    let schema_changes = previous.map(|p| schema_changes(p, &tables, &unmodelled_tables)).unwrap_or_default();
    for change in &schema_changes {
        tracing::warn!(
            stage = "extract",
            run_id,
            table = change.table,
            column = change.column.as_deref().unwrap_or("-"),
            change = change.change,
            "source schema changed: {change}"
        );
    }
    let manifest = IngestionManifest {
        format: manifest::FORMAT,
        run_id: run_id.to_string(),
        snapshot_time,
        source_timezone: Some(options.source_timezone.clone()),
        source_identity: Some(identity),
        snapshot: Some(snapshot),
        previous_run_id: previous.map(|p| p.run_id.clone()),
        full_read: match window {
            ReadWindow::All { reason } => Some(reason.unwrap_or_else(|| "first run".into())),
            ReadWindow::Since { .. } => None,
        },
        tables,
        unmodelled_tables,
        schema_changes,
        seen_transactions: seen.into_iter().collect(),
    };
    let manifest_key = keys::manifest(run_id);
    let body = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| ExtractError::BadManifest { key: manifest_key.clone(), reason: e.to_string() })?;
    // The claim's lease bounds how long a run may hold its place: past it, another run may have
    // taken over, and writing this manifest would fork the run history.
    if started.elapsed() > options.claim_lease {
        return Err(ExtractError::LeaseExpired {
            run_id: run_id.to_string(),
            elapsed_s: started.elapsed().as_secs(),
            lease_s: options.claim_lease.as_secs(),
        });
    }
    store.put(&manifest_key, body).await?;
    Ok(ExtractSummary { manifest, manifest_key, duration: started.elapsed() })
}

/// Run ids sort in run order: the extractor's UTC clock, never earlier than the previous run's
/// (a clock that went back must not reorder runs); see [`keys::next_id`].
pub fn next_run_id(now: DateTime<Utc>, previous: Option<&str>) -> String {
    keys::next_id(now, previous)
}

/// Which row versions a run reads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ReadWindow {
    /// Every row (the first run, or no comparable predecessor: `reason` says why).
    All { reason: Option<String> },
    /// Rows whose transaction id is at or after `from` (the predecessor's snapshot `xmin`).
    Since { from: u64 },
}

fn read_window(previous: Option<&IngestionManifest>, now: &SourceSnapshot, identity: &str) -> ReadWindow {
    let Some(previous) = previous else { return ReadWindow::All { reason: None } };
    if let Some(before) = &previous.source_identity
        && !same_source(before, identity)
    {
        return ReadWindow::All {
            reason: Some(format!(
                "the source is not the database the previous run read ({before} → {identity}): its transaction ids do not compare"
            )),
        };
    }
    let Some(before) = &previous.snapshot else {
        return ReadWindow::All {
            reason: Some(format!(
                "the previous run {} predates snapshot tracking (manifest format {}); versions it already wrote are written again once",
                previous.run_id, previous.format
            )),
        };
    };
    if now.xmax < before.xmax {
        return ReadWindow::All {
            reason: Some(format!(
                "the source's transaction counter ({}) is behind the previous run's ({}): it is a different or restored database",
                now.xmax, before.xmax
            )),
        };
    }
    if now.xmax - before.xmin >= XID_WINDOW_LIMIT {
        return ReadWindow::All {
            reason: Some(format!(
                "{} transactions since the previous run's oldest open transaction: too many to place 32-bit ids safely",
                now.xmax - before.xmin
            )),
        };
    }
    ReadWindow::Since { from: before.xmin }
}

/// Whether two source identities are the same database history (`?` matches any system
/// identifier: a login that cannot read it compares database oids only).
fn same_source(before: &str, now: &str) -> bool {
    let split = |s: &str| s.split_once('/').map(|(a, b)| (a.to_string(), b.to_string()));
    match (split(before), split(now)) {
        (Some((a_sys, a_db)), Some((b_sys, b_db))) => a_db == b_db && (a_sys == "?" || b_sys == "?" || a_sys == b_sys),
        _ => before == now,
    }
}

/// The 64-bit id of a row's 32-bit `xmin`: the newest id with those low bits below `xmax`.
fn full_xid(xmin: u32, snapshot: &SourceSnapshot) -> u64 {
    let distance = (snapshot.xmax as u32).wrapping_sub(xmin);
    snapshot.xmax.saturating_sub(u64::from(distance))
}

/// The transaction id `age()` measures from in this transaction (PostgreSQL fixes it at the
/// first call: the next id to be assigned), as a 64-bit id: `age(xmin)` is then `next − xmin`,
/// a cheap integer per row instead of a text conversion.
pub async fn age_reference(tx: &Transaction<'_>, snapshot: &SourceSnapshot) -> Result<u64, ExtractError> {
    // Any normal id (≥ 3) serves as the reference; the snapshot's xmax is one.
    let reference = (snapshot.xmax as u32).max(3);
    let age: i32 = tx
        .query_one("SELECT age($1::text::xid)", &[&reference.to_string()])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| ExtractError::Snapshot { reason: error_text(&e) })?;
    let next_low = reference.wrapping_add(age as u32);
    Ok(snapshot.xmax + u64::from(next_low.wrapping_sub(snapshot.xmax as u32)))
}

/// The SQL test "the transaction `xmin` wrote this row after the snapshot, and is not one of
/// `seen`": `age(xmin)` is `next − xmin` (see `age_reference`), so the window is
/// `0 ≤ age ≤ span` (older rows, and rows frozen before 9.4, fall outside), and `seen` holds the
/// ages of transactions to leave out. CASE fixes the order of evaluation. Used by the extract
/// (what is new) and by `verify` (what is in flight).
pub fn unseen_by_snapshot_sql(xmin: &str, span: &str, seen: &str) -> String {
    format!("CASE WHEN age({xmin}) BETWEEN 0 AND {span} THEN NOT (age({xmin}) = ANY({seen})) ELSE false END")
}

/// What a table read needs to know about the run.
struct TableRead<'a> {
    window: &'a ReadWindow,
    snapshot: &'a SourceSnapshot,
    next_xid: u64,
    /// `age()` of the transactions the previous run already wrote.
    skip_ages: &'a [i32],
}

/// Every table and column of the source's schema, from the catalog, in column order.
async fn read_catalog(tx: &Transaction<'_>) -> Result<BTreeMap<String, Vec<CatalogColumn>>, ExtractError> {
    let rows = tx
        .query(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod),
                    (CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END)::oid::int8
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             LEFT JOIN pg_type t ON t.oid = a.atttypid
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
             ORDER BY c.relname, a.attnum",
            &[],
        )
        .await
        .map_err(|e| ExtractError::Query { table: "(catalog)".into(), reason: error_text(&e) })?;
    let mut catalog: BTreeMap<String, Vec<CatalogColumn>> = BTreeMap::new();
    for row in rows {
        let columns = catalog.entry(row.get(0)).or_default();
        if let (Some(name), Some(data_type), Some(base_type)) =
            (row.get::<_, Option<String>>(1), row.get::<_, Option<String>>(2), row.get::<_, Option<i64>>(3))
        {
            columns.push(CatalogColumn { column: SourceColumn { name, data_type }, base_type });
        }
    }
    Ok(catalog)
}

#[derive(Debug, Clone)]
struct CatalogColumn {
    column: SourceColumn,
    /// The type's oid (a domain's base type).
    base_type: i64,
}

const NUMERIC_OID: i64 = 1700;
const TIMESTAMP_OID: i64 = 1114;

/// `"name"`, with embedded quotes doubled: catalog names are quoted, never trusted as SQL.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, with embedded quotes doubled.
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The JSON value of a column: NUMERIC as its exact text, `timestamp` with microseconds (and
/// `infinity` as itself), everything else as PostgreSQL's own JSON for the type.
fn json_value(column: &CatalogColumn) -> String {
    let c = quote_ident(&column.column.name);
    match column.base_type {
        NUMERIC_OID => format!("{c}::text"),
        TIMESTAMP_OID => format!("CASE WHEN isfinite({c}) THEN to_char({c}, '{PG_TIME_FORMAT}') ELSE {c}::text END"),
        _ => c,
    }
}

/// The `SELECT` that reads a table's rows as JSON objects with every column the source has,
/// with the writing transaction's id beside; `windowed` adds the transaction-id filter (`$1`: the
/// low 32 bits of the snapshot's `xmax`, `$2`: how far back from it to read).
fn select_sql(table: &SourceTable, columns: &[CatalogColumn], windowed: bool) -> String {
    // json_build_object takes at most 100 arguments: wide tables are built in chunks and merged.
    let objects: Vec<String> = columns
        .chunks(50)
        .map(|chunk| {
            let fields: Vec<String> =
                chunk.iter().map(|c| format!("{}, {}", quote_literal(&c.column.name), json_value(c))).collect();
            format!("json_build_object({})", fields.join(", "))
        })
        .collect();
    let object = if objects.len() == 1 {
        format!("{}::text", objects[0])
    } else {
        format!("({})::text", objects.iter().map(|o| format!("{o}::jsonb")).collect::<Vec<_>>().join(" || "))
    };
    let filter = if windowed {
        format!(" WHERE {}", unseen_by_snapshot_sql("xmin", "$1::int4", "$2::int4[]"))
    } else {
        String::new()
    };
    // No ORDER BY: a run holds one version per row, so order carries no meaning, and ordering by
    // key would make the planner walk the whole primary-key index instead of one sequential scan.
    format!("SELECT {object}, xmin::text::int8 FROM {}{filter}", quote_ident(table.name))
}

#[allow(clippy::too_many_arguments)]
async fn extract_table(
    tx: &Transaction<'_>,
    store: &dyn ObjectStore,
    table: &'static SourceTable,
    run_id: &str,
    columns: Vec<CatalogColumn>,
    read: &TableRead<'_>,
    seen: &mut BTreeSet<u64>,
    options: &ExtractOptions,
) -> Result<TableExtract, ExtractError> {
    let query_error =
        |e: tokio_postgres::Error| ExtractError::Query { table: table.name.into(), reason: error_text(&e) };
    let snapshot = read.snapshot;
    let sql = select_sql(table, &columns, matches!(read.window, ReadWindow::Since { .. }));
    let rows = match read.window {
        ReadWindow::Since { from } => {
            // Both below 2^31: the window is checked in `read_window`, and `next` is at most a
            // few transactions past the snapshot's xmax.
            let span = read.next_xid.saturating_sub(*from) as i32;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&span, &read.skip_ages];
            tx.query_raw(sql.as_str(), params).await
        }
        ReadWindow::All { .. } => tx.query_raw(sql.as_str(), std::iter::empty::<i64>()).await,
    }
    .map_err(query_error)?;
    pin_mut!(rows);

    let mut buffer: Vec<u8> = Vec::new();
    let mut objects = Vec::new();
    let mut written = 0u64;
    while let Some(row) = rows.try_next().await.map_err(query_error)? {
        let json: &str = row.try_get(0).map_err(query_error)?;
        let xmin: i64 = row.try_get(1).map_err(query_error)?;
        let xid = full_xid(xmin as u32, snapshot);
        if xid >= snapshot.xmin {
            // A transaction this snapshot saw, but at or after its xmin: the next run reads it
            // again, so remember that its rows are written.
            seen.insert(xid);
        }
        buffer.extend_from_slice(json.as_bytes());
        buffer.push(b'\n');
        written += 1;
        if buffer.len() >= options.max_object_bytes {
            let object = keys::extract_part(table.name, run_id, objects.len());
            store.put(&object, std::mem::take(&mut buffer)).await?;
            objects.push(object);
        }
    }
    if !buffer.is_empty() {
        let object = keys::extract_part(table.name, run_id, objects.len());
        store.put(&object, buffer).await?;
        objects.push(object);
    }
    Ok(TableExtract {
        table: table.name.to_string(),
        rows: written,
        objects,
        columns: columns.into_iter().map(|c| c.column).collect(),
    })
}

/// How this run's source schema differs from the previous run's (nothing for a predecessor that
/// did not record its schema).
fn schema_changes(previous: &IngestionManifest, tables: &[TableExtract], unmodelled: &[String]) -> Vec<SchemaChange> {
    if previous.format < 2 {
        return Vec::new();
    }
    let change =
        |table: &str, column: Option<&str>, what: &str, before: Option<&str>, after: Option<&str>| SchemaChange {
            table: table.to_string(),
            column: column.map(str::to_string),
            change: what.to_string(),
            before: before.map(str::to_string),
            after: after.map(str::to_string),
        };
    let mut changes = Vec::new();
    for table in tables {
        let before = previous.table(&table.table).map(|t| t.columns.as_slice()).unwrap_or_default();
        match (before.is_empty(), table.columns.is_empty()) {
            (false, true) => changes.push(change(&table.table, None, "table dropped", None, None)),
            (true, false) => changes.push(change(&table.table, None, "table added", None, None)),
            _ => {}
        }
        if before.is_empty() || table.columns.is_empty() {
            continue;
        }
        for column in &table.columns {
            match before.iter().find(|c| c.name == column.name) {
                None => changes.push(change(
                    &table.table,
                    Some(&column.name),
                    "column added",
                    None,
                    Some(&column.data_type),
                )),
                Some(old) if old.data_type != column.data_type => changes.push(change(
                    &table.table,
                    Some(&column.name),
                    "column retyped",
                    Some(&old.data_type),
                    Some(&column.data_type),
                )),
                Some(_) => {}
            }
        }
        for old in before.iter().filter(|old| !table.columns.iter().any(|c| c.name == old.name)) {
            changes.push(change(&table.table, Some(&old.name), "column dropped", Some(&old.data_type), None));
        }
    }
    for name in unmodelled.iter().filter(|name| !previous.unmodelled_tables.contains(name)) {
        changes.push(change(name, None, "table added", None, Some("not modelled by Onyx: not extracted")));
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::PAYMENT;

    fn column(name: &str, base_type: i64) -> CatalogColumn {
        CatalogColumn { column: SourceColumn { name: name.into(), data_type: "t".into() }, base_type }
    }

    #[test]
    fn select_reads_every_catalog_column_exactly_and_quotes_names() {
        let columns =
            [column("payment_id", 23), column("payment_amount", NUMERIC_OID), column("created_at", TIMESTAMP_OID)];
        let sql = select_sql(&PAYMENT, &columns, true);
        assert!(sql.contains("'payment_amount', \"payment_amount\"::text"), "{sql}");
        assert!(sql.contains("to_char(\"created_at\", 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"), "microseconds: {sql}");
        assert!(sql.contains("ELSE \"created_at\"::text"), "infinity is kept: {sql}");
        assert!(sql.contains("FROM \"payment\" WHERE CASE WHEN age(xmin) BETWEEN 0 AND $1::int4"), "{sql}");
        assert!(sql.contains("THEN NOT (age(xmin) = ANY($2::int4[])) ELSE false END"), "{sql}");
        assert!(!select_sql(&PAYMENT, &columns, false).contains("$1"));
        let odd = select_sql(&PAYMENT, &[column("it's \"odd\"", 25)], false);
        assert!(odd.contains("'it''s \"odd\"', \"it's \"\"odd\"\"\""), "{odd}");
        assert!(!odd.contains("ORDER BY"), "{odd}");
        let wide: Vec<CatalogColumn> = (0..120).map(|i| column(&format!("c{i}"), 23)).collect();
        assert_eq!(select_sql(&PAYMENT, &wide, false).matches("json_build_object(").count(), 3);
    }

    #[test]
    fn transaction_ids_are_placed_in_the_right_epoch() {
        let snapshot = SourceSnapshot { xmin: (3 << 32) + 5, xmax: (3 << 32) + 10, xip: vec![] };
        assert_eq!(full_xid(9, &snapshot), (3 << 32) + 9);
        assert_eq!(full_xid(u32::MAX, &snapshot), (3 << 32) - 1, "just before the wrap");
        let before = IngestionManifest {
            format: 2,
            run_id: "r".into(),
            snapshot_time: String::new(),
            source_timezone: None,
            source_identity: None,
            snapshot: Some(SourceSnapshot { xmin: (3 << 32) - 20, xmax: (3 << 32) - 2, xip: vec![] }),
            previous_run_id: None,
            full_read: None,
            tables: vec![],
            unmodelled_tables: vec![],
            schema_changes: vec![],
            seen_transactions: vec![],
        };
        assert_eq!(read_window(Some(&before), &snapshot, "7/16384"), ReadWindow::Since { from: (3 << 32) - 20 });
        let restored = SourceSnapshot { xmin: 100, xmax: 100, xip: vec![] };
        assert!(matches!(read_window(Some(&before), &restored, "7/16384"), ReadWindow::All { reason: Some(_) }));
        let other = IngestionManifest { source_identity: Some("7/16384".into()), ..before };
        assert!(matches!(read_window(Some(&other), &snapshot, "8/16384"), ReadWindow::All { reason: Some(_) }));
        assert!(matches!(read_window(Some(&other), &snapshot, "7/99999"), ReadWindow::All { reason: Some(_) }));
        assert_eq!(read_window(Some(&other), &snapshot, "?/16384"), ReadWindow::Since { from: (3 << 32) - 20 });
    }

    #[test]
    fn run_ids_sort_by_time_even_when_the_clock_goes_back() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc);
        let a = next_run_id(at("2026-11-28T06:40:12.123Z"), None);
        let b = next_run_id(at("2026-11-28T06:40:12.124Z"), Some(&a));
        assert!(a < b);
        let back = next_run_id(at("2026-11-28T05:40:12.000Z"), Some(&b));
        assert!(back > b, "{back} after {b}");
        assert!(back.starts_with("20261128T064012125-"), "{back}");
        assert_eq!(keys::partition(&a).as_deref(), Some("2026/11/28"));
    }
}
