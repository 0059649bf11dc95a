//! Object key layout of the ingestion and processed buckets: built here and nowhere else.
//!
//! ```text
//! ingestion: <table>/YYYY/MM/DD/<run_id>-<part>.jsonl   one object per table part per run
//!            _runs/YYYY/MM/DD/<run_id>.json             run manifest, written last
//!            _claims/<previous run_id>/<attempt>.json   one extract at a time (see extract::claim)
//! processed: <table>/YYYY/MM/DD/<run_id>-<part>.parquet one or more objects per warehouse table per run
//!            _state/YYYY/MM/DD/<run_id>.json            reference snapshot after the run
//!            _quarantine/YYYY/MM/DD/<run_id>.jsonl      rows that failed validation
//!            _runs/YYYY/MM/DD/<run_id>.json             processed run manifest, written last
//!            _verify/YYYY/MM/DD/<time>-<run_id>.json    `onyx verify` reports (scheduled in AWS)
//!            _failed/…, _parked/…                       see `runs`
//!            _requeue/<request_id>.json                 an operator's requeue request (onyx quarantine requeue)
//! ```
//! Terraform's S3 notification filters use [`MANIFEST_PREFIX`] and [`MANIFEST_SUFFIX`]; a test
//! keeps them equal.

/// Prefix of run manifests in both buckets (the S3 notification filter prefix).
pub const MANIFEST_PREFIX: &str = "_runs/";
/// Suffix of run manifests (the S3 notification filter suffix).
pub const MANIFEST_SUFFIX: &str = ".json";
/// Prefix of the transform's reference-state snapshots in the processed bucket.
pub const STATE_PREFIX: &str = "_state/";
/// Prefix of quarantined rows in the processed bucket.
pub const QUARANTINE_PREFIX: &str = "_quarantine/";
/// Prefix of verification reports in the processed bucket.
pub const VERIFY_PREFIX: &str = "_verify/";
/// Prefix of requeue requests in the processed bucket (consumed by the next transform run).
pub const REQUEUE_PREFIX: &str = "_requeue/";
/// Prefix of the extract's claims in the ingestion bucket.
pub const CLAIM_PREFIX: &str = "_claims/";

/// `YYYY/MM/DD` of a run id (`YYYYMMDDTHHMMSSmmm-xxxx`), or `None` if it is not one.
pub fn partition(run_id: &str) -> Option<String> {
    let bytes = run_id.as_bytes();
    let well_formed = run_id.len() >= 18
        && bytes[..8].iter().all(u8::is_ascii_digit)
        && bytes[8] == b'T'
        && bytes[9..18].iter().all(u8::is_ascii_digit)
        && run_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    well_formed.then(|| format!("{}/{}/{}", &run_id[..4], &run_id[4..6], &run_id[6..8]))
}

fn partitioned(prefix: &str, run_id: &str, suffix: &str) -> String {
    let day = partition(run_id).unwrap_or_else(|| "0000/00/00".to_string());
    format!("{prefix}{day}/{run_id}{suffix}")
}

/// The run manifest of `run_id` (same layout in both buckets).
pub fn manifest(run_id: &str) -> String {
    partitioned(MANIFEST_PREFIX, run_id, MANIFEST_SUFFIX)
}

/// Part `part` of a table's extracted rows in one run.
pub fn extract_part(table: &str, run_id: &str, part: usize) -> String {
    partitioned(&format!("{table}/"), run_id, &format!("-{part:04}.jsonl"))
}

/// Part `part` of a warehouse table's rows produced by the transform of one run.
pub fn processed_part(table: &str, run_id: &str, part: usize) -> String {
    partitioned(&format!("{table}/"), run_id, &format!("-{part:04}.parquet"))
}

/// The transform's reference snapshot after a run.
pub fn state(run_id: &str) -> String {
    partitioned(STATE_PREFIX, run_id, ".json")
}

/// Rows of a run that failed validation.
pub fn quarantine(run_id: &str) -> String {
    partitioned(QUARANTINE_PREFIX, run_id, ".jsonl")
}

/// The time part of run ids and request ids: `YYYYMMDDTHHMMSSmmm`.
const ID_TIME_FORMAT: &str = "%Y%m%dT%H%M%S%3f";

/// The time a run id carries (UTC for runs made since format 2 of the ingestion manifest).
pub fn run_time(run_id: &str) -> Option<chrono::NaiveDateTime> {
    chrono::NaiveDateTime::parse_from_str(run_id.get(..18)?, ID_TIME_FORMAT).ok()
}

/// A new id that sorts after `previous` (a run id or request id): `now` to the millisecond, or
/// one millisecond after `previous` when the clock is behind it, then a random suffix so that an
/// id is never reused.
pub fn next_id(now: chrono::DateTime<chrono::Utc>, previous: Option<&str>) -> String {
    let mut at = now.naive_utc();
    if let Some(previous_at) = previous.and_then(run_time)
        && at <= previous_at
    {
        at = previous_at + chrono::Duration::milliseconds(1);
    }
    format!("{}-{:04x}", at.format(ID_TIME_FORMAT), rand::random::<u16>())
}

/// A verification report in the processed bucket: `_verify/YYYY/MM/DD/<time>-<run id>.json`.
pub fn verify_report(at: chrono::DateTime<chrono::Utc>, run_id: &str) -> String {
    format!("{VERIFY_PREFIX}{}/{}-{run_id}.json", at.format("%Y/%m/%d"), at.format(ID_TIME_FORMAT))
}

/// An operator's requeue request.
pub fn requeue(request_id: &str) -> String {
    format!("{REQUEUE_PREFIX}{request_id}.json")
}

/// Where the claims on the place after run `previous` live (`start` before the first run).
pub fn claim_prefix(previous: Option<&str>) -> String {
    format!("{CLAIM_PREFIX}{}/", previous.unwrap_or("start"))
}

/// Attempt `attempt` at claiming the place after run `previous`.
pub fn claim(previous: Option<&str>, attempt: u32) -> String {
    format!("{}{attempt:04}.json", claim_prefix(previous))
}

/// The marker that releases attempt `attempt` after its run failed.
pub fn claim_release(previous: Option<&str>, attempt: u32) -> String {
    format!("{}{attempt:04}-released.json", claim_prefix(previous))
}

/// `(attempt, is a release marker)` of a claim key.
pub fn claim_attempt(key: &str) -> Option<(u32, bool)> {
    let name = key.rsplit('/').next()?.strip_suffix(".json")?;
    let (digits, released) = match name.strip_suffix("-released") {
        Some(digits) => (digits, true),
        None => (name, false),
    };
    (digits.len() == 4).then(|| digits.parse().ok().map(|a| (a, released))).flatten()
}

/// The run id of a manifest key (with or without a bucket prefix before `_runs/`), or `None`
/// when the key is not a run manifest.
pub fn run_id_of_manifest(key: &str) -> Option<&str> {
    let start = key.find(MANIFEST_PREFIX)?;
    let rest = &key[start + MANIFEST_PREFIX.len()..];
    let name = rest.strip_suffix(MANIFEST_SUFFIX)?;
    let (day, run_id) = name.rsplit_once('/')?;
    (partition(run_id).as_deref() == Some(day)).then_some(run_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_derived_from_the_run_id() {
        let run = "20261128T064012123-00af";
        assert_eq!(manifest(run), "_runs/2026/11/28/20261128T064012123-00af.json");
        assert_eq!(extract_part("payment", run, 2), "payment/2026/11/28/20261128T064012123-00af-0002.jsonl");
        assert_eq!(
            processed_part("fact_payment", run, 0),
            "fact_payment/2026/11/28/20261128T064012123-00af-0000.parquet"
        );
        assert_eq!(run_id_of_manifest(&manifest(run)), Some(run));
        assert_eq!(run_id_of_manifest("pre/fix/_runs/2026/11/28/20261128T064012123-00af.json"), Some(run));
        assert_eq!(run_id_of_manifest("_runs/2026/11/29/20261128T064012123-00af.json"), None);
        assert_eq!(run_id_of_manifest("payment/2026/11/28/20261128T064012123-00af-0002.jsonl"), None);
        assert_eq!(partition("not a run"), None);
    }
}
