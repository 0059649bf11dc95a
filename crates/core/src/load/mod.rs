//! Load: processed runs → the PostgreSQL warehouse, exactly once and in run order.
//!
//! Each run is one transaction: its Parquet objects are streamed with binary `COPY` into
//! temporary staging tables, dimensions are upserted (latest values win), fact versions are
//! appended (a version already present is skipped), and the ledger row that records the run is
//! written — all commit together or nothing does. Loads may be triggered twice, late or out of
//! order: a run already in the ledger is a no-op, and missing predecessors are loaded first.

mod copy;
pub mod roles;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Transaction};

use crate::db::{error_text, quote_ident};
use crate::frames::{self, FrameError};
use crate::keys;
use crate::storage::{ObjectStore, StorageError, manifest_run_ids};
use crate::transform::ProcessedManifest;
use crate::warehouse::{DELETED_AT, DELETED_BY_RUN, Role, VERSION_ORDER, WAREHOUSE_TABLES, WKind, WarehouseTable};

/// The ledger of loaded runs (part of the first migration).
pub const LEDGER_DDL: &str = "CREATE TABLE onyx_load_ledger (
    run_id TEXT PRIMARY KEY,
    loaded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    rows JSONB NOT NULL,
    quarantined_rows BIGINT NOT NULL
);
";

/// Serialises loaders (a CLI and a Lambda, say) on one warehouse.
const LOAD_LOCK: i64 = 0x6f6e_7978_6c6f_6164; // "onyxload"
/// Session advisory lock held while migrating: two load functions starting at once on a fresh
/// warehouse would otherwise both create refinery's history table and one would fail.
const MIGRATE_LOCK: i64 = 0x6f6e_7978_6d69_6772; // "onyxmigr"

mod embedded {
    refinery::embed_migrations!("migrations");
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the processed manifest {key} is unreadable: {reason}")]
    BadManifest { key: String, reason: String },
    #[error("warehouse migration failed: {reason}")]
    Migration { reason: String },
    #[error(
        "database {database} is not an Onyx warehouse this build can read: {found}. Reading commands never change a database; `onyx migrate` is the command that creates or upgrades the warehouse"
    )]
    NotMigrated { database: String, found: String },
    #[error("loading run {run_id}, table {table}: {reason}")]
    Database {
        run_id: String,
        table: String,
        /// The SQLSTATE, when the server answered with an error (none for I/O and connection loss).
        code: Option<String>,
        reason: String,
    },
    #[error(
        "loading run {run_id}: {table} row {key_column}={key} references {column}={value}, which is not in {references} (it should have been quarantined by the transform)"
    )]
    MissingReference {
        run_id: String,
        table: &'static str,
        key_column: &'static str,
        key: String,
        column: &'static str,
        value: String,
        references: &'static str,
    },
    #[error("{setting} of {limit_ms} ms exceeded while loading {table} (run {run_id}) — {hint}")]
    Timeout {
        run_id: String,
        table: String,
        /// `lock_timeout` or `statement_timeout`.
        setting: &'static str,
        limit_ms: u64,
        hint: &'static str,
    },
    #[error("processed run {run_id} does not exist (no manifest at {key})")]
    UnknownRun { run_id: String, key: String },
    #[error("injected failure after staging {0} tables")]
    Injected(usize),
}

impl LoadError {
    /// A database error while loading `table` of run `run_id`, with its SQLSTATE.
    fn database(run_id: &str, table: &str, error: &tokio_postgres::Error) -> LoadError {
        LoadError::Database {
            run_id: run_id.to_string(),
            table: table.to_string(),
            code: error.code().map(|c| c.code().to_string()),
            reason: error_text(error),
        }
    }

    /// A database error while loading `table` of run `run_id`: a lock or statement timeout says so
    /// with the session's limit (from `limits`), anything else keeps its SQLSTATE.
    fn from_db(run_id: &str, table: &str, limits: &SessionLimits, error: &tokio_postgres::Error) -> LoadError {
        let timeout = |setting, limit_ms, hint| LoadError::Timeout {
            run_id: run_id.to_string(),
            table: table.to_string(),
            setting,
            limit_ms,
            hint,
        };
        match error.as_db_error() {
            Some(db) if db.code() == &SqlState::LOCK_NOT_AVAILABLE && db.message().contains("lock timeout") => {
                timeout("lock_timeout", limits.lock_timeout_ms, "another session holds a lock on it")
            }
            Some(db) if db.code() == &SqlState::QUERY_CANCELED && db.message().contains("statement timeout") => {
                timeout("statement_timeout", limits.statement_timeout_ms, "a statement ran longer than that")
            }
            _ => LoadError::database(run_id, table, error),
        }
    }

    /// Whether trying again may succeed. The single place where a load failure is classified.
    pub fn is_retryable(&self) -> bool {
        match self {
            LoadError::Storage(e) => e.is_retryable(),
            LoadError::Database { code: Some(code), .. } => is_transient_sqlstate(code),
            // No SQLSTATE: the connection or its I/O failed.
            LoadError::Database { code: None, .. } => true,
            LoadError::Timeout { .. } => true,
            _ => false,
        }
    }
}

/// Whether a SQLSTATE names a transient condition: connection exceptions (class 08),
/// serialization failures and deadlocks (40), insufficient resources (53), an administrator's
/// shutdown (57P01–57P03), `lock_timeout` (55P03) and `statement_timeout` (57014). Everything
/// else — data (22), integrity constraints (23), syntax and access (42), … — would fail the same
/// way again.
pub fn is_transient_sqlstate(code: &str) -> bool {
    matches!(code.get(..2), Some("08" | "40" | "53")) || matches!(code, "57P01" | "57P02" | "57P03" | "55P03" | "57014")
}

/// The session's `lock_timeout` and `statement_timeout` in milliseconds, for error messages.
#[derive(Debug, Clone, Copy, Default)]
struct SessionLimits {
    lock_timeout_ms: u64,
    statement_timeout_ms: u64,
}

/// Applies the warehouse migrations that are not applied yet (idempotent).
pub async fn migrate(client: &mut Client) -> Result<Vec<String>, LoadError> {
    let report = with_migrate_lock(client, embedded::migrations::runner()).await?;
    describe(client).await;
    Ok(report.applied_migrations().iter().map(|m| m.to_string()).collect())
}

/// Puts each table's and column's description (`warehouse.rs`) on the warehouse as `COMMENT ON`
/// — the tables and the facts' `*_current` views — so psql's `\d+`, Power BI and DBeaver show
/// them. Not a versioned migration: a description can be improved without a new schema version.
/// Only what differs is written; a login that may not (the loader, not the tables' owner) leaves
/// them for `onyx migrate`, with a warning: descriptions never fail a load.
async fn describe(client: &Client) {
    let quote = |text: &str| format!("'{}'", text.replace('\'', "''"));
    let existing = client
        .query(
            // Per table or view: its own description (column ''), and each column's.
            "SELECT c.relname::text, '', coalesce(obj_description(c.oid, 'pg_class'), '')
             FROM pg_class c
             WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'v')
             UNION ALL
             SELECT c.relname::text, a.attname::text, coalesce(col_description(c.oid, a.attnum), '')
             FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'v')",
            &[],
        )
        .await;
    let existing: std::collections::BTreeMap<(String, String), String> = match existing {
        Ok(rows) => rows.iter().map(|r| ((r.get(0), r.get(1)), r.get(2))).collect(),
        Err(e) => {
            tracing::warn!(error = %crate::db::error_text(&e), "could not read the warehouse's descriptions");
            return;
        }
    };
    let mut statements = Vec::new();
    for table in WAREHOUSE_TABLES {
        let current = format!("{}_current", table.name);
        let relations: Vec<&str> = [table.name, current.as_str()]
            .into_iter()
            .filter(|r| existing.contains_key(&(r.to_string(), String::new())))
            .collect();
        for relation in relations {
            let description = if relation == table.name {
                table.description.to_string()
            } else {
                format!("The latest version of each row of {}, deleted ones left out.", table.name)
            };
            if existing.get(&(relation.to_string(), String::new())) != Some(&description) {
                let kind = if relation == table.name { "TABLE" } else { "VIEW" };
                statements.push(format!("COMMENT ON {kind} {relation} IS {}", quote(&description)));
            }
            for column in table.all_columns() {
                let key = (relation.to_string(), column.name.to_string());
                if existing.get(&key).is_some_and(|d| d != column.description) {
                    statements.push(format!(
                        "COMMENT ON COLUMN {relation}.{} IS {}",
                        column.name,
                        quote(column.description)
                    ));
                }
            }
        }
    }
    if statements.is_empty() {
        return;
    }
    if let Err(e) = client.batch_execute(&statements.join(";\n")).await {
        tracing::warn!(
            error = %crate::db::error_text(&e),
            "could not set the warehouse's table and column descriptions (`onyx migrate` as the tables' owner does)"
        );
    }
}

/// For commands that only read the warehouse: makes the session read-only and checks, without
/// changing anything, that the database holds the warehouse at this build's newest migration.
pub async fn open_for_reading(client: &Client) -> Result<(), LoadError> {
    let failed = |e: tokio_postgres::Error| LoadError::Migration { reason: crate::db::error_text(&e) };
    client.batch_execute("SET default_transaction_read_only = on").await.map_err(failed)?;
    let database: String = client.query_one("SELECT current_database()::text", &[]).await.map_err(failed)?.get(0);
    let newest =
        embedded::migrations::runner().get_migrations().iter().map(|m| i64::from(m.version())).max().unwrap_or(0);
    let applied = client.query_one("SELECT max(version)::int8 FROM refinery_schema_history", &[]).await;
    let found = match applied {
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => {
            "it has no migration history (refinery_schema_history): no Onyx schema was ever created there (the source's URL, say?)".to_string()
        }
        Err(e) => return Err(failed(e)),
        Ok(row) => match row.get::<_, Option<i64>>(0) {
            Some(version) if version >= newest => return Ok(()),
            Some(version) => format!("it is at schema version {version}, this build reads version {newest}"),
            None => "its migration history is empty".to_string(),
        },
    };
    Err(LoadError::NotMigrated { database, found })
}

/// Applies migrations up to and including `version` only (to test upgrades).
pub async fn migrate_to(client: &mut Client, version: i32) -> Result<(), LoadError> {
    let runner = embedded::migrations::runner().set_target(refinery::Target::Version(version));
    with_migrate_lock(client, runner).await?;
    Ok(())
}

/// Runs refinery under [`MIGRATE_LOCK`] (a session lock: refinery commits per migration), and
/// releases the lock whatever the outcome.
async fn with_migrate_lock(client: &mut Client, runner: refinery::Runner) -> Result<refinery::Report, LoadError> {
    let locking = |e: tokio_postgres::Error| LoadError::Migration {
        reason: format!("advisory lock {MIGRATE_LOCK:#x} (serialises migrations): {}", crate::db::error_text(&e)),
    };
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK]).await.map_err(locking)?;
    let result = runner.run_async(client).await.map_err(|e| LoadError::Migration { reason: e.to_string() });
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK]).await.map_err(locking);
    let report = result?;
    unlocked?;
    Ok(report)
}

/// Test hook: fail after staging this many tables, inside the run's transaction.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub fail_after_staged_tables: Option<usize>,
}

/// What loading one run did.
#[derive(Debug, Clone)]
pub struct LoadedRun {
    pub run_id: String,
    /// Rows inserted or updated per table (fact versions already present are not counted).
    pub rows: BTreeMap<String, u64>,
    pub quarantined_rows: u64,
    pub duration: Duration,
    /// Set when the run was parked: recorded in the ledger, nothing loaded.
    pub parked: Option<crate::runs::ParkRecord>,
    /// Fact tables loaded by the bulk path (see [`bulk_load_worthwhile`]).
    pub bulk_tables: Vec<String>,
}

/// The newest run in the ledger.
async fn last_loaded_run(client: &Client) -> Result<Option<String>, LoadError> {
    let row = client
        .query_one("SELECT max(run_id) FROM onyx_load_ledger", &[])
        .await
        .map_err(|e| LoadError::database("-", "onyx_load_ledger", &e))?;
    Ok(row.get(0))
}

/// How old the newest loaded (or parked) run is, in seconds: the time its id carries against
/// `now` (`None` before the first load).
pub async fn warehouse_freshness(
    client: &Client,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<f64>, LoadError> {
    let newest = last_loaded_run(client).await?;
    Ok(newest.as_deref().and_then(keys::run_time).map(|at| (now.naive_utc() - at).num_milliseconds() as f64 / 1000.0))
}

/// Loads every processed run not loaded yet, in order — or, with `up_to`, those up to and
/// including that run. A run already loaded is a no-op (an empty result).
pub async fn load_pending(
    client: &mut Client,
    processed: &dyn ObjectStore,
    up_to: Option<&str>,
    options: &LoadOptions,
) -> Result<Vec<LoadedRun>, LoadError> {
    let last = last_loaded_run(client).await?;
    let mut pending = manifest_run_ids(processed, last.as_deref()).await?;
    if let Some(target) = up_to {
        if last.as_deref().is_some_and(|l| target <= l) {
            return Ok(Vec::new());
        }
        if !pending.iter().any(|r| r == target) {
            return Err(LoadError::UnknownRun { run_id: target.to_string(), key: keys::manifest(target) });
        }
        pending.retain(|r| r.as_str() <= target);
    }
    let mut loaded = Vec::new();
    for run_id in pending {
        match load_run(client, processed, &run_id, options).await {
            Ok(Some(run)) => loaded.push(run),
            Ok(None) => {}
            Err(error) => {
                if !error.is_retryable() {
                    crate::runs::report_blocking(processed, "load", &run_id, &error).await;
                }
                return Err(error);
            }
        }
    }
    Ok(loaded)
}

/// Loads one run in one transaction; `None` if it was already loaded.
pub async fn load_run(
    client: &mut Client,
    processed: &dyn ObjectStore,
    run_id: &str,
    options: &LoadOptions,
) -> Result<Option<LoadedRun>, LoadError> {
    let started = Instant::now();
    let manifest_key = keys::manifest(run_id);
    let bytes = processed.get(&manifest_key).await?;
    let manifest: ProcessedManifest = serde_json::from_slice(&bytes)
        .map_err(|e| LoadError::BadManifest { key: manifest_key.clone(), reason: e.to_string() })?;
    let limits = session_limits(client).await.map_err(|e| LoadError::database(run_id, "pg_settings", &e))?;
    let db = |table: &str| {
        let run_id = run_id.to_string();
        let table = table.to_string();
        move |e: tokio_postgres::Error| LoadError::from_db(&run_id, &table, &limits, &e)
    };

    let tx = client.transaction().await.map_err(db("-"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOAD_LOCK]).await.map_err(db("onyx_load_ledger"))?;
    let already = tx
        .query_opt("SELECT 1 FROM onyx_load_ledger WHERE run_id = $1", &[&run_id])
        .await
        .map_err(db("onyx_load_ledger"))?;
    if already.is_some() {
        return Ok(None);
    }
    let parked = match manifest.parked.clone() {
        Some(park) => Some(park),
        None => crate::runs::parking(processed, run_id).await?,
    };
    if let Some(park) = parked {
        // Set aside by an operator: recorded, with who, when and why, so later runs flow. Its
        // facts are set aside; its dimension rows still load, because the transform's reference
        // state counts them as loaded (later facts refer to them, and later runs emit only what
        // changes) — and the calendar days, which later runs extend dim_date from.
        let mut rows = BTreeMap::new();
        for table in WAREHOUSE_TABLES.iter().filter(|t| !t.is_fact()) {
            let Some(entry) = manifest.tables.iter().find(|t| t.table == table.name && !t.objects.is_empty()) else {
                continue;
            };
            let stage = copy::create_stage(&tx, table).await.map_err(db(table.name))?;
            for object in &entry.objects {
                let cells = frames::from_parquet(table, processed.get(object).await?)?;
                copy::copy_rows(&tx, table, &stage, &cells).await.map_err(db(table.name))?;
            }
            let changed = tx.execute(merge_sql(table, &stage).as_str(), &[]).await.map_err(db(table.name))?;
            tx.batch_execute(&format!("DROP TABLE {stage}")).await.map_err(db(table.name))?;
            rows.insert(table.name.to_string(), changed);
        }
        mark_deleted(&tx, &manifest).await.map_err(db("tombstones"))?;
        tx.execute(
            "INSERT INTO onyx_load_ledger (run_id, rows, quarantined_rows, status, note) VALUES ($1, $2, 0, 'parked', $3)",
            &[&run_id, &serde_json::json!(rows), &serde_json::json!(park)],
        )
        .await
        .map_err(db("onyx_load_ledger"))?;
        tx.commit().await.map_err(db("commit"))?;
        tracing::warn!(stage = "load", run_id, reason = park.reason, by = park.by, "run is parked: passed over");
        return Ok(Some(LoadedRun {
            run_id: run_id.to_string(),
            rows: BTreeMap::new(),
            quarantined_rows: 0,
            duration: started.elapsed(),
            parked: Some(park),
            bulk_tables: Vec::new(),
        }));
    }

    let mut rows = BTreeMap::new();
    let mut bulk_tables = Vec::new();
    let mut staged = 0;
    let mut conflicts = 0u64;
    for table in WAREHOUSE_TABLES {
        let Some(entry) = manifest.tables.iter().find(|t| t.table == table.name) else { continue };
        if entry.objects.is_empty() {
            continue;
        }
        let stage = copy::create_stage(&tx, table).await.map_err(db(table.name))?;
        let mut staged_rows = 0;
        for object in &entry.objects {
            // One part in memory at a time.
            let cells = frames::from_parquet(table, processed.get(object).await?)?;
            staged_rows += copy::copy_rows(&tx, table, &stage, &cells).await.map_err(db(table.name))?;
        }
        staged += 1;
        if options.fail_after_staged_tables == Some(staged) {
            return Err(LoadError::Injected(staged));
        }
        // An empty fact table (a first load) has no loaded version to compare with or conflict
        // with: its append skips the lookup and the conflict check.
        let empty_fact = table.is_fact()
            && tx
                .query_one(&format!("SELECT NOT EXISTS (SELECT 1 FROM {})", table.name), &[])
                .await
                .map_err(db(table.name))?
                .get::<_, bool>(0);
        if table.is_fact() && !empty_fact {
            conflicts += report_conflicts(&tx, table, &stage, run_id).await.map_err(db(table.name))?;
        }
        let append = if empty_fact { first_append_sql(table, &stage) } else { merge_sql(table, &stage) };
        let bulk = matches!(table.role, Role::Fact { .. })
            && bulk_load_worthwhile(
                staged_rows,
                crate::db::estimated_rows(&tx, table.name).await.map_err(db(table.name))?.unwrap_or(0),
            )
            && may_alter(&tx, table).await.map_err(db(table.name))?;
        let changed = if bulk {
            bulk_tables.push(table.name.to_string());
            match bulk_merge(&tx, table, &append).await {
                Ok(changed) => changed,
                // A staged row names a missing reference: back to before the merge, and the
                // loader's own check names the row, the column and the value.
                Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                    tx.batch_execute(&format!("ROLLBACK TO SAVEPOINT {BULK_SAVEPOINT}"))
                        .await
                        .map_err(db(table.name))?;
                    check_references(&tx, table, &stage, run_id, &limits).await?;
                    return Err(db(table.name)(e));
                }
                Err(e) => return Err(db(table.name)(e)),
            }
        } else {
            check_references(&tx, table, &stage, run_id, &limits).await?;
            tx.execute(append.as_str(), &[]).await.map_err(db(table.name))?
        };
        if table.is_fact() {
            mark_late_versions(&tx, table, &stage).await.map_err(db(table.name))?;
        }
        tx.batch_execute(&format!("DROP TABLE {stage}")).await.map_err(db(table.name))?;
        rows.insert(table.name.to_string(), changed);
    }
    mark_deleted(&tx, &manifest).await.map_err(db("tombstones"))?;
    let quarantined = (manifest.quarantined_rows + conflicts) as i64;
    tx.execute(
        "INSERT INTO onyx_load_ledger (run_id, rows, quarantined_rows) VALUES ($1, $2, $3)",
        &[&run_id, &serde_json::json!(rows), &quarantined],
    )
    .await
    .map_err(db("onyx_load_ledger"))?;
    tx.commit().await.map_err(db("commit"))?;
    Ok(Some(LoadedRun {
        run_id: run_id.to_string(),
        rows,
        quarantined_rows: manifest.quarantined_rows + conflicts,
        duration: started.elapsed(),
        parked: None,
        bulk_tables,
    }))
}

/// Marks the rows whose source rows the run's reconciliation found deleted (see
/// [`crate::extract::reconcile`]): `deleted_at` and `deleted_by_run` on a dimension row and on
/// every version of a fact read before the delete was seen; nothing is removed.
async fn mark_deleted(tx: &Transaction<'_>, manifest: &ProcessedManifest) -> Result<(), tokio_postgres::Error> {
    let deleted_at = manifest.deleted_at.clone().unwrap_or_default();
    for tombstones in &manifest.tombstones {
        let Some(table) = WarehouseTable::named(&tombstones.table).filter(|t| t.marks_deletes()) else {
            tracing::error!(
                stage = "load",
                run_id = manifest.run_id,
                table = tombstones.table,
                "tombstones for a table that has no deletion marks: ignored"
            );
            continue;
        };
        let (low, high): (Vec<i64>, Vec<i64>) = tombstones.keys.ranges().iter().copied().unzip();
        let marked =
            tx.execute(mark_deleted_sql(table).as_str(), &[&deleted_at, &manifest.run_id, &low, &high]).await?;
        tracing::info!(stage = "load", run_id = manifest.run_id, table = table.name, keys = %tombstones.keys, marked, "rows deleted from the source marked");
    }
    Ok(())
}

/// Marks the rows of `table` whose key is in the ranges `$3`/`$4` (`$1` the time, `$2` the run).
/// A fact version read after the delete was seen (a key used again) is not marked.
pub fn mark_deleted_sql(table: &WarehouseTable) -> String {
    let (name, key) = (table.name, table.key);
    let later = if table.is_fact() { format!(" AND t.{VERSION_ORDER} < $2::text") } else { String::new() };
    format!(
        "UPDATE {name} AS t SET {DELETED_AT} = $1::text::timestamp, {DELETED_BY_RUN} = $2::text
         FROM unnest($3::int8[], $4::int8[]) AS r(low, high)
         WHERE t.{key} BETWEEN r.low AND r.high AND t.{DELETED_AT} IS NULL{later}"
    )
}

/// A fact version appended now but read before its key was found deleted (a held or requeued
/// version released later) takes the delete's marks: it must not become current again.
async fn mark_late_versions(
    tx: &Transaction<'_>,
    table: &WarehouseTable,
    stage: &str,
) -> Result<(), tokio_postgres::Error> {
    let (name, key) = (table.name, table.key);
    // Through the partial index of marked rows: nothing to do in a warehouse without deletes.
    let any =
        tx.query_one(&format!("SELECT EXISTS (SELECT 1 FROM {name} WHERE {DELETED_AT} IS NOT NULL)"), &[]).await?;
    if !any.get::<_, bool>(0) {
        return Ok(());
    }
    tx.execute(
        &format!(
            "UPDATE {name} AS t SET {DELETED_AT} = d.{DELETED_AT}, {DELETED_BY_RUN} = d.{DELETED_BY_RUN}
             FROM (SELECT DISTINCT ON ({key}) {key}, {DELETED_AT}, {DELETED_BY_RUN} FROM {name}
                   WHERE {DELETED_AT} IS NOT NULL AND {key} IN (SELECT {key} FROM {stage})
                   ORDER BY {key}, {DELETED_BY_RUN} DESC) d
             WHERE t.{key} = d.{key} AND t.{DELETED_AT} IS NULL AND t.{VERSION_ORDER} < d.{DELETED_BY_RUN}"
        ),
        &[],
    )
    .await?;
    Ok(())
}

/// Logs an ERROR for every staged version that conflicts with a loaded one (see
/// [`conflicting_versions_sql`]) and returns how many there are: they are skipped, counted with
/// the run's quarantined rows, and never block the run.
async fn report_conflicts(
    tx: &tokio_postgres::Transaction<'_>,
    table: &WarehouseTable,
    stage: &str,
    run_id: &str,
) -> Result<u64, tokio_postgres::Error> {
    let rows = tx.query(conflicting_versions_sql(table, stage).as_str(), &[]).await?;
    for row in &rows {
        let (key, version_order): (String, String) = (row.get(0), row.get(1));
        tracing::error!(
            stage = "load",
            data_quality = true,
            run_id,
            table = table.name,
            key = %key,
            version_order = %version_order,
            "{} {}={key} version {version_order} is loaded with other content: the loaded version is kept, this one is skipped",
            table.name,
            table.key
        );
    }
    Ok(rows.len() as u64)
}

/// Whether a fact table's staged rows are better appended by the bulk path: when they are many
/// and not few against what the table holds (a first load, a backfill, the runs of a pass).
/// Re-validating a foreign key scans the whole table once, set-based, where the normal path fires
/// one trigger per row and reference (~50× the cost per row), so the bulk path wins from about
/// a twentieth of the table on.
pub fn bulk_load_worthwhile(staged_rows: u64, table_rows: u64) -> bool {
    staged_rows >= BULK_MIN_ROWS && staged_rows.saturating_mul(20) >= table_rows
}

/// Below this, a run is small enough that per-row checks cost less than taking the table's
/// exclusive lock.
const BULK_MIN_ROWS: u64 = 1_000;

/// Whether this login may drop and add the table's constraints (it owns the table, through a
/// role, or is a superuser): `onyx_loader`, which only reads and writes rows, takes the normal
/// path.
async fn may_alter(
    tx: &tokio_postgres::Transaction<'_>,
    table: &WarehouseTable,
) -> Result<bool, tokio_postgres::Error> {
    let row = tx
        .query_one(
            "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class WHERE oid = $1::text::regclass",
            &[&table.name],
        )
        .await?;
    Ok(row.get(0))
}

/// PostgreSQL's "Populating a Database" inside the load's one transaction: the table's foreign
/// keys are dropped, the rows appended, and the same keys added back — which validates each one
/// with a single set-based query over the table instead of a trigger per row and reference, and
/// stands in for the loader's own reference check (every reference column is NOT NULL, so the
/// two find the same rows; on a violation the caller rolls back to [`BULK_SAVEPOINT`] and runs
/// that check for its precise error). The rows are appended by `append` ([`fact_append_sql`], or
/// [`first_append_sql`] into an empty table). Readers wait for the commit (the table is locked
/// exclusively) and never see a half-loaded run; a failure rolls everything back.
async fn bulk_merge(
    tx: &tokio_postgres::Transaction<'_>,
    table: &WarehouseTable,
    append: &str,
) -> Result<u64, tokio_postgres::Error> {
    tx.batch_execute(&format!("SAVEPOINT {BULK_SAVEPOINT}")).await?;
    let keys = tx
        .query(
            "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint
             WHERE conrelid = $1::text::regclass AND contype = 'f' ORDER BY conname",
            &[&table.name],
        )
        .await?;
    let keys: Vec<(String, String)> = keys.iter().map(|r| (quote_ident(r.get(0)), r.get(1))).collect();
    if !keys.is_empty() {
        let drops: Vec<String> = keys.iter().map(|(name, _)| format!("DROP CONSTRAINT {name}")).collect();
        tx.batch_execute(&format!("ALTER TABLE {} {}", table.name, drops.join(", "))).await?;
    }
    let changed = tx.execute(append, &[]).await?;
    if !keys.is_empty() {
        let adds: Vec<String> =
            keys.iter().map(|(name, definition)| format!("ADD CONSTRAINT {name} {definition}")).collect();
        tx.batch_execute(&format!("ALTER TABLE {} {}", table.name, adds.join(", "))).await?;
    }
    tx.batch_execute(&format!("RELEASE SAVEPOINT {BULK_SAVEPOINT}")).await?;
    Ok(changed)
}

/// Where [`bulk_merge`] begins, for the way back from a missing reference.
const BULK_SAVEPOINT: &str = "onyx_bulk_merge";

/// The session's timeouts, as PostgreSQL applies them (milliseconds).
async fn session_limits(client: &Client) -> Result<SessionLimits, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT (SELECT setting::bigint FROM pg_settings WHERE name = 'lock_timeout'),
                    (SELECT setting::bigint FROM pg_settings WHERE name = 'statement_timeout')",
            &[],
        )
        .await?;
    let ms = |i: usize| row.get::<_, Option<i64>>(i).and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
    Ok(SessionLimits { lock_timeout_ms: ms(0), statement_timeout_ms: ms(1) })
}

/// The staged value of a column as the warehouse type (decimals are staged as exact text).
fn staged_expr(column: &crate::warehouse::WColumn) -> String {
    staged_expr_of(column, "")
}

/// [`staged_expr`] with the stage's column qualified (`prefix` = `"s."`).
fn staged_expr_of(column: &crate::warehouse::WColumn, prefix: &str) -> String {
    match column.kind {
        WKind::Decimal { .. } => format!("{prefix}{}::{}", column.name, column.kind.sql_type()),
        _ => format!("{prefix}{}", column.name),
    }
}

/// Upsert (dimensions) or append-if-new (facts) from the staging table.
pub fn merge_sql(table: &WarehouseTable, stage: &str) -> String {
    let columns: Vec<&str> = table.data_columns().map(|c| c.name).collect();
    let values: Vec<String> = table.data_columns().map(staged_expr).collect();
    match table.role {
        Role::Dimension => {
            let mut updates: Vec<String> =
                columns.iter().filter(|c| **c != table.key).map(|c| format!("{c} = EXCLUDED.{c}")).collect();
            if table.marks_deletes() {
                // The row is in the source again (a key reused after a delete).
                updates.extend([format!("{DELETED_AT} = NULL"), format!("{DELETED_BY_RUN} = NULL")]);
            }
            let action =
                if updates.is_empty() { "NOTHING".to_string() } else { format!("UPDATE SET {}", updates.join(", ")) };
            format!(
                "INSERT INTO {name} ({cols}) SELECT {vals} FROM {stage} ON CONFLICT ({key}) DO {action}",
                name = table.name,
                cols = columns.join(", "),
                vals = values.join(", "),
                key = table.key,
            )
        }
        Role::Fact { .. } => fact_append_sql(table, stage),
    }
}

/// A fact version's content (every data column but `version_order`) as a row value: the columns
/// of `prefix` (`"t."`, `"s."`) as they are, or, with `staged`, cast from the stage to the
/// warehouse's types (decimals are staged as text).
fn content_row(table: &WarehouseTable, prefix: &str, staged: bool) -> String {
    let cells: Vec<String> = table
        .data_columns()
        .filter(|c| c.name != VERSION_ORDER)
        .map(|c| if staged { staged_expr_of(c, prefix) } else { format!("{prefix}{}", c.name) })
        .collect();
    format!("ROW({})", cells.join(", "))
}

/// The stage's versions as the warehouse types them, each with the content and `version_order`
/// of the staged version before it (`previous_content`, `previous_order`), as subquery `s`.
fn staged_versions_sql(table: &WarehouseTable, stage: &str) -> String {
    let staged: Vec<String> = table.data_columns().map(|c| format!("{} AS {}", staged_expr(c), c.name)).collect();
    format!(
        "(SELECT {staged}, lag({content}) OVER w AS previous_content, lag({VERSION_ORDER}) OVER w AS previous_order \
         FROM {stage} WINDOW w AS (PARTITION BY {key} ORDER BY {VERSION_ORDER} COLLATE \"C\")) AS s",
        staged = staged.join(", "),
        content = content_row(table, "", true),
        key = table.key,
    )
}

/// Appends a run's fact versions, set-based over the whole run: a staged version is skipped when
/// it is the same version again (its `(id, version_order)` is loaded: a replay) or when its
/// content equals the version just before it in version order — staged or loaded. That makes a
/// version read twice (a held row released while the same version is read again, a row read
/// again by a full read, a requeued line) a no-op, while A → B → A keeps three rows. Every
/// column but `version_order` is content.
pub fn fact_append_sql(table: &WarehouseTable, stage: &str) -> String {
    let key = table.key;
    let columns: Vec<&str> = table.data_columns().map(|c| c.name).collect();
    format!(
        "INSERT INTO {name} ({cols}) \
         SELECT {s_cols} FROM {staged} \
         LEFT JOIN LATERAL ( \
           SELECT {t_content} AS content, t.{VERSION_ORDER} AS version_order FROM {name} AS t \
           WHERE t.{key} = s.{key} AND t.{VERSION_ORDER} <= s.{VERSION_ORDER} COLLATE \"C\" \
           ORDER BY t.{VERSION_ORDER} DESC LIMIT 1 \
         ) AS loaded ON true \
         WHERE loaded.version_order IS DISTINCT FROM s.{VERSION_ORDER} COLLATE \"C\" \
           AND CASE WHEN s.previous_order IS NOT NULL \
                     AND (loaded.version_order IS NULL OR s.previous_order COLLATE \"C\" > loaded.version_order) \
                    THEN s.previous_content IS DISTINCT FROM {s_content} \
                    ELSE loaded.content IS DISTINCT FROM {s_content} END \
         ORDER BY s.{key}, s.{VERSION_ORDER} COLLATE \"C\" \
         ON CONFLICT ({key}, {VERSION_ORDER}) DO NOTHING",
        name = table.name,
        cols = columns.join(", "),
        s_cols = columns.iter().map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", "),
        staged = staged_versions_sql(table, stage),
        t_content = content_row(table, "t.", false),
        s_content = content_row(table, "s.", false),
    )
}

/// [`fact_append_sql`] for an empty fact table (a first load): only the run's own versions to
/// compare, so no lookup of a loaded version and no conflict check; a staged copy of the version
/// before it (same content, or the same `version_order`) is still skipped.
pub fn first_append_sql(table: &WarehouseTable, stage: &str) -> String {
    let columns: Vec<&str> = table.data_columns().map(|c| c.name).collect();
    format!(
        "INSERT INTO {name} ({cols}) \
         SELECT {s_cols} FROM {staged} \
         WHERE s.previous_order IS DISTINCT FROM s.{VERSION_ORDER} AND s.previous_content IS DISTINCT FROM {s_content} \
         ORDER BY s.{key}, s.{VERSION_ORDER} COLLATE \"C\"",
        name = table.name,
        key = table.key,
        cols = columns.join(", "),
        s_cols = columns.iter().map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", "),
        staged = staged_versions_sql(table, stage),
        s_content = content_row(table, "s.", false),
    )
}

/// The staged versions whose `(id, version_order)` is loaded with other content: the same
/// version cannot have two contents, so the loaded one is kept and these are reported (a
/// processed bucket rebuilt with other rules, say) — never a blocked run.
fn conflicting_versions_sql(table: &WarehouseTable, stage: &str) -> String {
    format!(
        "SELECT s.{key}::text, s.{VERSION_ORDER} FROM {stage} AS s JOIN {name} AS t \
         ON t.{key} = s.{key} AND t.{VERSION_ORDER} = s.{VERSION_ORDER} COLLATE \"C\" \
         WHERE {t} IS DISTINCT FROM {s} ORDER BY 1, 2 LIMIT 1000",
        key = table.key,
        name = table.name,
        t = content_row(table, "t.", false),
        s = content_row(table, "s.", true),
    )
}

/// Fails with the first staged row whose reference is missing from its dimension, naming the
/// row, the column and the value.
async fn check_references(
    tx: &tokio_postgres::Transaction<'_>,
    table: &'static WarehouseTable,
    stage: &str,
    run_id: &str,
    limits: &SessionLimits,
) -> Result<(), LoadError> {
    for column in table.data_columns() {
        let Some(target) = column.references.and_then(WarehouseTable::named) else { continue };
        let sql = format!(
            "SELECT s.{key}::text, s.{col}::text FROM {stage} s LEFT JOIN {target} t ON t.{tkey} = s.{col} \
             WHERE t.{tkey} IS NULL LIMIT 1",
            key = table.key,
            col = column.name,
            target = target.name,
            tkey = target.key,
        );
        let missing =
            tx.query_opt(sql.as_str(), &[]).await.map_err(|e| LoadError::from_db(run_id, table.name, limits, &e))?;
        if let Some(row) = missing {
            return Err(LoadError::MissingReference {
                run_id: run_id.to_string(),
                table: table.name,
                key_column: table.key,
                key: row.get(0),
                column: column.name,
                value: row.get(1),
                references: target.name,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(code: Option<&str>) -> LoadError {
        LoadError::Database {
            run_id: "20261128T070000000-0001".into(),
            table: "fact_payment".into(),
            code: code.map(str::to_string),
            reason: "x".into(),
        }
    }

    /// `LoadError::is_retryable` decides by the SQLSTATE kept in `LoadError::Database`: transient
    /// classes (connection, serialization/deadlock, resources, shutdown, lock and statement
    /// timeouts) and errors without a SQLSTATE (I/O) are retried; data, constraint and SQL errors
    /// would fail the same way again, so they are not.
    #[test]
    fn database_errors_are_classified_by_sqlstate() {
        for code in
            ["08000", "08006", "08P01", "40001", "40P01", "53100", "53200", "57P01", "57P02", "57P03", "55P03", "57014"]
        {
            assert!(database(Some(code)).is_retryable(), "{code} is transient");
        }
        for code in
            ["22003", "22P02", "23505", "23503", "23514", "42P01", "42703", "42501", "XX000", "P0001", "55000", "57000"]
        {
            assert!(!database(Some(code)).is_retryable(), "{code} is deterministic");
        }
        assert!(database(None).is_retryable(), "no SQLSTATE: the connection or I/O failed");
    }
}
