//! Transform: ingestion runs → star-schema Parquet in the processed bucket, validated, in run
//! order, replay-safe.
//!
//! Each ingestion run becomes, in the processed bucket: one Parquet object per warehouse table with
//! rows, a quarantine object (if any row failed validation), the reference-state snapshot after
//! the run, and last the processed run manifest, which triggers the load. Output is a pure
//! function of the run and the previous state, so a repeated transform writes identical objects.

pub mod model;
pub mod requeue;
pub mod rows;
pub mod state;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use model::{InputLine, Level, Quarantined, RunBuilder, RunOutput};
pub use state::ReferenceState;

use crate::extract::IngestionManifest;
use crate::frames::{self, FrameError};
use crate::key_ranges::KeyRanges;
use crate::keys;
use crate::storage::{ObjectStore, StorageError, latest_manifest_key, manifest_run_ids};
use crate::tables::{SOURCE_TABLES, STAFF, SourceTable};
use crate::values::Cell;
use crate::warehouse::{WAREHOUSE_TABLES, WarehouseTable};

pub const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the processed manifest or state {key} is unreadable: {reason}")]
    BadProcessedObject { key: String, reason: String },
    #[error("the ingestion manifest {key} cannot be transformed: {reason}; the run stays pending")]
    BadIngestionManifest { key: String, reason: String },
    #[error("ingestion run {run_id} does not exist (no manifest at {key})")]
    UnknownRun { run_id: String, key: String },
    #[error(
        "run {run_id} quarantined nothing (its processed manifest {key} names no quarantine object): nothing to requeue"
    )]
    NothingToRequeue { run_id: String, key: String },
    #[error(
        "ingestion run {run_id}: object {object} could not be read ({source}); the run is not marked transformed and will be transformed when the object can be read"
    )]
    UnreadableObject { run_id: String, object: String, source: Box<StorageError> },
}

impl TransformError {
    pub fn is_retryable(&self) -> bool {
        match self {
            TransformError::Storage(e) => e.is_retryable(),
            TransformError::UnreadableObject { source, .. } => source.is_retryable(),
            _ => false,
        }
    }
}

/// What one run's transform wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessedManifest {
    pub format: u32,
    pub run_id: String,
    /// The ingestion manifest this was made from.
    pub source_manifest: String,
    pub previous_run_id: Option<String>,
    /// Every warehouse table, dimensions first; `objects` is empty for an empty delta.
    pub tables: Vec<ProcessedTable>,
    pub quarantined_rows: u64,
    pub quarantine_object: Option<String>,
    pub state_object: String,
    /// Always `None` since format 2 of the ingestion manifest: an unreadable manifest fails the
    /// run instead (kept so that older processed manifests still parse).
    #[serde(default)]
    pub problem: Option<String>,
    /// Set when an operator parked the run (`onyx park`): it carries no rows, on purpose.
    #[serde(default)]
    pub parked: Option<crate::runs::ParkRecord>,
    /// Rows loaded with a flagged attribute (`warning` lines of the quarantine object; not
    /// counted in `quarantined_rows`).
    #[serde(default)]
    pub flagged_rows: u64,
    /// Rows held for an unknown reference in the state after this run (counted in
    /// `quarantined_rows` in the run that first held them).
    #[serde(default)]
    pub held_rows: u64,
    /// Requeue requests (`_requeue/…`) this run consumed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requeue_requests: Vec<String>,
    /// Keys found deleted from the source by the extract's reconciliation, per warehouse table:
    /// the load marks their rows (`deleted_at`, `deleted_by_run`), it removes nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tombstones: Vec<Tombstones>,
    /// When the extract found them gone: its snapshot's time on the source's clock
    /// (`YYYY-MM-DDTHH:MM:SS.ffffff`); the deletes happened before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    /// The tombstones as Parquet for the lake (`tombstones/…`, see [`crate::lake::TOMBSTONES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstone_object: Option<String>,
}

/// The keys of one warehouse table whose source rows are gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstones {
    pub table: String,
    pub keys: KeyRanges,
}

/// The warehouse tables keyed by a source table's own key, which a delete of its rows marks
/// (`department` has none: its columns live on in `dim_staff`, whose rows are the staff's).
pub fn tombstoned_tables(source: &str) -> &'static [&'static WarehouseTable] {
    use crate::warehouse::*;
    match source {
        "currency" => &[&DIM_CURRENCY],
        "address" => &[&DIM_LOCATION],
        "counterparty" => &[&DIM_COUNTERPARTY],
        "staff" => &[&DIM_STAFF],
        "design" => &[&DIM_DESIGN],
        "payment_type" => &[&DIM_PAYMENT_TYPE],
        "transaction" => &[&DIM_TRANSACTION],
        "sales_order" => &[&FACT_SALES_ORDER],
        "purchase_order" => &[&FACT_PURCHASE_ORDER],
        "payment" => &[&FACT_PAYMENT],
        _ => &[],
    }
}

/// Writes a run's tombstones for the lake (nothing when there are none).
async fn write_tombstones(
    processed: &dyn ObjectStore,
    run_id: &str,
    deleted_at: &str,
    tombstones: &[Tombstones],
) -> Result<Option<String>, TransformError> {
    if tombstones.is_empty() {
        return Ok(None);
    }
    let at = deleted_at.replacen('T', " ", 1);
    let mut rows = Vec::new();
    for tombstone in tombstones {
        for &(from, to) in tombstone.keys.ranges() {
            // Source keys are INT; a range reaching past them is clipped to what a row can have.
            let clip = |k: i64| k.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
            rows.push(vec![
                Cell::text(&tombstone.table),
                Cell::Int(clip(from)),
                Cell::Int(clip(to)),
                Cell::text(run_id),
                Cell::text(&at),
            ]);
        }
    }
    let key = keys::processed_part(crate::lake::TOMBSTONES.name, run_id, 0);
    processed.put(&key, frames::to_parquet(&crate::lake::TOMBSTONES, &rows)?).await?;
    Ok(Some(key))
}

/// The tombstones of an ingestion run, per warehouse table. The state forgets the deleted
/// reference rows, and drops the held rows of deleted keys (listed as warnings: a held version
/// released later would make a deleted row current again).
fn tombstones_of(manifest: &IngestionManifest, state: &mut ReferenceState) -> (Vec<Tombstones>, Vec<Quarantined>) {
    let mut tombstones = Vec::new();
    let mut dropped = Vec::new();
    for table in manifest.tables.iter().filter(|t| !t.deleted.is_empty()) {
        state.forget_rows(&table.table, &table.deleted);
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut state.held)
            .into_iter()
            .partition(|h| h.table == table.table && h.key.is_some_and(|k| table.deleted.contains(k)));
        state.held = kept;
        dropped.extend(gone.into_iter().map(|held| Quarantined {
            table: held.table,
            source_object: held.source_object,
            line: held.line,
            key: held.key,
            column: held.column,
            reason: format!(
                "held ({}), then deleted from the source (found by run {}): dropped",
                held.reason, manifest.run_id
            ),
            row: Value::Object(held.row),
            level: model::Level::Warning,
            held: false,
            version_order: Some(held.version_order),
        }));
        for target in tombstoned_tables(&table.table) {
            tombstones.push(Tombstones { table: target.name.to_string(), keys: table.deleted.clone() });
        }
    }
    (tombstones, dropped)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessedTable {
    pub table: String,
    pub rows: u64,
    /// Parquet parts, in order (one per fact-source object read, so memory stays bounded).
    pub objects: Vec<String>,
}

impl ProcessedManifest {
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// The outcome for one run.
#[derive(Debug, Clone)]
pub struct TransformedRun {
    pub manifest: ProcessedManifest,
    pub manifest_key: String,
    pub duration: Duration,
}

/// Reads a JSON object from a bucket.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    store: &dyn ObjectStore,
    key: &str,
) -> Result<T, TransformError> {
    let bytes = store.get(key).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| TransformError::BadProcessedObject { key: key.to_string(), reason: e.to_string() })
}

/// The newest processed manifest, if any.
pub async fn latest_processed(processed: &dyn ObjectStore) -> Result<Option<ProcessedManifest>, TransformError> {
    match latest_manifest_key(processed).await? {
        Some(key) => Ok(Some(read_json(processed, &key).await?)),
        None => Ok(None),
    }
}

/// Ingestion run ids not transformed yet, oldest first.
pub async fn pending_runs(
    ingestion: &dyn ObjectStore,
    processed: &dyn ObjectStore,
) -> Result<Vec<String>, TransformError> {
    let last = latest_processed(processed).await?;
    Ok(manifest_run_ids(ingestion, last.as_ref().map(|m| m.run_id.as_str())).await?)
}

/// Transforms every pending run in order — or, with `up_to`, the pending runs up to and including
/// that one. A run already transformed is a no-op (an empty result).
pub async fn transform_pending(
    ingestion: &dyn ObjectStore,
    processed: &dyn ObjectStore,
    up_to: Option<&str>,
) -> Result<Vec<TransformedRun>, TransformError> {
    let last = latest_processed(processed).await?;
    if let (Some(target), Some(last)) = (up_to, &last)
        && target <= last.run_id.as_str()
    {
        // Already transformed (or, if it never existed, say so).
        let key = keys::manifest(target);
        return match processed.get(&key).await {
            Ok(_) => Ok(Vec::new()),
            Err(StorageError::NotFound { .. }) => Err(TransformError::UnknownRun { run_id: target.to_string(), key }),
            Err(e) => Err(e.into()),
        };
    }
    let mut pending = manifest_run_ids(ingestion, last.as_ref().map(|m| m.run_id.as_str())).await?;
    if let Some(target) = up_to {
        if !pending.iter().any(|r| r == target) {
            return Err(TransformError::UnknownRun { run_id: target.to_string(), key: keys::manifest(target) });
        }
        pending.retain(|r| r.as_str() <= target);
    }
    let mut state: ReferenceState = match &last {
        Some(manifest) => read_json(processed, &manifest.state_object).await?,
        None => ReferenceState::default(),
    };
    if state.format > state::FORMAT {
        return Err(TransformError::BadProcessedObject {
            key: last.as_ref().map(|m| m.state_object.clone()).unwrap_or_default(),
            reason: format!("state format {} is newer than this build understands ({})", state.format, state::FORMAT),
        });
    }
    // A state from before the calendar was kept (or after runs without a fact): take the extent
    // of the dim_date rows already written, so the next run closes any gap older runs left.
    if state.calendar.is_none() && last.is_some() {
        state.calendar_to_fill = dim_date_extent(processed).await?;
    }
    state.format = state::FORMAT;
    let mut previous = last.map(|m| m.run_id);
    let mut done = Vec::new();
    for run_id in pending {
        let run = match crate::runs::parking(processed, &run_id).await? {
            Some(park) => write_parked(ingestion, processed, &run_id, previous.as_deref(), &mut state, park).await?,
            None => match transform_one(ingestion, processed, &run_id, previous.as_deref(), &mut state).await {
                Ok(run) => run,
                Err(error) => {
                    if !error.is_retryable() {
                        crate::runs::report_blocking(processed, "transform", &run_id, &error).await;
                    }
                    return Err(error);
                }
            },
        };
        previous = Some(run_id);
        done.push(run);
    }
    Ok(done)
}

/// The first and last day of the `dim_date` rows in the processed bucket (for a state written
/// before the calendar was kept in it: once per bucket).
async fn dim_date_extent(
    processed: &dyn ObjectStore,
) -> Result<Option<(chrono::NaiveDate, chrono::NaiveDate)>, TransformError> {
    let table = &crate::warehouse::DIM_DATE;
    let mut extent: Option<(chrono::NaiveDate, chrono::NaiveDate)> = None;
    for key in processed.list(&format!("{}/", table.name), None).await? {
        for row in frames::from_parquet(table, processed.get(&key).await?)? {
            if let Some(Cell::Date(day)) = row.first() {
                extent = Some(extent.map_or((*day, *day), |(a, b)| (a.min(*day), b.max(*day))));
            }
        }
    }
    tracing::info!(
        stage = "transform",
        ?extent,
        "state without a calendar: dim_date's extent read from the processed bucket"
    );
    Ok(extent)
}

/// A parked run's processed manifest: no rows, the state unchanged, the park record carried so
/// the load records it too. Its tombstones are kept: later runs never report those deletes again,
/// and marking a row cannot fail on its content.
async fn write_parked(
    ingestion: &dyn ObjectStore,
    processed: &dyn ObjectStore,
    run_id: &str,
    previous: Option<&str>,
    state: &mut ReferenceState,
    park: crate::runs::ParkRecord,
) -> Result<TransformedRun, TransformError> {
    let started = Instant::now();
    tracing::warn!(stage = "transform", run_id, reason = park.reason, by = park.by, "run is parked: passed over");
    let source_manifest = keys::manifest(run_id);
    let (tombstones, deleted_at) = match ingestion.get(&source_manifest).await {
        Ok(bytes) => match serde_json::from_slice::<IngestionManifest>(&bytes) {
            // A parked run writes no quarantine: what it drops from the held rows is logged.
            Ok(manifest) => {
                let (tombstones, dropped) = tombstones_of(&manifest, state);
                for entry in dropped {
                    tracing::warn!(stage = "transform", run_id, table = entry.table, key = ?entry.key, "{}", entry.reason);
                }
                (tombstones, Some(manifest.snapshot_time))
            }
            Err(_) => (Vec::new(), None),
        },
        Err(_) => (Vec::new(), None),
    };
    let tombstone_object =
        write_tombstones(processed, run_id, deleted_at.as_deref().unwrap_or_default(), &tombstones).await?;
    state.after_run = Some(run_id.to_string());
    let state_object = keys::state(run_id);
    processed.put(&state_object, to_json(state, &state_object)?).await?;
    let manifest = ProcessedManifest {
        format: FORMAT,
        run_id: run_id.to_string(),
        source_manifest: keys::manifest(run_id),
        previous_run_id: previous.map(str::to_string),
        tables: PartWriter { processed, run_id, tables: BTreeMap::new() }.finish(),
        quarantined_rows: 0,
        quarantine_object: None,
        state_object,
        problem: None,
        parked: Some(park),
        held_rows: state.held.len() as u64,
        deleted_at: deleted_at.filter(|_| !tombstones.is_empty()),
        tombstones,
        tombstone_object,
        ..ProcessedManifest::default()
    };
    let manifest_key = keys::manifest(run_id);
    processed.put(&manifest_key, to_json(&manifest, &manifest_key)?).await?;
    Ok(TransformedRun { manifest, manifest_key, duration: started.elapsed() })
}

/// The lines of one extracted object. Only content is quarantined: an object that is not UTF-8
/// text becomes one quarantined entry and the run proceeds. A storage failure (NotFound,
/// AccessDenied, a disabled key, any [`StorageError`]) is about the run, not a row: it fails the
/// run, naming the object, so that no processed manifest records the run as done.
async fn read_object(
    ingestion: &dyn ObjectStore,
    run_id: &str,
    table: &'static SourceTable,
    object: &str,
) -> Result<Result<String, Quarantined>, TransformError> {
    let bytes = ingestion.get(object).await.map_err(|source| TransformError::UnreadableObject {
        run_id: run_id.to_string(),
        object: object.to_string(),
        source: Box::new(source),
    })?;
    Ok(String::from_utf8(bytes).map_err(|e| Quarantined {
        table: table.name.to_string(),
        source_object: object.to_string(),
        line: 0,
        key: None,
        column: None,
        reason: format!("the object could not be read: not UTF-8 text: {e}"),
        row: Value::Null,
        level: model::Level::Error,
        held: false,
        version_order: None,
    }))
}

/// Rows of a fact-source object parsed and applied at a time (see `transform_one`).
const LINES_PER_CHUNK: usize = 5_000;

/// One line of an ingestion object (`line` is 1-based in the object).
fn parse_line(object: &str, line: usize, position: u64, text: &str) -> InputLine {
    let parsed = serde_json::from_str::<Map<String, Value>>(text).map_err(|e| {
        // Keep the raw text for the operator when the line is not JSON.
        format!("{e}; raw line: {}", text.chars().take(500).collect::<String>())
    });
    InputLine { object: object.to_string(), line, position, parsed }
}

/// Writes the Parquet parts of a run's finished rows, numbering parts per table.
struct PartWriter<'a> {
    processed: &'a dyn ObjectStore,
    run_id: &'a str,
    tables: BTreeMap<&'static str, ProcessedTable>,
}

impl PartWriter<'_> {
    async fn write(&mut self, rows: BTreeMap<&'static str, Vec<Vec<Cell>>>) -> Result<(), TransformError> {
        for (name, rows) in rows {
            let Some(table) = WarehouseTable::named(name) else { continue };
            let entry = self.tables.entry(table.name).or_insert_with(|| ProcessedTable {
                table: table.name.to_string(),
                rows: 0,
                objects: Vec::new(),
            });
            let key = keys::processed_part(table.name, self.run_id, entry.objects.len());
            self.processed.put(&key, frames::to_parquet(table, &rows)?).await?;
            entry.rows += rows.len() as u64;
            entry.objects.push(key);
        }
        Ok(())
    }

    /// Every warehouse table in load order, empty ones included.
    fn finish(mut self) -> Vec<ProcessedTable> {
        WAREHOUSE_TABLES
            .iter()
            .map(|t| {
                self.tables.remove(t.name).unwrap_or_else(|| ProcessedTable {
                    table: t.name.to_string(),
                    rows: 0,
                    objects: Vec::new(),
                })
            })
            .collect()
    }
}

async fn transform_one(
    ingestion: &dyn ObjectStore,
    processed: &dyn ObjectStore,
    run_id: &str,
    previous: Option<&str>,
    state: &mut ReferenceState,
) -> Result<TransformedRun, TransformError> {
    let started = Instant::now();
    let source_manifest = keys::manifest(run_id);
    let mut quarantine = Vec::new();
    let mut parts = PartWriter { processed, run_id, tables: BTreeMap::new() };
    let mut builder = RunBuilder::for_run(run_id);
    let bytes = ingestion.get(&source_manifest).await?;
    // A manifest that cannot be read is about the run, not a row: the run fails and stays
    // pending (it is never recorded as done).
    let manifest = serde_json::from_slice::<IngestionManifest>(&bytes)
        .map_err(|e| TransformError::BadIngestionManifest { key: source_manifest.clone(), reason: e.to_string() })?;
    if manifest.format > crate::extract::manifest::FORMAT {
        return Err(TransformError::BadIngestionManifest {
            key: source_manifest,
            reason: format!(
                "format {} is newer than this build understands ({}); upgrade Onyx",
                manifest.format,
                crate::extract::manifest::FORMAT
            ),
        });
    }
    let (tombstones, dropped) = tombstones_of(&manifest, state);
    quarantine.extend(dropped);
    // Operators' requeue requests not consumed yet: their lines are applied with the held ones.
    let (requests, requeued) = requeue::pending(processed, state).await?;
    let mut requeued_by_table: BTreeMap<String, Vec<model::Requeued>> = BTreeMap::new();
    for line in requeued {
        requeued_by_table.entry(line.entry.table.clone()).or_default().push(line);
    }
    for table in SOURCE_TABLES {
        // Rows applied again come before the run's own rows of the table: they were read first.
        builder.release_held(state, table);
        builder.apply_requeued(state, table, requeued_by_table.remove(table.name).unwrap_or_default());
        let objects = manifest.table(table.name).map(|t| t.objects.as_slice()).unwrap_or_default();
        let mut position = 0u64;
        let fact_source = !state::REFERENCE_TABLES.contains(&table.name);
        for object in objects {
            let text = match read_object(ingestion, run_id, table, object).await? {
                Ok(text) => text,
                Err(unreadable) => {
                    quarantine.push(unreadable);
                    continue;
                }
            };
            // Parsed rows take ~10× their text: a fact-source object is parsed, applied and
            // written a chunk at a time, so memory is bounded by the chunk, not the object.
            let chunk_lines = if fact_source { LINES_PER_CHUNK } else { usize::MAX };
            let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
            loop {
                let chunk: Vec<InputLine> = lines
                    .by_ref()
                    .take(chunk_lines)
                    .zip(position..)
                    .map(|((i, line), position)| parse_line(object, i + 1, position, line))
                    .collect();
                if chunk.is_empty() {
                    break;
                }
                position += chunk.len() as u64;
                builder.apply_lines(state, table, chunk);
                if fact_source {
                    parts.write(builder.take_rows()).await?;
                }
            }
        }
        if table.name == STAFF.name {
            builder.after_reference_tables(state);
        }
    }
    let output = builder.finish(state);
    parts.write(output.tables).await?;
    quarantine.extend(output.quarantine);
    state.after_run = Some(run_id.to_string());
    if let Some(last) = requests.last() {
        state.requeue_after = Some(last.clone());
    }
    let tables = parts.finish();

    let quarantine_object = if quarantine.is_empty() {
        None
    } else {
        let key = keys::quarantine(run_id);
        let mut body = Vec::new();
        for entry in &quarantine {
            body.extend(serde_json::to_vec(entry).unwrap_or_default());
            body.push(b'\n');
        }
        processed.put(&key, body).await?;
        Some(key)
    };
    let tombstone_object = write_tombstones(processed, run_id, &manifest.snapshot_time, &tombstones).await?;
    let state_object = keys::state(run_id);
    processed.put(&state_object, to_json(state, &state_object)?).await?;
    let manifest = ProcessedManifest {
        format: FORMAT,
        run_id: run_id.to_string(),
        source_manifest,
        previous_run_id: previous.map(str::to_string),
        tables,
        quarantined_rows: quarantine.iter().filter(|q| q.level == model::Level::Error).count() as u64,
        quarantine_object,
        state_object,
        problem: None,
        parked: None,
        flagged_rows: quarantine.iter().filter(|q| q.level == model::Level::Warning).count() as u64,
        held_rows: state.held.len() as u64,
        requeue_requests: requests,
        deleted_at: Some(manifest.snapshot_time.clone()).filter(|_| !tombstones.is_empty()),
        tombstones,
        tombstone_object,
    };
    let manifest_key = keys::manifest(run_id);
    processed.put(&manifest_key, to_json(&manifest, &manifest_key)?).await?;
    if manifest.quarantined_rows > 0 || manifest.problem.is_some() {
        let mut per_table: BTreeMap<&str, u64> = BTreeMap::new();
        for entry in quarantine.iter().filter(|q| q.level == model::Level::Error) {
            *per_table.entry(entry.table.as_str()).or_default() += 1;
        }
        tracing::error!(
            stage = "transform",
            data_quality = true,
            run_id,
            quarantined_rows = manifest.quarantined_rows,
            per_table = %serde_json::json!(per_table),
            quarantine_object = manifest.quarantine_object.as_deref().unwrap_or("-"),
            problem = manifest.problem.as_deref().unwrap_or("-"),
            "rows were quarantined; the rest of the run proceeded"
        );
    }
    Ok(TransformedRun { manifest, manifest_key, duration: started.elapsed() })
}

fn to_json<T: Serialize>(value: &T, key: &str) -> Result<Vec<u8>, TransformError> {
    serde_json::to_vec_pretty(value)
        .map_err(|e| TransformError::BadProcessedObject { key: key.to_string(), reason: e.to_string() })
}
