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
pub mod continuity;
mod json_line;
pub mod manifest;
pub mod reconcile;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::{TryStreamExt, pin_mut};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, IsolationLevel, Transaction};

pub use manifest::{
    IngestionManifest, PassWindow, PendingRead, SchemaChange, SourceColumn, SourceSnapshot, TableExtract,
};

use crate::db::{DbError, error_text, quote_ident};
use crate::key_ranges::KeyRanges;
use crate::keys;
use crate::storage::{ObjectStore, StorageError, latest_manifest_key};
use crate::tables::{SOURCE_TABLES, SourceTable};
use json_line::{Encoding, LineLayout};

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
    /// The most row versions one run carries (`ONYX_MAX_RUN_ROWS`): more pending (a first
    /// load, a large backlog) is delivered by consecutive runs, so every stage of every run
    /// stays within one invocation's time and memory. See [`PendingRead`].
    pub max_run_rows: u64,
    /// How often a run reconciles keys to find deleted rows (`ONYX_RECONCILE_EVERY`, see
    /// [`reconcile`]); zero: every run.
    pub reconcile_every: Duration,
}

/// `ONYX_MAX_RUN_ROWS`'s default: ~15 s per stage at the measured rates (release build, 2
/// cores), far inside a 15-minute Lambda, and a transform that never holds more than one object.
pub const DEFAULT_MAX_RUN_ROWS: u64 = 500_000;

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            source_timezone: "UTC".into(),
            max_object_bytes: 16 * 1024 * 1024,
            claim_lease: Duration::from_secs(20 * 60),
            max_run_rows: DEFAULT_MAX_RUN_ROWS,
            reconcile_every: reconcile::DEFAULT_RECONCILE_EVERY,
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
    let wal = continuity::wal_position(client).await;
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

    let mut window = read_window(previous, &snapshot, &identity);
    let next_xid = age_reference(&tx, &snapshot).await?;
    let catalog = read_catalog(&tx).await?;
    let mut witnesses = continuity::WitnessSet::default();
    // A different history, by what the server says of itself (identity, WAL, counter) ...
    let mut discontinuity = previous.and_then(|p| {
        p.continuity
            .as_ref()
            .and_then(|c| continuity::wal_discontinuity(&p.run_id, c, wal))
            .or_else(|| changed_history(p, &snapshot, &identity).map(|r| format!("source continuity broken: {r}")))
    });
    if let Some(reason) = &discontinuity {
        tracing::error!(
            stage = "extract",
            data_quality = true,
            run_id,
            previous_run = previous.map(|p| p.run_id.as_str()).unwrap_or("-"),
            reason = %reason,
            "{reason}: reading every row of every table once, so that nothing is lost"
        );
        window = ReadWindow::All { reason: Some(reason.clone()) };
    }
    // ... or by the newest row versions the previous run saw.
    if let (ReadWindow::Since { from }, Some(previous)) = (&window, previous)
        && let Some(before) = &previous.continuity
    {
        let (from, skip) = (*from, previous.seen_transactions.as_slice());
        let reads = |xid: u64| xid >= from && skip.binary_search(&xid).is_err();
        let present = |name: &str| catalog.get(name).is_some_and(|c| !c.is_empty());
        let (broken, in_place) = continuity::check(&tx, &previous.run_id, before, &snapshot, reads, present)
            .await
            .map_err(|reason| ExtractError::Query { table: "(continuity witnesses)".into(), reason })?;
        match broken {
            Some(reason) => {
                tracing::error!(
                    stage = "extract",
                    data_quality = true,
                    run_id,
                    previous_run = %previous.run_id,
                    reason = %reason,
                    "{reason}: reading every row of every table once, so that nothing is lost"
                );
                discontinuity = Some(reason.clone());
                window = ReadWindow::All { reason: Some(reason) };
            }
            None => in_place.iter().for_each(|w| witnesses.keep(w)),
        }
    }
    if let ReadWindow::All { reason: Some(reason) } = &window
        && discontinuity.is_none()
    {
        tracing::warn!(stage = "extract", run_id, reason, "reading every row of every table once");
    }

    // What the previous run saw is only meaningful against its own snapshot: a full read (a
    // different or restored database, say) skips nothing.
    let mut changes: Option<PassWindow> = match (&window, previous) {
        (ReadWindow::Since { from }, Some(previous)) => {
            Some(PassWindow { from: *from, skip: previous.seen_transactions.clone(), before: None })
        }
        _ => None,
    };
    let reader = TableReader { tx: &tx, store, run_id, snapshot: &snapshot, next_xid, options };
    // A pass always advances by at least this much, however many changes the run also carries.
    let least_page = (options.max_run_rows / 4).max(1);
    // Changes beyond the cap are cut at a transaction boundary (see `backlog_cut`) and the tables
    // read again from the first: objects of the discarded attempt stay unreferenced, numbered
    // below the next attempt's.
    let mut first_part = 0;
    let (mut tables, seen, pass, delivered_now) = 'attempt: loop {
        let mut pass = initial_pass(&window, previous, &snapshot, run_id)?;
        // Transactions the next run's window still covers (at or after this snapshot's xmin, or
        // the backlog's cut if earlier) that earlier runs wrote stay seen for the next run.
        let next_start = changes.as_ref().and_then(|c| c.before).map_or(snapshot.xmin, |cut| cut.min(snapshot.xmin));
        let mut seen: BTreeSet<u64> =
            changes.iter().flat_map(|c| c.skip.iter().copied()).filter(|x| *x >= next_start).collect();
        let mut budget = options.max_run_rows;
        // A cut window fits by construction; otherwise the changes are read up to the cap
        // (leaving a pass its least page).
        let change_cap = match (&changes, &pass) {
            (Some(w), _) if w.before.is_some() => None,
            (_, Some(_)) => Some(options.max_run_rows.saturating_sub(least_page)),
            _ => Some(options.max_run_rows),
        };
        let mut change_rows = 0u64;
        let mut paged = false;
        let mut tables = Vec::with_capacity(SOURCE_TABLES.len());
        let mut delivered = BTreeMap::new();
        for (index, table) in SOURCE_TABLES.iter().copied().enumerate() {
            let Some(columns) = catalog.get(table.name).filter(|c| !c.is_empty()) else {
                if let Some(pass) = pass.as_mut().filter(|p| p.index == index) {
                    pass.index += 1;
                    pass.after_key = None;
                }
                tables.push(TableExtract {
                    table: table.name.into(),
                    rows: 0,
                    objects: Vec::new(),
                    columns: Vec::new(),
                    deleted: KeyRanges::default(),
                });
                continue;
            };
            let mut out = TableOutput::new(table, columns, first_part);
            // The changes of this table the run carries (`range`: the part a pass delivered).
            let range = match pass.as_ref() {
                None => Some(KeyRange::Whole),
                Some(pass) if index < pass.index => Some(KeyRange::Whole),
                Some(pass) if index == pass.index => pass.after_key.map(KeyRange::UpTo),
                Some(_) => None,
            };
            if let Some(range) = range
                && (changes.is_some() || pass.is_none())
            {
                let limit = change_cap.map(|cap| cap.saturating_sub(change_rows));
                let outcome = reader.read(&mut out, changes.as_ref(), range, limit).await?;
                if outcome.more {
                    if let Some(window) = changes.as_ref()
                        && let Some(cut) = backlog_cut(&tx, &catalog, window, next_xid, change_cap.unwrap_or(0)).await?
                    {
                        tracing::warn!(
                            stage = "extract",
                            run_id,
                            max_run_rows = options.max_run_rows,
                            delivered_before = cut,
                            "more changes than one run carries: delivering them over consecutive runs, whole transactions, oldest first"
                        );
                        changes = Some(PassWindow { before: Some(cut), ..window.clone() });
                        first_part += 1000;
                        continue 'attempt;
                    }
                    if pass.is_none() {
                        // The oldest transaction alone exceeds the cap: the changes go out in
                        // key order over consecutive runs.
                        tracing::warn!(
                            stage = "extract",
                            run_id,
                            table = table.name,
                            max_run_rows = options.max_run_rows,
                            "one transaction carries more changes than a run: delivering them over consecutive runs, in key order"
                        );
                        out.discard();
                        let mut started = Pass {
                            window: changes.clone(),
                            index,
                            after_key: None,
                            started_by: run_id.to_string(),
                            reason: format!(
                                "the changes since run {} exceed ONYX_MAX_RUN_ROWS ({}) at table {}, in one transaction",
                                previous.map(|p| p.run_id.as_str()).unwrap_or("-"),
                                options.max_run_rows,
                                table.name
                            ),
                        };
                        budget = reader.page(&mut out, &mut started, budget).await?;
                        paged = true;
                        pass = Some(started);
                        seen.extend(out.seen.iter().copied());
                        witnesses.absorb(std::mem::take(&mut out.witnesses));
                        tables.push(out.finish(store, run_id, &mut delivered).await?);
                        continue;
                    }
                    // Inside a pass, one transaction larger than the changes' share: read it whole.
                    let rest = reader.read(&mut out, changes.as_ref(), range, None).await?;
                    change_rows += rest.rows;
                    budget = budget.saturating_sub(rest.rows);
                } else {
                    change_rows += outcome.rows;
                    budget = budget.saturating_sub(outcome.rows);
                }
            }
            if let Some(pass) = pass.as_mut().filter(|p| p.index == index) {
                // The least page once per run: a table finished within the budget hands on only
                // what is left of it.
                let floor = if paged { 0 } else { least_page };
                budget = reader.page(&mut out, pass, budget.max(floor)).await?;
                paged = true;
            }
            seen.extend(out.seen.iter().copied());
            witnesses.absorb(std::mem::take(&mut out.witnesses));
            tables.push(out.finish(store, run_id, &mut delivered).await?);
        }
        break (tables, seen, pass, delivered);
    };
    let delivered_before = changes.as_ref().and_then(|w| w.before);
    let pending = pass.filter(|p| p.index < SOURCE_TABLES.len()).map(|p| PendingRead {
        started_by: p.started_by,
        reason: p.reason,
        window: p.window,
        table: SOURCE_TABLES[p.index].name.to_string(),
        after_key: p.after_key,
    });
    let reconciling = reconcile::due(previous, Utc::now(), options.reconcile_every, discontinuity.is_some());
    let reconcile_started = Instant::now();
    let delivered_keys = reconcile_keys(&tx, &catalog, previous, &mut tables, delivered_now, reconciling).await?;
    let deleted: u64 = tables.iter().map(|t| t.deleted.len()).sum();
    if reconciling {
        tracing::info!(
            stage = "extract",
            run_id,
            deleted_rows = deleted,
            reconcile_ms = reconcile_started.elapsed().as_millis() as u64,
            "keys reconciled: {deleted} delivered row(s) are gone from the source (tombstones for the warehouse)"
        );
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
        format: match (deleted > 0, delivered_before.is_some()) {
            (true, _) => manifest::FORMAT,
            (false, true) => 4,
            (false, false) => 3,
        },
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
        pending,
        continuity: Some(continuity::Continuity {
            timeline: wal.0,
            wal_position: wal.1,
            witnesses: witnesses.into_witnesses(),
        }),
        source_discontinuity: discontinuity,
        delivered_before,
        delivered_keys: Some(delivered_keys),
        keys_reconciled_by: if reconciling {
            Some(run_id.to_string())
        } else {
            previous.and_then(|p| p.keys_reconciled_by.clone())
        },
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

/// The keys delivered so far per table (the previous run's and this run's), less the keys a
/// reconciliation finds gone, which it records as the tables' `deleted` keys.
async fn reconcile_keys(
    tx: &Transaction<'_>,
    catalog: &BTreeMap<String, Vec<CatalogColumn>>,
    previous: Option<&IngestionManifest>,
    tables: &mut [TableExtract],
    mut delivered_now: BTreeMap<&'static str, KeyRanges>,
    reconciling: bool,
) -> Result<BTreeMap<String, KeyRanges>, ExtractError> {
    if reconciling {
        // Short grouped scans: compiling them costs more than it saves. The run reads nothing after.
        tx.batch_execute("SET LOCAL jit = off")
            .await
            .map_err(|e| ExtractError::Query { table: "(key reconciliation)".into(), reason: error_text(&e) })?;
    }
    let mut delivered_keys = BTreeMap::new();
    for (table, extract) in SOURCE_TABLES.iter().copied().zip(tables.iter_mut()) {
        let query = |reason: String| ExtractError::Query { table: table.name.into(), reason };
        // A table missing from the source is a schema change (reported), not every row deleted.
        let present = catalog.get(table.name).is_some_and(|c| !c.is_empty());
        let before = if present {
            reconcile::delivered_before(tx, table, previous).await.map_err(query)?
        } else {
            previous.and_then(|p| p.delivered_keys.as_ref()?.get(table.name).cloned()).unwrap_or_default()
        };
        let mut keys = before.union(&delivered_now.remove(table.name).unwrap_or_default());
        if reconciling && present {
            extract.deleted = reconcile::gone(tx, table, &keys).await.map_err(query)?;
            keys = keys.difference(&extract.deleted);
        }
        delivered_keys.insert(table.name.to_string(), keys);
    }
    Ok(delivered_keys)
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
    if let Some(reason) = changed_history(previous, now, identity) {
        return ReadWindow::All { reason: Some(reason) };
    }
    let Some(before) = &previous.snapshot else {
        return ReadWindow::All {
            reason: Some(format!(
                "the previous run {} predates snapshot tracking (manifest format {}); versions it already wrote are written again once",
                previous.run_id, previous.format
            )),
        };
    };
    let start = previous.next_window_start().unwrap_or(before.xmin);
    if now.xmax.saturating_sub(start) >= XID_WINDOW_LIMIT {
        return ReadWindow::All {
            reason: Some(format!(
                "{} transactions since the previous run's oldest open transaction: too many to place 32-bit ids safely",
                now.xmax.saturating_sub(start)
            )),
        };
    }
    ReadWindow::Since { from: start }
}

/// Why the server is not the database history the previous run read, by what it says of itself:
/// another identity (system identifier, database oid), or a transaction counter behind the
/// previous run's (a restore or failover that lost transactions). Their ids do not compare.
fn changed_history(previous: &IngestionManifest, now: &SourceSnapshot, identity: &str) -> Option<String> {
    if let Some(before) = &previous.source_identity
        && !same_source(before, identity)
    {
        return Some(format!(
            "the source is not the database the previous run read ({before} → {identity}): its transaction ids do not compare"
        ));
    }
    let before = previous.snapshot.as_ref()?;
    (now.xmax < before.xmax).then(|| {
        format!(
            "the source's transaction counter ({}) is behind the previous run's ({}): it is a different or restored database",
            now.xmax, before.xmax
        )
    })
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
/// `low ≤ age ≤ span` (older rows, and rows frozen before 9.4, fall outside; `low` above 0 leaves
/// out the transactions from a backlog's cut on), and `seen` holds the
/// ages of transactions to leave out. CASE fixes the order of evaluation. Used by the extract
/// (what is new) and by `verify` (what is in flight).
pub fn unseen_by_snapshot_sql(xmin: &str, low: &str, span: &str, seen: &str) -> String {
    format!("CASE WHEN age({xmin}) BETWEEN {low} AND {span} THEN NOT (age({xmin}) = ANY({seen})) ELSE false END")
}

/// The smallest `age()` a window reads: 0, or past its cut (`xid < before` ⇔ `age > next − before`).
fn window_low(next_xid: u64, window: &PassWindow) -> i32 {
    window.before.map_or(0, |before| (next_xid + 1).saturating_sub(before).min(i32::MAX as u64) as i32)
}

/// Where a backlog of changes larger than `budget` rows is cut: the first transaction (in id
/// order, over every table) whose rows no longer fit, so that the run carries whole transactions,
/// oldest first. `None` when even the oldest transaction alone is larger than the budget (it is
/// then delivered in key order over several runs: the one exception to whole transactions).
async fn backlog_cut(
    tx: &Transaction<'_>,
    catalog: &BTreeMap<String, Vec<CatalogColumn>>,
    window: &PassWindow,
    next_xid: u64,
    budget: u64,
) -> Result<Option<u64>, ExtractError> {
    let filter = unseen_by_snapshot_sql("xmin", "$3::int4", "$1::int4", "$2::int4[]");
    let per_table: Vec<String> = SOURCE_TABLES
        .iter()
        .filter(|t| catalog.get(t.name).is_some_and(|c| !c.is_empty()))
        .map(|t| {
            format!("SELECT age(xmin) AS age, count(*) AS n FROM {} WHERE {filter} GROUP BY 1", quote_ident(t.name))
        })
        .collect();
    // Ascending transaction id is descending age; the running total says where the cap is hit.
    let sql = format!(
        "WITH per_transaction AS (SELECT age, sum(n) AS n FROM ({}) AS u GROUP BY age),
              running AS (SELECT age, sum(n) OVER (ORDER BY age DESC) AS total FROM per_transaction)
         SELECT age, age = (SELECT max(age) FROM per_transaction) FROM running
         WHERE total > $4::int8 ORDER BY age DESC LIMIT 1",
        per_table.join(" UNION ALL ")
    );
    let span = next_xid.saturating_sub(window.from) as i32;
    let skip: Vec<i32> = window.skip.iter().map(|x| next_xid.saturating_sub(*x) as i32).collect();
    let low = window_low(next_xid, window);
    let limit = i64::try_from(budget).unwrap_or(i64::MAX);
    let row = tx
        .query_opt(sql.as_str(), &[&span, &skip, &low, &limit])
        .await
        .map_err(|e| ExtractError::Query { table: "(backlog by transaction)".into(), reason: error_text(&e) })?;
    Ok(row.and_then(|row| {
        let (age, oldest): (i32, bool) = (row.get(0), row.get(1));
        (!oldest).then(|| next_xid - age as u64)
    }))
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

/// Which keys of a table a read covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyRange {
    Whole,
    /// Keys up to and including this one (the part a pass has delivered).
    UpTo(i64),
    /// Keys after this one (or all), in key order, at most `n` rows: the next page of a pass.
    Page {
        after: Option<i64>,
        rows: u64,
    },
}

/// The `SELECT` that reads a table's rows: every column the source has (in catalog order, each
/// as its [`Encoding`] reads it; the JSON line is written from them), then the writing
/// transaction's id and the row's key. Parameters, in order: with `windowed`, `$1` how far back
/// from the `age()` reference to read and `$2` the ages of the transactions to leave out; then
/// the key bound and the page size when `range` has them.
fn select_sql(table: &SourceTable, columns: &[CatalogColumn], windowed: bool, range: KeyRange) -> String {
    let mut select: Vec<String> =
        columns.iter().map(|c| Encoding::of(c.base_type).select_expr(&quote_ident(&c.column.name))).collect();
    let key = quote_ident(table.key);
    let mut filters = Vec::new();
    let mut next_param = 1;
    if windowed {
        filters.push(unseen_by_snapshot_sql("xmin", "$3::int4", "$1::int4", "$2::int4[]"));
        next_param = 4;
    }
    let mut tail = String::new();
    match range {
        KeyRange::Whole => {}
        KeyRange::UpTo(_) => filters.push(format!("{key} <= ${next_param}::int8")),
        KeyRange::Page { after, .. } => {
            if after.is_some() {
                filters.push(format!("{key} > ${next_param}::int8"));
                next_param += 1;
            }
            tail = format!(" ORDER BY {key} LIMIT ${next_param}::int8");
        }
    }
    let filter = if filters.is_empty() { String::new() } else { format!(" WHERE {}", filters.join(" AND ")) };
    // No ORDER BY outside pages: a run holds one version per row, so order carries no meaning,
    // and ordering by key would make the planner walk the whole primary-key index instead of one
    // sequential scan.
    select.push("xmin::text::int8".into());
    select.push(format!("{key}::int8"));
    format!("SELECT {} FROM {}{filter}{tail}", select.join(", "), quote_ident(table.name))
}

/// A read delivered over several runs, as this run advances it (see [`PendingRead`]).
#[derive(Debug, Clone)]
struct Pass {
    window: Option<PassWindow>,
    /// The first table (in `SOURCE_TABLES`) not completely delivered.
    index: usize,
    after_key: Option<i64>,
    started_by: String,
    reason: String,
}

/// The pass this run works on: a new one for a full read (it reads every table from its first
/// key), the previous run's unfinished one, or none (the run carries every change).
fn initial_pass(
    window: &ReadWindow,
    previous: Option<&IngestionManifest>,
    snapshot: &SourceSnapshot,
    run_id: &str,
) -> Result<Option<Pass>, ExtractError> {
    let full = |reason: String| Pass { window: None, index: 0, after_key: None, started_by: run_id.into(), reason };
    match (window, previous.and_then(|p| p.pending.as_ref().map(|pending| (p, pending)))) {
        (ReadWindow::All { reason }, _) => Ok(Some(full(reason.clone().unwrap_or_else(|| "first run".into())))),
        (ReadWindow::Since { .. }, None) => Ok(None),
        (ReadWindow::Since { .. }, Some((previous, pending))) => {
            let index = SOURCE_TABLES.iter().position(|t| t.name == pending.table).ok_or_else(|| {
                ExtractError::BadManifest {
                    key: keys::manifest(&previous.run_id),
                    reason: format!(
                        "its pending read continues at table {:?}, which Onyx does not model",
                        pending.table
                    ),
                }
            })?;
            if let Some(pass_window) = &pending.window
                && snapshot.xmax.saturating_sub(pass_window.from) >= XID_WINDOW_LIMIT
            {
                return Ok(Some(full(format!(
                    "the pass started by run {} spans too many transactions to place 32-bit ids safely",
                    pending.started_by
                ))));
            }
            Ok(Some(Pass {
                window: pending.window.clone(),
                index,
                after_key: pending.after_key,
                started_by: pending.started_by.clone(),
                reason: pending.reason.clone(),
            }))
        }
    }
}

/// What one read of a table brought.
#[derive(Debug, Clone, Copy)]
struct ReadOutcome {
    rows: u64,
    last_key: Option<i64>,
    /// The read stopped at its limit with rows left.
    more: bool,
}

/// The rows a run writes for one table: JSON Lines objects of about `max_object_bytes`.
struct TableOutput<'a> {
    table: &'static SourceTable,
    columns: &'a [CatalogColumn],
    buffer: Vec<u8>,
    objects: Vec<String>,
    /// Part numbers only grow: a discarded read's objects are never overwritten.
    next_part: usize,
    rows: u64,
    seen: BTreeSet<u64>,
    /// The newest row versions read (see [`continuity`]).
    witnesses: continuity::WitnessSet,
    /// The keys of the rows written (see [`reconcile`]).
    keys: Vec<i64>,
}

impl<'a> TableOutput<'a> {
    fn new(table: &'static SourceTable, columns: &'a [CatalogColumn], first_part: usize) -> Self {
        Self {
            table,
            columns,
            buffer: Vec::new(),
            objects: Vec::new(),
            next_part: first_part,
            rows: 0,
            seen: BTreeSet::new(),
            witnesses: continuity::WitnessSet::default(),
            keys: Vec::new(),
        }
    }

    async fn push(
        &mut self,
        store: &dyn ObjectStore,
        run_id: &str,
        json: &[u8],
        max_bytes: usize,
    ) -> Result<(), ExtractError> {
        self.buffer.extend_from_slice(json);
        self.buffer.push(b'\n');
        self.rows += 1;
        if self.buffer.len() >= max_bytes {
            self.flush(store, run_id).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, store: &dyn ObjectStore, run_id: &str) -> Result<(), ExtractError> {
        if !self.buffer.is_empty() {
            let object = keys::extract_part(self.table.name, run_id, self.next_part);
            store.put(&object, std::mem::take(&mut self.buffer)).await?;
            self.objects.push(object);
            self.next_part += 1;
        }
        Ok(())
    }

    /// Forgets what was read so far (the objects already written stay unreferenced).
    fn discard(&mut self) {
        self.buffer.clear();
        self.objects.clear();
        self.rows = 0;
        self.seen.clear();
        self.keys.clear();
    }

    /// Writes what is left; records the keys written in `delivered`.
    async fn finish(
        mut self,
        store: &dyn ObjectStore,
        run_id: &str,
        delivered: &mut BTreeMap<&'static str, KeyRanges>,
    ) -> Result<TableExtract, ExtractError> {
        self.flush(store, run_id).await?;
        delivered.insert(self.table.name, KeyRanges::from_keys(std::mem::take(&mut self.keys)));
        Ok(TableExtract {
            table: self.table.name.to_string(),
            rows: self.rows,
            objects: self.objects,
            columns: self.columns.iter().map(|c| c.column.clone()).collect(),
            deleted: KeyRanges::default(),
        })
    }
}

/// Reads tables inside the run's snapshot transaction.
struct TableReader<'a> {
    tx: &'a Transaction<'a>,
    store: &'a dyn ObjectStore,
    run_id: &'a str,
    snapshot: &'a SourceSnapshot,
    /// The `age()` reference of the transaction (see [`age_reference`]).
    next_xid: u64,
    options: &'a ExtractOptions,
}

/// Rows fetched per round trip: reads stream, and a read stopped at its limit stops the server.
const FETCH_ROWS: i32 = 10_000;

impl TableReader<'_> {
    /// Reads the rows of `range` written in `window` (`None`: every row) into `out`; with
    /// `stop_after`, stops before the row past that many (`more` says there was one).
    async fn read(
        &self,
        out: &mut TableOutput<'_>,
        window: Option<&PassWindow>,
        range: KeyRange,
        stop_after: Option<u64>,
    ) -> Result<ReadOutcome, ExtractError> {
        let table = out.table;
        let query_error =
            |e: tokio_postgres::Error| ExtractError::Query { table: table.name.into(), reason: error_text(&e) };
        let sql = select_sql(table, out.columns, window.is_some(), range);
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        if let Some(window) = window {
            // Both below 2^31: the window is checked in `read_window`/`initial_pass`, and `next`
            // is at most a few transactions past the snapshot's xmax.
            let span = self.next_xid.saturating_sub(window.from) as i32;
            let skip: Vec<i32> = window.skip.iter().map(|x| self.next_xid.saturating_sub(*x) as i32).collect();
            params.push(Box::new(span));
            params.push(Box::new(skip));
            params.push(Box::new(window_low(self.next_xid, window)));
        }
        match range {
            KeyRange::Whole => {}
            KeyRange::UpTo(key) => params.push(Box::new(key)),
            KeyRange::Page { after, rows } => {
                if let Some(after) = after {
                    params.push(Box::new(after));
                }
                // One row past the page tells whether the table has more.
                params.push(Box::new(i64::try_from(rows.saturating_add(1)).unwrap_or(i64::MAX)));
            }
        }
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        let statement = self.tx.prepare(&sql).await.map_err(query_error)?;
        let portal = self.tx.bind(&statement, &refs).await.map_err(query_error)?;
        let layout = LineLayout::new(out.columns.iter().map(|c| (c.column.name.as_str(), Encoding::of(c.base_type))));
        let (xmin_at, key_at) = (out.columns.len(), out.columns.len() + 1);
        let mut line = Vec::new();
        let mut outcome = ReadOutcome { rows: 0, last_key: None, more: false };
        loop {
            let rows = self.tx.query_portal_raw(&portal, FETCH_ROWS).await.map_err(query_error)?;
            pin_mut!(rows);
            let mut fetched = 0;
            while let Some(row) = rows.try_next().await.map_err(query_error)? {
                fetched += 1;
                if stop_after.is_some_and(|limit| outcome.rows >= limit) {
                    outcome.more = true;
                    return Ok(outcome);
                }
                line.clear();
                layout.write(&row, &mut line).map_err(query_error)?;
                let xmin: i64 = row.try_get(xmin_at).map_err(query_error)?;
                let xid = full_xid(xmin as u32, self.snapshot);
                if xid >= self.snapshot.xmin {
                    // A transaction this snapshot saw, but at or after its xmin: the next run
                    // reads it again, so remember that its rows are written.
                    out.seen.insert(xid);
                }
                out.push(self.store, self.run_id, &line, self.options.max_object_bytes).await?;
                outcome.rows += 1;
                let key: i64 = row.try_get(key_at).map_err(query_error)?;
                out.witnesses.offer(table, key, xid);
                out.keys.push(key);
                outcome.last_key = Some(key);
            }
            if fetched < FETCH_ROWS {
                return Ok(outcome);
            }
        }
    }

    /// Delivers the next part of the pass at its current table, at most `budget` rows, and
    /// moves the pass on; returns the budget left. A table small enough for what is left is read
    /// in one sequential scan; a larger one in key order from where the pass stands.
    async fn page(&self, out: &mut TableOutput<'_>, pass: &mut Pass, budget: u64) -> Result<u64, ExtractError> {
        if pass.after_key.is_none() && self.estimated_rows(out.table).await? <= budget {
            let outcome = self.read(out, pass.window.as_ref(), KeyRange::Whole, Some(budget)).await?;
            if !outcome.more {
                pass.index += 1;
                return Ok(budget - outcome.rows);
            }
            out.discard();
        }
        let range = KeyRange::Page { after: pass.after_key, rows: budget };
        let outcome = self.read(out, pass.window.as_ref(), range, Some(budget)).await?;
        if outcome.more {
            pass.after_key = outcome.last_key.or(pass.after_key);
            Ok(0)
        } else {
            pass.index += 1;
            pass.after_key = None;
            Ok(budget - outcome.rows)
        }
    }

    /// The planner's estimate of a table's rows (never analysed counts as unknown: large).
    async fn estimated_rows(&self, table: &SourceTable) -> Result<u64, ExtractError> {
        let estimate = crate::db::estimated_rows(self.tx, table.name)
            .await
            .map_err(|e| ExtractError::Query { table: table.name.into(), reason: error_text(&e) })?;
        Ok(estimate.unwrap_or(u64::MAX))
    }
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
    use json_line::{NUMERIC_OID, TIMESTAMP_OID};

    fn column(name: &str, base_type: i64) -> CatalogColumn {
        CatalogColumn { column: SourceColumn { name: name.into(), data_type: "t".into() }, base_type }
    }

    #[test]
    fn select_reads_every_catalog_column_exactly_and_quotes_names() {
        let columns =
            [column("payment_id", 23), column("payment_amount", NUMERIC_OID), column("created_at", TIMESTAMP_OID)];
        let sql = select_sql(&PAYMENT, &columns, true, KeyRange::Whole);
        assert!(
            sql.starts_with("SELECT \"payment_id\"::int8, \"payment_amount\"::text, \"created_at\"::timestamp, "),
            "every column in catalog order, numeric as exact text: {sql}"
        );
        assert!(sql.contains("FROM \"payment\" WHERE CASE WHEN age(xmin) BETWEEN $3::int4 AND $1::int4"), "{sql}");
        assert!(sql.contains("THEN NOT (age(xmin) = ANY($2::int4[])) ELSE false END"), "{sql}");
        assert!(!select_sql(&PAYMENT, &columns, false, KeyRange::Whole).contains("$1"));
        assert!(sql.ends_with(", xmin::text::int8, \"payment_id\"::int8 FROM \"payment\" WHERE CASE WHEN age(xmin) BETWEEN $3::int4 AND $1::int4 THEN NOT (age(xmin) = ANY($2::int4[])) ELSE false END"), "{sql}");
        let page = select_sql(&PAYMENT, &columns, true, KeyRange::Page { after: Some(7), rows: 10 });
        assert!(
            page.ends_with("ELSE false END AND \"payment_id\" > $4::int8 ORDER BY \"payment_id\" LIMIT $5::int8"),
            "{page}"
        );
        let first_page = select_sql(&PAYMENT, &columns, false, KeyRange::Page { after: None, rows: 10 });
        assert!(first_page.ends_with("FROM \"payment\" ORDER BY \"payment_id\" LIMIT $1::int8"), "{first_page}");
        let covered = select_sql(&PAYMENT, &columns, true, KeyRange::UpTo(7));
        assert!(covered.ends_with("ELSE false END AND \"payment_id\" <= $4::int8"), "{covered}");
        let odd = select_sql(&PAYMENT, &[column("it's \"odd\"", 25)], false, KeyRange::Whole);
        assert!(odd.starts_with("SELECT \"it's \"\"odd\"\"\"::text, "), "{odd}");
        assert!(!odd.contains("ORDER BY"), "{odd}");
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
            pending: None,
            continuity: None,
            source_discontinuity: None,
            delivered_before: None,
            delivered_keys: None,
            keys_reconciled_by: None,
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
