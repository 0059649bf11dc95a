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
