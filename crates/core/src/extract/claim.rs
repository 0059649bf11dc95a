//! One extract at a time per ingestion bucket, wherever it runs (Lambda, CLI, a second
//! deployment): a run claims the place after its predecessor by creating
//! `_claims/<previous run>/<attempt>.json` with a conditional write, which only one writer can win.
//!
//! A claim whose run failed is released by a marker (`<attempt>-released.json`); a claim whose
//! holder died without one expires after its lease, and the next run takes the following attempt.
//! The holder never writes its manifest after its lease ran out, so a taken-over claim cannot
//! produce a second run after the same predecessor.
//!
//! A claim's age is measured by the store's clock, never by comparing the wall clocks of two
//! machines: a contender writes a probe object and compares its `Last-Modified` with the
//! claim's. The holder measures its own run on its monotonic clock from before it claimed, so
//! it always gives up before a contender may take over, however wrong either machine's clock is.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::keys;
use crate::storage::{ObjectStore, StorageError};

/// What a claim object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub run_id: String,
    pub previous_run_id: Option<String>,
    pub attempt: u32,
    pub claimed_at: DateTime<Utc>,
    pub lease_seconds: u64,
}

/// Why a run may not proceed: another run holds the place after the same predecessor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimHeld {
    pub key: String,
    pub holder: String,
    pub claimed_at: String,
}

/// A won claim: its key, so that a failed run can release it.
#[derive(Debug, Clone)]
pub struct HeldClaim {
    pub key: String,
    pub attempt: u32,
    pub previous_run_id: Option<String>,
}

/// Claims the place after `previous` for `run_id`, or says who holds it.
pub async fn claim(
    store: &dyn ObjectStore,
    previous: Option<&str>,
    run_id: &str,
    lease: Duration,
    now: DateTime<Utc>,
) -> Result<Result<HeldClaim, ClaimHeld>, StorageError> {
    let prefix = keys::claim_prefix(previous);
    let existing = store.list(&prefix, None).await?;
    let latest = existing.iter().filter_map(|k| keys::claim_attempt(k).filter(|(_, released)| !released)).max();
    let attempt = match latest {
        None => 0,
        Some((attempt, _)) => {
            let key = keys::claim(previous, attempt);
            let released = existing.iter().any(|k| *k == keys::claim_release(previous, attempt));
            let holder: Option<Claim> = serde_json::from_slice(&store.get(&key).await?).ok();
            let expired = match &holder {
                None => true,
                Some(c) => {
                    claim_age(store, &key, previous, attempt, run_id).await? > Duration::from_secs(c.lease_seconds)
                }
            };
            if !released && !expired {
                let holder = holder.map(|c| (c.run_id, c.claimed_at.to_rfc3339())).unwrap_or_default();
                return Ok(Err(ClaimHeld { key, holder: holder.0, claimed_at: holder.1 }));
            }
            if !released {
                tracing::warn!(stage = "extract", claim = key, "taking over a claim whose lease expired without a run");
            }
            attempt + 1
        }
    };
    let key = keys::claim(previous, attempt);
    let body = Claim {
        run_id: run_id.to_string(),
        previous_run_id: previous.map(str::to_string),
        attempt,
        claimed_at: now,
        lease_seconds: lease.as_secs(),
    };
    let bytes = serde_json::to_vec_pretty(&body).unwrap_or_default();
    match store.put(&key, bytes).await {
        Ok(()) => Ok(Ok(HeldClaim { key, attempt, previous_run_id: previous.map(str::to_string) })),
        Err(StorageError::Conflict { .. }) => {
            let holder: Option<Claim> = serde_json::from_slice(&store.get(&key).await?).ok();
            let holder = holder.map(|c| (c.run_id, c.claimed_at.to_rfc3339())).unwrap_or_default();
            Ok(Err(ClaimHeld { key, holder: holder.0, claimed_at: holder.1 }))
        }
        Err(e) => Err(e),
    }
}

/// How long ago the store wrote claim `key`, by the store's clock: the time between its
/// `Last-Modified` and that of a probe object written now (`<attempt>-checked-<run>.json`,
/// which claim listings ignore).
async fn claim_age(
    store: &dyn ObjectStore,
    key: &str,
    previous: Option<&str>,
    attempt: u32,
    run_id: &str,
) -> Result<Duration, StorageError> {
    let claimed = store.modified(key).await?;
    let probe = format!("{}{attempt:04}-checked-{run_id}.json", keys::claim_prefix(previous));
    store.put(&probe, b"{}".to_vec()).await?;
    let now = store.modified(&probe).await?;
    Ok(now.signed_duration_since(claimed).to_std().unwrap_or_default())
}

/// Marks a claim released after its run failed, so the next run need not wait for the lease.
pub async fn release(store: &dyn ObjectStore, claim: &HeldClaim, reason: &str) {
    let key = keys::claim_release(claim.previous_run_id.as_deref(), claim.attempt);
    let body = serde_json::json!({ "claim": claim.key, "reason": reason });
    if let Err(e) = store.put(&key, serde_json::to_vec_pretty(&body).unwrap_or_default()).await {
        tracing::warn!(stage = "extract", claim = claim.key, error = %e, "could not release the claim; it expires with its lease");
    }
}
