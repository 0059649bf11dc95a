//! Operating the pipeline: which runs reached which stage, how fresh the warehouse is, and
//! rebuilding a warehouse from the ingestion bucket alone (invariant 9).

use std::collections::BTreeMap;

use serde::Serialize;
use tokio_postgres::Client;

use crate::db::error_text;
use crate::extract::IngestionManifest;
use crate::keys;
use crate::load::{self, LoadError, LoadOptions, LoadedRun};
use crate::storage::{ObjectStore, manifest_run_ids};
use crate::transform::{self, ProcessedManifest, TransformError, TransformedRun};

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Transform(#[from] TransformError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("the manifest {key} is unreadable: {reason}")]
    BadManifest { key: String, reason: String },
    #[error("reading {what} from the database failed: {reason}")]
    Database { what: &'static str, reason: String },
    #[error("the warehouse already holds {runs} loaded run(s); backfill rebuilds an empty warehouse only")]
    WarehouseNotEmpty { runs: i64 },
}

/// One run and how far it got.
#[derive(Debug, Clone, Serialize)]
pub struct RunStatus {
    pub run_id: String,
    pub snapshot_time: String,
    pub extracted_rows: u64,
    /// Warehouse rows produced and rows quarantined, once transformed.
    pub transformed: Option<(u64, u64)>,
    /// When it was loaded into the warehouse.
    pub loaded_at: Option<String>,
    /// Source schema changes the extract saw in this run.
    pub schema_changes: Vec<String>,
}

impl RunStatus {
    pub fn stage(&self) -> &'static str {
        match (&self.transformed, &self.loaded_at) {
            (_, Some(_)) => "loaded",
            (Some(_), None) => "transformed",
            (None, None) => "extracted",
        }
    }
}

async fn manifests<T: serde::de::DeserializeOwned>(store: &dyn ObjectStore) -> Result<Vec<T>, OpsError> {
    let mut out = Vec::new();
    for run_id in manifest_run_ids(store, None).await? {
        let key = keys::manifest(&run_id);
        let bytes = store.get(&key).await?;
        out.push(serde_json::from_slice(&bytes).map_err(|e| OpsError::BadManifest { key, reason: e.to_string() })?);
    }
    Ok(out)
}

/// The recorded failures that still block: a stage failed on a run for a reason retrying will not
/// fix, and that stage has not passed the run since (transformed or parked by the transform, loaded
/// or parked in the ledger). Without a warehouse, load failures count as blocking. `onyx status`
/// lists them; the load function counts them (`BlockedRuns`) on every invocation and on its
/// periodic check, so the alarm stays raised while a run stays blocked.
pub async fn blocked_runs(
    processed: &dyn ObjectStore,
    warehouse: Option<&Client>,
) -> Result<Vec<crate::runs::FailureRecord>, OpsError> {
    let last_transformed = transform::latest_processed(processed).await?.map(|m| m.run_id);
    let loaded = match warehouse {
        Some(client) => Some(loaded_runs(client).await?),
        None => None,
    };
    let mut blocked = crate::runs::failures(processed).await?;
    blocked.retain(|failure| {
        let passed = match failure.stage.as_str() {
            "transform" => last_transformed.as_deref().is_some_and(|last| failure.run_id.as_str() <= last),
            _ => loaded.as_ref().is_some_and(|l| l.contains_key(&failure.run_id)),
        };
        !passed
    });
    Ok(blocked)
}

/// When each run was loaded, from the warehouse ledger.
pub async fn loaded_runs(client: &Client) -> Result<BTreeMap<String, String>, OpsError> {
    let rows = client
        .query("SELECT run_id, to_char(loaded_at, 'YYYY-MM-DD HH24:MI:SS TZ') FROM onyx_load_ledger", &[])
        .await
        .map_err(|e| OpsError::Database { what: "the load ledger", reason: error_text(&e) })?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Every run in the ingestion bucket, oldest first, with its stage.
pub async fn runs(
    ingestion: &dyn ObjectStore,
    processed: &dyn ObjectStore,
    warehouse: Option<&Client>,
) -> Result<Vec<RunStatus>, OpsError> {
    let extracted: Vec<IngestionManifest> = manifests(ingestion).await?;
    let transformed: BTreeMap<String, ProcessedManifest> =
        manifests::<ProcessedManifest>(processed).await?.into_iter().map(|m| (m.run_id.clone(), m)).collect();
    let loaded = match warehouse {
        Some(client) => loaded_runs(client).await?,
        None => BTreeMap::new(),
    };
    Ok(extracted
        .into_iter()
        .map(|m| RunStatus {
            transformed: transformed.get(&m.run_id).map(|p| (p.total_rows(), p.quarantined_rows)),
            loaded_at: loaded.get(&m.run_id).cloned(),
            extracted_rows: m.total_rows(),
            schema_changes: m.schema_changes.iter().map(ToString::to_string).collect(),
            snapshot_time: m.snapshot_time,
            run_id: m.run_id,
        })
        .collect())
}

/// Rebuilds an empty warehouse from the ingestion bucket alone: every run is transformed (into
/// `processed`, which may be empty) and loaded, in order. The result equals the incremental
/// history because both are the same pure function of the same immutable runs.
pub async fn backfill(
    ingestion: &dyn ObjectStore,
    processed: &dyn ObjectStore,
    warehouse: &mut Client,
    mut progress: impl FnMut(&str, usize, usize),
) -> Result<(Vec<TransformedRun>, Vec<LoadedRun>), OpsError> {
    load::migrate(warehouse).await?;
    let runs: i64 = warehouse
        .query_one("SELECT count(*) FROM onyx_load_ledger", &[])
        .await
        .map_err(|e| OpsError::Database { what: "the load ledger", reason: error_text(&e) })?
        .get(0);
    if runs > 0 {
        return Err(OpsError::WarehouseNotEmpty { runs });
    }
    let pending = transform::pending_runs(ingestion, processed).await?;
    let mut transformed = Vec::new();
    for (i, run_id) in pending.iter().enumerate() {
        progress("transform", i, pending.len());
        transformed.extend(transform::transform_pending(ingestion, processed, Some(run_id)).await?);
    }
    let all = manifest_run_ids(processed, None).await?;
    let mut loaded = Vec::new();
    for (i, run_id) in all.iter().enumerate() {
        progress("load", i, all.len());
        loaded.extend(load::load_run(warehouse, processed, run_id, &LoadOptions::default()).await?);
    }
    progress("done", all.len(), all.len());
    Ok((transformed, loaded))
}

/// Where one run stands, as `onyx wait` (and `make smoke`) polls it.
#[derive(Debug, Clone)]
pub struct RunProgress {
    pub run_id: String,
    /// The run as `onyx runs` shows it, once its ingestion manifest exists.
    pub status: Option<RunStatus>,
    /// The first stage the run has not finished (`None`: loaded, or parked and passed over).
    pub unfinished: Option<&'static str>,
    /// What that stage is waiting on, for messages: the object or record it has not written.
    pub missing: Option<String>,
    /// A failure retrying will not fix, recorded for that stage on this run or an earlier one
    /// (runs wait behind a blocked run): the run will not finish by waiting.
    pub blocked_by: Option<crate::runs::FailureRecord>,
}

/// Reads one run's progress: its ingestion manifest (extract), processed manifest (transform)
/// and ledger row (load), and any blocking failure recorded for the stage it has not finished.
/// The warehouse is only read (no migration), so a read-only role will do.
pub async fn run_progress(
    ingestion: &dyn ObjectStore,
    processed: &dyn ObjectStore,
    warehouse: &Client,
    run_id: &str,
) -> Result<RunProgress, OpsError> {
    let key = keys::manifest(run_id);
    let extracted: Option<IngestionManifest> = optional_manifest(ingestion, &key).await?;
    let transformed: Option<ProcessedManifest> = optional_manifest(processed, &key).await?;
    let loaded = ledger_entry(warehouse, run_id).await?;
    let (unfinished, missing) = match (&extracted, &transformed, &loaded) {
        (None, _, _) => (Some("extract"), Some(format!("no run manifest {key} in the ingestion bucket"))),
        (Some(_), None, _) => (Some("transform"), Some(format!("no run manifest {key} in the processed bucket"))),
        (Some(_), Some(_), None) => {
            (Some("load"), Some(format!("run {run_id} is not in the warehouse's onyx_load_ledger")))
        }
        _ => (None, None),
    };
    let mut blocked_by = None;
    if let Some(stage @ ("transform" | "load")) = unfinished {
        for failure in crate::runs::failures(processed).await? {
            if failure.stage != stage || failure.run_id.as_str() > run_id {
                continue;
            }
            // A failure of an earlier run blocks only while that run has not passed the stage.
            let passed = failure.run_id != run_id
                && match stage {
                    "transform" => optional_manifest::<ProcessedManifest>(processed, &keys::manifest(&failure.run_id))
                        .await?
                        .is_some(),
                    _ => ledger_entry(warehouse, &failure.run_id).await?.is_some(),
                };
            if !passed {
                blocked_by = Some(failure);
            }
        }
    }
    let status = extracted.map(|m| RunStatus {
        transformed: transformed.as_ref().map(|p| (p.total_rows(), p.quarantined_rows)),
        loaded_at: loaded,
        extracted_rows: m.total_rows(),
        schema_changes: m.schema_changes.iter().map(ToString::to_string).collect(),
        snapshot_time: m.snapshot_time,
        run_id: m.run_id,
    });
    Ok(RunProgress { run_id: run_id.to_string(), status, unfinished, missing, blocked_by })
}

async fn optional_manifest<T: serde::de::DeserializeOwned>(
    store: &dyn ObjectStore,
    key: &str,
) -> Result<Option<T>, OpsError> {
    match store.get(key).await {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| OpsError::BadManifest { key: key.to_string(), reason: e.to_string() }),
        Err(crate::storage::StorageError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// When the run was loaded (or parked), from the ledger; `None` before the first load created it.
async fn ledger_entry(warehouse: &Client, run_id: &str) -> Result<Option<String>, OpsError> {
    let database = |e: tokio_postgres::Error| OpsError::Database { what: "the load ledger", reason: error_text(&e) };
    let exists: bool =
        warehouse.query_one("SELECT to_regclass('onyx_load_ledger') IS NOT NULL", &[]).await.map_err(database)?.get(0);
    if !exists {
        return Ok(None);
    }
    let row = warehouse
        .query_opt(
            "SELECT to_char(loaded_at, 'YYYY-MM-DD HH24:MI:SS TZ') || CASE WHEN status = 'loaded' THEN '' \
             ELSE ' (' || status || ')' END FROM onyx_load_ledger WHERE run_id = $1",
            &[&run_id],
        )
        .await
        .map_err(database)?;
    Ok(row.map(|r| r.get(0)))
}
