//! Run control: why a run failed, and runs an operator set aside. Both are immutable records in
//! the processed bucket, so they survive any warehouse and are part of the audit trail.
//!
//! ```text
//! processed: _failed/<stage>/<run_id>/<at>.json        a failure that retrying will not fix
//!            _parked/<run_id>/<at>-park.json           `onyx park RUN --reason …` (who, when, why)
//!            _parked/<run_id>/<at>-unpark.json         `onyx unpark RUN`
//! ```
//!
//! Transform and load work in run order, so a run that fails deterministically blocks the runs
//! after it (order is kept; nothing is skipped silently). A *parked* run is passed over by both
//! stages — the transform writes a processed manifest that carries no rows and says it was parked,
//! the load records it in the ledger as `parked` — so later runs flow. Unparking writes a later
//! record: a stage that has not reached the run yet treats it normally, and a rebuild (backfill
//! into an empty processed bucket and warehouse) includes it again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::storage::{ObjectStore, StorageError};

pub const FAILED_PREFIX: &str = "_failed/";
pub const PARKED_PREFIX: &str = "_parked/";

/// A deterministic failure of one stage on one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    pub stage: String,
    pub run_id: String,
    pub at: DateTime<Utc>,
    pub error: String,
}

/// A run set aside, or put back, by an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkRecord {
    pub run_id: String,
    /// `park` or `unpark`.
    pub action: String,
    pub reason: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%S%6f").to_string()
}

/// Records that `stage` failed on `run_id` for a reason retrying will not fix.
pub async fn record_failure(
    processed: &dyn ObjectStore,
    stage: &str,
    run_id: &str,
    error: &str,
) -> Result<FailureRecord, StorageError> {
    let record = FailureRecord { stage: stage.into(), run_id: run_id.into(), at: Utc::now(), error: error.into() };
    let key = format!("{FAILED_PREFIX}{stage}/{run_id}/{}.json", stamp(record.at));
    processed.put(&key, serde_json::to_vec_pretty(&record).unwrap_or_default()).await?;
    Ok(record)
}

/// A stage failed on `run_id` for a reason retrying will not fix, so the runs after it wait
/// (order is kept): records the failure and logs an ERROR that names the run and the way out.
pub async fn report_blocking(
    processed: &dyn ObjectStore,
    stage: &str,
    run_id: &str,
    error: &(dyn std::error::Error + Sync),
) {
    if let Err(e) = record_failure(processed, stage, run_id, &error.to_string()).await {
        tracing::warn!(stage, run_id, error = %e, "could not record the failure");
    }
    tracing::error!(
        stage,
        run_id,
        error = %error,
        "run {run_id} failed for a reason retrying will not fix; later runs wait behind it \
         (fix it, or set it aside with `onyx park {run_id} --reason …`)"
    );
}

/// Every recorded failure, oldest run first (each run's failures in time order).
pub async fn failures(processed: &dyn ObjectStore) -> Result<Vec<FailureRecord>, StorageError> {
    let mut out = Vec::new();
    for key in processed.list(FAILED_PREFIX, None).await? {
        if let Ok(record) = serde_json::from_slice::<FailureRecord>(&processed.get(&key).await?) {
            out.push(record);
        }
    }
    out.sort_by(|a, b| (&a.run_id, a.at).cmp(&(&b.run_id, b.at)));
    Ok(out)
}

async fn write_park(
    processed: &dyn ObjectStore,
    run_id: &str,
    action: &str,
    reason: &str,
    by: &str,
) -> Result<ParkRecord, StorageError> {
    let record = ParkRecord {
        run_id: run_id.into(),
        action: action.into(),
        reason: reason.into(),
        by: by.into(),
        at: Utc::now(),
    };
    let key = format!("{PARKED_PREFIX}{run_id}/{}-{action}.json", stamp(record.at));
    processed.put(&key, serde_json::to_vec_pretty(&record).unwrap_or_default()).await?;
    Ok(record)
}

/// Sets `run_id` aside: the stages pass over it from now on.
pub async fn park(
    processed: &dyn ObjectStore,
    run_id: &str,
    reason: &str,
    by: &str,
) -> Result<ParkRecord, StorageError> {
    write_park(processed, run_id, "park", reason, by).await
}

/// Puts `run_id` back in order (for the stages that have not passed it yet, and for rebuilds).
pub async fn unpark(processed: &dyn ObjectStore, run_id: &str, by: &str) -> Result<ParkRecord, StorageError> {
    write_park(processed, run_id, "unpark", "", by).await
}

/// The record that parks `run_id`, if its newest record is a park.
pub async fn parking(processed: &dyn ObjectStore, run_id: &str) -> Result<Option<ParkRecord>, StorageError> {
    let keys = processed.list(&format!("{PARKED_PREFIX}{run_id}/"), None).await?;
    match keys.last() {
        Some(key) if key.ends_with("-park.json") => {
            Ok(serde_json::from_slice::<ParkRecord>(&processed.get(key).await?).ok())
        }
        _ => Ok(None),
    }
}

/// Every park and unpark record, in time order per run.
pub async fn park_records(processed: &dyn ObjectStore) -> Result<Vec<ParkRecord>, StorageError> {
    let mut out = Vec::new();
    for key in processed.list(PARKED_PREFIX, None).await? {
        if let Ok(record) = serde_json::from_slice::<ParkRecord>(&processed.get(&key).await?) {
            out.push(record);
        }
    }
    Ok(out)
}

/// Who is acting, for audit records: `$ONYX_OPERATOR`, else `$USER@<host>`.
pub fn operator() -> String {
    if let Ok(name) = std::env::var("ONYX_OPERATOR")
        && !name.trim().is_empty()
    {
        return name;
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    if host.is_empty() { user } else { format!("{user}@{host}") }
}
