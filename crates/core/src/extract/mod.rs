//! Extract: ToteSys tables → JSON Lines in the ingestion bucket, one consistent snapshot per run,
//! every row version exactly once.

pub mod manifest;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use futures_util::{TryStreamExt, pin_mut};
use tokio_postgres::{Client, IsolationLevel};

pub use manifest::{Cursor, IngestionManifest, TableExtract};

use crate::db::{DbError, error_text};
use crate::keys;
use crate::storage::{ObjectStore, StorageError, latest_manifest_key};
use crate::tables::{Kind, LAST_UPDATED, SOURCE_TABLES, SourceTable};

/// Timestamps in manifests and cursors: microseconds, so no source precision is lost.
pub const CURSOR_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6f";

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("reading table {table} from the source failed: {reason}")]
    Query { table: &'static str, reason: String },
    #[error("the source snapshot could not be opened: {reason}")]
    Snapshot { reason: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the previous run manifest {key} is unreadable: {reason}")]
    BadManifest { key: String, reason: String },
    #[error(
        "the source clock ({now}) is not after the previous run's snapshot ({previous}); refusing to extract so that run order stays time order"
    )]
    ClockWentBack { previous: String, now: String },
}

impl ExtractError {
    pub fn is_retryable(&self) -> bool {
        match self {
            ExtractError::Database(e) => e.is_retryable(),
            ExtractError::Storage(e) => e.is_retryable(),
            ExtractError::Query { .. } | ExtractError::Snapshot { .. } => true,
            ExtractError::BadManifest { .. } | ExtractError::ClockWentBack { .. } => false,
        }
    }
}

/// Tuning of an extract run.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// How late a transaction may commit relative to its rows' `last_updated` and still be found.
    pub safety_lag: Duration,
    /// A table's delta is split into objects of about this many bytes: the transform holds one
    /// object's rows at a time, so this bounds its memory (16 MiB ≈ 60k rows ≈ 200 MiB parsed).
    pub max_object_bytes: usize,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self { safety_lag: Duration::from_secs(300), max_object_bytes: 16 * 1024 * 1024 }
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
    serde_json::from_slice(&bytes).map(Some).map_err(|e| ExtractError::BadManifest { key, reason: e.to_string() })
}

/// Runs one extraction: reads every table's changes from one read-only repeatable-read snapshot,
/// writes them as JSON Lines, then writes the run manifest last.
///
/// A run that fails before its manifest is written leaves only objects no manifest refers to;
/// the next run starts again from the previous manifest, so nothing is counted twice.
pub async fn run(
    client: &mut Client,
    store: &dyn ObjectStore,
    options: &ExtractOptions,
) -> Result<ExtractSummary, ExtractError> {
    let started = Instant::now();
    let previous = latest_manifest(store).await?;

    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|e| ExtractError::Snapshot { reason: error_text(&e) })?;
    // The snapshot is taken by this first statement; its transaction time is not later than it.
    let snapshot: NaiveDateTime = tx
        .query_one("SELECT LOCALTIMESTAMP::timestamp", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| ExtractError::Snapshot { reason: error_text(&e) })?;
    let snapshot_text = snapshot.format(CURSOR_TIME_FORMAT).to_string();
    if let Some(prev) = &previous
        && prev.snapshot_time >= snapshot_text
    {
        return Err(ExtractError::ClockWentBack { previous: prev.snapshot_time.clone(), now: snapshot_text });
    }
    let run_id = new_run_id(snapshot);
    let lag = chrono::Duration::from_std(options.safety_lag).unwrap_or(chrono::Duration::minutes(5));
    let lag_floor = snapshot - lag;

    let mut tables = Vec::with_capacity(SOURCE_TABLES.len());
    for table in SOURCE_TABLES {
        let cursor = previous.as_ref().and_then(|m| m.table(table.name)).map(|t| t.cursor.clone()).unwrap_or_default();
        let extract = extract_table(&tx, store, table, &run_id, &snapshot_text, cursor, lag_floor, options).await?;
        tables.push(extract);
    }
    tx.commit().await.map_err(|e| ExtractError::Snapshot { reason: error_text(&e) })?;

    let manifest = IngestionManifest {
        format: manifest::FORMAT,
        run_id: run_id.clone(),
        snapshot_time: snapshot_text,
        previous_run_id: previous.map(|p| p.run_id),
        safety_lag_seconds: options.safety_lag.as_secs(),
        tables,
    };
    let manifest_key = keys::manifest(&run_id);
    let body = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| ExtractError::BadManifest { key: manifest_key.clone(), reason: e.to_string() })?;
    store.put(&manifest_key, body).await?;
    Ok(ExtractSummary { manifest, manifest_key, duration: started.elapsed() })
}

/// Run ids sort in run order: the snapshot time to the millisecond, then a random suffix so that
/// an id is never reused.
fn new_run_id(snapshot: NaiveDateTime) -> String {
    format!("{}-{:04x}", snapshot.format("%Y%m%dT%H%M%S%3f"), rand::random::<u16>())
}

/// The `SELECT` that reads a table's rows as JSON objects, built from its description: NUMERIC as
/// exact strings, timestamps with milliseconds, NULL as null, text unchanged.
pub fn select_sql(table: &SourceTable, windowed: bool) -> String {
    let fields: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            let expr = match c.kind {
                Kind::Int | Kind::Text | Kind::Bool => format!("\"{}\"", c.name),
                Kind::Numeric => format!("\"{}\"::text", c.name),
                Kind::Timestamp => {
                    format!("to_char(\"{}\", 'YYYY-MM-DD\"T\"HH24:MI:SS.MS')", c.name)
                }
            };
            format!("'{}', {expr}", c.name)
        })
        .collect();
    let filter = if windowed { format!(" WHERE \"{LAST_UPDATED}\" >= $1") } else { String::new() };
    format!(
        "SELECT json_build_object({})::text, \"{key}\", \"{LAST_UPDATED}\" FROM \"{name}\"{filter} ORDER BY \"{LAST_UPDATED}\", \"{key}\"",
        fields.join(", "),
        key = table.key,
        name = table.name,
    )
}

fn parse_cursor_time(table: &'static str, text: &str) -> Result<NaiveDateTime, ExtractError> {
    NaiveDateTime::parse_from_str(text, CURSOR_TIME_FORMAT).map_err(|e| ExtractError::BadManifest {
        key: format!("cursor of {table}"),
        reason: format!("timestamp {text:?}: {e}"),
    })
}

#[allow(clippy::too_many_arguments)]
async fn extract_table(
    tx: &tokio_postgres::Transaction<'_>,
    store: &dyn ObjectStore,
    table: &'static SourceTable,
    run_id: &str,
    snapshot_text: &str,
    cursor: Cursor,
    lag_floor: NaiveDateTime,
    options: &ExtractOptions,
) -> Result<TableExtract, ExtractError> {
    let query_error = |e: tokio_postgres::Error| ExtractError::Query { table: table.name, reason: error_text(&e) };
    let cutoff = cursor.cutoff.as_deref().map(|c| parse_cursor_time(table.name, c)).transpose()?;
    let mut seen: HashSet<(i32, NaiveDateTime)> = HashSet::with_capacity(cursor.seen.len());
    for (key, at) in &cursor.seen {
        seen.insert((*key, parse_cursor_time(table.name, at)?));
    }
    let mut max_last_updated =
        cursor.max_last_updated.as_deref().map(|c| parse_cursor_time(table.name, c)).transpose()?;

    let sql = select_sql(table, cutoff.is_some());
    let rows = match &cutoff {
        Some(cutoff) => tx.query_raw(sql.as_str(), [cutoff]).await,
        None => tx.query_raw(sql.as_str(), std::iter::empty::<&NaiveDateTime>()).await,
    }
    .map_err(query_error)?;
    pin_mut!(rows);

    // Versions written at or after the candidate next cutoff (rows arrive in last_updated order).
    let mut tail: Vec<(i32, NaiveDateTime)> = Vec::new();
    let mut buffer: Vec<u8> = Vec::new();
    let mut objects = Vec::new();
    let mut written = 0u64;
    while let Some(row) = rows.try_next().await.map_err(query_error)? {
        let json: &str = row.try_get(0).map_err(query_error)?;
        let key: i32 = row.try_get(1).map_err(query_error)?;
        let last_updated: NaiveDateTime = row.try_get(2).map_err(query_error)?;
        if seen.contains(&(key, last_updated)) {
            continue;
        }
        buffer.extend_from_slice(json.as_bytes());
        buffer.push(b'\n');
        written += 1;
        if max_last_updated.is_none_or(|m| last_updated > m) {
            max_last_updated = Some(last_updated);
        }
        if last_updated < lag_floor && tail.last().is_some_and(|(_, t)| *t < last_updated) {
            tail.clear();
        }
        tail.push((key, last_updated));
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

    let next_cutoff = max_last_updated.map(|m| m.min(lag_floor));
    let mut next_seen: Vec<(i32, NaiveDateTime)> = seen.into_iter().chain(tail).collect();
    next_seen.retain(|(_, at)| next_cutoff.is_some_and(|c| *at >= c));
    next_seen.sort_unstable_by_key(|&(key, at)| (at, key));
    next_seen.dedup();
    let fmt = |t: NaiveDateTime| t.format(CURSOR_TIME_FORMAT).to_string();
    Ok(TableExtract {
        table: table.name.to_string(),
        window_from: cutoff.map(fmt),
        window_to: snapshot_text.to_string(),
        rows: written,
        objects,
        cursor: Cursor {
            max_last_updated: max_last_updated.map(fmt),
            cutoff: next_cutoff.map(fmt),
            seen: next_seen.into_iter().map(|(k, t)| (k, fmt(t))).collect(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::PAYMENT;

    #[test]
    fn select_reads_exact_text_for_numeric_and_millisecond_timestamps() {
        let sql = select_sql(&PAYMENT, true);
        assert!(sql.contains("'payment_amount', \"payment_amount\"::text"), "{sql}");
        assert!(sql.contains("to_char(\"created_at\", 'YYYY-MM-DD\"T\"HH24:MI:SS.MS')"), "{sql}");
        assert!(
            sql.ends_with("FROM \"payment\" WHERE \"last_updated\" >= $1 ORDER BY \"last_updated\", \"payment_id\"")
        );
        assert!(!select_sql(&PAYMENT, false).contains("$1"));
    }

    #[test]
    fn run_ids_sort_by_time_and_carry_their_partition() {
        let at = |s: &str| NaiveDateTime::parse_from_str(s, CURSOR_TIME_FORMAT).expect("time");
        let a = new_run_id(at("2026-11-28T06:40:12.123000"));
        let b = new_run_id(at("2026-11-28T06:40:12.124000"));
        assert!(a < b);
        assert_eq!(keys::partition(&a).as_deref(), Some("2026/11/28"));
    }
}
