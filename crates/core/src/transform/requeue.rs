//! What the quarantine holds, and the operator's way to re-process it.
//!
//! `onyx quarantine` lists the facts held for an unknown reference (from the newest processed
//! state) and the lines in the quarantine objects of recent runs. `onyx quarantine requeue`
//! writes an immutable request object, `_requeue/<request id>.json`, in the processed bucket;
//! the next transform run consumes every request after the last one its state consumed
//! (`ReferenceState::requeue_after`), re-applies the quarantined lines of the named runs through
//! the current rules with their original `version_order`, and names the requests in its
//! processed manifest. No object is ever changed or deleted: a request is consumed once because
//! the state remembers the last one done.

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::model::{Level, Quarantined, Requeued};
use super::state::ReferenceState;
use super::{ProcessedManifest, TransformError, latest_processed, read_json};
use crate::keys;
use crate::storage::{ObjectStore, StorageError, manifest_run_ids};

pub const FORMAT: u32 = 1;

/// An operator's request to re-apply the quarantined lines of some runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequeueRequest {
    pub format: u32,
    pub request_id: String,
    /// Runs whose quarantine objects are re-applied (held lines and warnings excepted).
    pub runs: Vec<String>,
    pub requested_at: String,
    pub requested_by: String,
    pub reason: Option<String>,
}

/// Writes a request for `runs` (each must have a processed manifest with a quarantine object).
pub async fn request(
    processed: &dyn ObjectStore,
    runs: Vec<String>,
    requested_by: &str,
    reason: Option<String>,
) -> Result<(String, RequeueRequest), TransformError> {
    for run in &runs {
        let key = keys::manifest(run);
        let manifest: ProcessedManifest = match processed.get(&key).await {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| TransformError::BadProcessedObject { key: key.clone(), reason: e.to_string() })?,
            Err(StorageError::NotFound { .. }) => {
                return Err(TransformError::UnknownRun { run_id: run.clone(), key });
            }
            Err(e) => return Err(e.into()),
        };
        if manifest.quarantine_object.is_none() {
            return Err(TransformError::NothingToRequeue { run_id: run.clone(), key });
        }
    }
    let now = Utc::now();
    // After the last request consumed, whatever this machine's clock says: a request that sorted
    // before it would never be consumed.
    let consumed = match latest_processed(processed).await? {
        Some(latest) => read_json::<ReferenceState>(processed, &latest.state_object).await?.requeue_after,
        None => None,
    };
    let request_id = keys::next_id(now, consumed.as_deref().and_then(|k| k.strip_prefix(keys::REQUEUE_PREFIX)));
    let request = RequeueRequest {
        format: FORMAT,
        request_id: request_id.clone(),
        runs,
        requested_at: now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        requested_by: requested_by.to_string(),
        reason,
    };
    let key = keys::requeue(&request_id);
    let body = serde_json::to_vec_pretty(&request)
        .map_err(|e| TransformError::BadProcessedObject { key: key.clone(), reason: e.to_string() })?;
    processed.put(&key, body).await?;
    Ok((key, request))
}

/// The manifests of the newest `recent` processed runs, oldest first.
async fn recent_manifests(
    processed: &dyn ObjectStore,
    recent: usize,
) -> Result<Vec<ProcessedManifest>, TransformError> {
    let runs = manifest_run_ids(processed, None).await?;
    let mut found = Vec::new();
    for run in runs.iter().rev().take(recent).rev() {
        found.push(read_json(processed, &keys::manifest(run)).await?);
    }
    Ok(found)
}

/// The newest `recent` processed runs that quarantined something, oldest first.
pub async fn runs_with_quarantine(
    processed: &dyn ObjectStore,
    recent: usize,
) -> Result<Vec<ProcessedManifest>, TransformError> {
    let mut manifests = recent_manifests(processed, recent).await?;
    manifests.retain(|m| m.quarantine_object.is_some());
    Ok(manifests)
}

/// The runs named by the given request objects.
async fn requested_runs(
    processed: &dyn ObjectStore,
    requests: &[String],
) -> Result<std::collections::BTreeSet<String>, TransformError> {
    let mut runs = std::collections::BTreeSet::new();
    for key in requests {
        let request: RequeueRequest = read_json(processed, key).await?;
        runs.extend(request.runs);
    }
    Ok(runs)
}

/// The lines of a run's quarantine object (none if it has none).
pub async fn quarantine_lines(processed: &dyn ObjectStore, run_id: &str) -> Result<Vec<Quarantined>, TransformError> {
    let key = keys::quarantine(run_id);
    let bytes = match processed.get(&key).await {
        Ok(bytes) => bytes,
        Err(StorageError::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    String::from_utf8_lossy(&bytes)
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| TransformError::BadProcessedObject {
                key: key.clone(),
                reason: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}

/// The requests not consumed yet (after `state.requeue_after`), oldest first, with the lines
/// they bring back, per source table.
pub async fn pending(
    processed: &dyn ObjectStore,
    state: &ReferenceState,
) -> Result<(Vec<String>, Vec<Requeued>), TransformError> {
    let keys = processed.list(keys::REQUEUE_PREFIX, state.requeue_after.as_deref()).await?;
    let mut lines = Vec::new();
    for key in &keys {
        let request: RequeueRequest = read_json(processed, key).await?;
        if request.format > FORMAT {
            return Err(TransformError::BadProcessedObject {
                key: key.clone(),
                reason: format!("format {} is newer than this build understands ({FORMAT})", request.format),
            });
        }
        for run in &request.runs {
            for entry in quarantine_lines(processed, run).await? {
                // Held lines are released on their own; warnings were loaded.
                if entry.held || entry.level == Level::Warning || !entry.row.is_object() {
                    continue;
                }
                lines.push(Requeued { request: key.clone(), run_id: run.clone(), entry });
            }
        }
    }
    Ok((keys, lines))
}

/// One row of `onyx quarantine`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listed {
    /// `held` (waiting in the state for a reference), `quarantined` (held back, fixed by a new
    /// source version or a requeue), `flagged` (loaded with a flagged attribute), `requeued`
    /// (re-applied by a later run: what failed again is listed under that run) or
    /// `requeue-pending` (named by a request the next transform run consumes).
    pub status: &'static str,
    pub table: String,
    pub key: Option<i64>,
    pub column: Option<String>,
    pub reason: String,
    pub run_id: String,
    /// Seconds since the run that first read the row.
    pub age_seconds: Option<i64>,
}

/// What is held (newest state) and what recent runs quarantined, oldest first.
pub async fn list(processed: &dyn ObjectStore, recent: usize) -> Result<Vec<Listed>, TransformError> {
    let now = Utc::now().naive_utc();
    let age = |run: &str| keys::run_time(run).map(|t| (now - t).num_seconds());
    let manifests = recent_manifests(processed, recent).await?;
    let consumed: Vec<String> = manifests.iter().flat_map(|m| m.requeue_requests.iter().cloned()).collect();
    let requeued = requested_runs(processed, &consumed).await?;
    let latest = latest_processed(processed).await?;
    let state: Option<ReferenceState> = match &latest {
        Some(latest) => Some(read_json(processed, &latest.state_object).await?),
        None => None,
    };
    let after = state.as_ref().and_then(|s| s.requeue_after.clone());
    let pending = requested_runs(processed, &processed.list(keys::REQUEUE_PREFIX, after.as_deref()).await?).await?;
    let mut listed = Vec::new();
    for manifest in manifests.iter().filter(|m| m.quarantine_object.is_some()) {
        for entry in quarantine_lines(processed, &manifest.run_id).await? {
            if entry.held {
                continue; // listed from the state while it is held; released since otherwise
            }
            let status = match entry.level {
                Level::Warning => "flagged",
                Level::Error if pending.contains(&manifest.run_id) => "requeue-pending",
                Level::Error if requeued.contains(&manifest.run_id) => "requeued",
                Level::Error => "quarantined",
            };
            listed.push(Listed {
                status,
                table: entry.table,
                key: entry.key,
                column: entry.column,
                reason: entry.reason,
                age_seconds: age(&manifest.run_id),
                run_id: manifest.run_id.clone(),
            });
        }
    }
    if let Some(state) = state {
        for held in state.held {
            listed.push(Listed {
                status: "held",
                table: held.table,
                key: held.key,
                column: held.column,
                reason: held.reason,
                age_seconds: age(&held.run_id),
                run_id: held.run_id,
            });
        }
    }
    listed.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    Ok(listed)
}

/// `3d 4h`, `2h 5m`, `7m`, `12s`.
pub fn age_text(seconds: Option<i64>) -> String {
    let Some(s) = seconds else { return "-".into() };
    match s {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{}s", s.max(0)),
    }
}
