//! The ingestion run manifest: what one extract run wrote, and the extraction state the next run
//! starts from. Manifests are immutable; the newest one *is* the extract state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::key_ranges::KeyRanges;

/// Current manifest format version. Format 1 (a `last_updated` window with a safety lag) is
/// still read: the transform accepts it, and an extract that follows it re-reads every row once.
/// Format 3 adds `pending` (bounded runs): a build that does not know it must not continue.
/// Format 4 marks a manifest with `delivered_before` (a backlog cut): a build that does not know
/// it would start its window at the snapshot's `xmin` and skip what the cut left, so it must not
/// continue. Format 5 marks a manifest with deleted keys (`TableExtract::deleted`): a build that
/// does not know them would lose the tombstones. Other manifests are still written as format 3
/// (or 4 with a cut).
pub const FORMAT: u32 = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestionManifest {
    pub format: u32,
    pub run_id: String,
    /// The source database's clock when the run's snapshot was taken, in `source_timezone`
    /// (`YYYY-MM-DDTHH:MM:SS.ffffff`), comparable with the source's `last_updated` stamps.
    pub snapshot_time: String,
    /// The time zone the source's `timestamp` columns are written in (`ONYX_SOURCE_TIMEZONE`).
    #[serde(default)]
    pub source_timezone: Option<String>,
    /// Which database the run read: `<system identifier>/<database oid>` (`?` when the login may
    /// not read `pg_control_system()`). Transaction ids compare only within one database history:
    /// a different identity makes the next run read everything once.
    #[serde(default)]
    pub source_identity: Option<String>,
    /// The database snapshot the run read (`pg_current_snapshot()`); the next run reads every
    /// row version whose transaction this snapshot could not see.
    #[serde(default)]
    pub snapshot: Option<SourceSnapshot>,
    /// The run whose state this run continued from (`None` for the first run).
    pub previous_run_id: Option<String>,
    /// Why this run read every row rather than the changes since its predecessor (the first
    /// run, or a predecessor whose snapshot cannot be compared with this one's).
    #[serde(default)]
    pub full_read: Option<String>,
    /// One entry per source table, in dependency order.
    pub tables: Vec<TableExtract>,
    /// Tables of the source schema that Onyx does not model (reported when new, not extracted).
    #[serde(default)]
    pub unmodelled_tables: Vec<String>,
    /// How the source schema differs from the previous run's.
    #[serde(default)]
    pub schema_changes: Vec<SchemaChange>,
    /// The transactions at or after the snapshot's `xmin` whose rows this run saw (sorted). The
    /// next run reads from that `xmin` on, to catch the transactions that were still running,
    /// and skips these: their rows were all written already, so nothing is written twice. One
    /// id per transaction, however many rows it wrote; empty when nothing was running.
    #[serde(default)]
    pub seen_transactions: Vec<u64>,
    /// Rows this run could not carry within its size cap (`ONYX_MAX_RUN_ROWS`): the next run
    /// continues from here at once. `None`: everything the snapshot could see was delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingRead>,
    /// What the next run checks to know the source is still this history (see
    /// [`super::continuity`]); absent in manifests written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuity: Option<super::continuity::Continuity>,
    /// Why this run found the source discontinuous with its predecessor's (a failover, a
    /// restore): it read in full. Counted as `SourceDiscontinuities`, which alarms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_discontinuity: Option<String>,
    /// Set when the changes since the previous run exceeded the cap: this run delivered the
    /// transactions before this id (whole, oldest first), and the next run continues at once
    /// from here (see [`IngestionManifest::next_window_start`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_before: Option<u64>,
    /// Per table, every key delivered so far and not found gone from the source (see
    /// [`super::reconcile`]); `None` in manifests written before deletes were reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_keys: Option<BTreeMap<String, KeyRanges>>,
    /// The last run that reconciled keys (this one, if it did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_reconciled_by: Option<String>,
}

/// A read delivered over several bounded runs ("pass"), in dependency order of the tables and
/// key order within a table. Every table before `table`, and the rows of `table` with keys up
/// to `after_key`, have been delivered: later runs read only their changes. The rest is still to
/// be read, with the window the pass started with (`window`: `None` reads every row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRead {
    /// The run that started the pass, and why it was needed.
    pub started_by: String,
    pub reason: String,
    pub window: Option<PassWindow>,
    /// The first table not completely delivered.
    pub table: String,
    /// The last key of `table` delivered (`None`: none yet).
    pub after_key: Option<i64>,
}

/// The changes a pass reads: rows written by transactions at or after `from` except `skip`
/// (those were delivered before the pass began).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassWindow {
    pub from: u64,
    pub skip: Vec<u64>,
    /// Only transactions before this one (a backlog cut at a transaction boundary, see
    /// `extract::backlog_cut`); `None`: no upper bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
}

impl IngestionManifest {
    pub fn table(&self, name: &str) -> Option<&TableExtract> {
        self.tables.iter().find(|t| t.table == name)
    }

    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    /// How many keys this run found deleted, over all tables.
    pub fn deleted_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.deleted.len()).sum()
    }

    /// Whether this run left rows for the next to deliver at once (a pass, or a backlog cut).
    pub fn has_more(&self) -> bool {
        self.pending.is_some() || self.delivered_before.is_some()
    }

    /// Where the next run's window of changes starts: the snapshot's `xmin` (every transaction
    /// it could not see), or the backlog's cut if that is earlier (transactions from there on
    /// were left for later). Transactions at or after it that this run wrote are in
    /// `seen_transactions`.
    pub fn next_window_start(&self) -> Option<u64> {
        let xmin = self.snapshot.as_ref()?.xmin;
        Some(self.delivered_before.map_or(xmin, |cut| cut.min(xmin)))
    }
}

/// A PostgreSQL snapshot in 64-bit transaction ids (`xid8`, epoch included, so never wrapping):
/// transactions below `xmin` had finished; `xmin ≤ xid < xmax` were running if listed in `xip`;
/// `xmax` and above had not started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSnapshot {
    pub xmin: u64,
    pub xmax: u64,
    pub xip: Vec<u64>,
}

impl SourceSnapshot {
    /// Parses `pg_current_snapshot()`'s text form, `xmin:xmax:xip,xip,…`.
    pub fn parse(text: &str) -> Option<SourceSnapshot> {
        let mut parts = text.split(':');
        let xmin = parts.next()?.parse().ok()?;
        let xmax = parts.next()?.parse().ok()?;
        let xip = match parts.next()? {
            "" => Vec::new(),
            list => list.split(',').map(str::parse).collect::<Result<_, _>>().ok()?,
        };
        (parts.next().is_none() && xmin <= xmax).then_some(SourceSnapshot { xmin, xmax, xip })
    }
}

/// What one run extracted from one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableExtract {
    pub table: String,
    /// Row versions written.
    pub rows: u64,
    /// The JSON Lines objects holding them, in order (none when `rows` is 0).
    pub objects: Vec<String>,
    /// The table's columns in the source when the run read it (empty: the table is missing).
    #[serde(default)]
    pub columns: Vec<SourceColumn>,
    /// Keys delivered by earlier runs that this run's reconciliation found gone from the source
    /// (deleted): tombstones for the warehouse.
    #[serde(default, skip_serializing_if = "KeyRanges::is_empty")]
    pub deleted: KeyRanges,
}

/// A source column as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceColumn {
    pub name: String,
    /// `format_type()` of the column, e.g. `numeric(10,2)` or `timestamp without time zone`.
    #[serde(rename = "type")]
    pub data_type: String,
}

/// One difference between the source schema of a run and of its predecessor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaChange {
    pub table: String,
    /// `None` for a whole table.
    pub column: Option<String>,
    /// `column added`, `column dropped`, `column retyped`, `table added` or `table dropped`.
    pub change: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl std::fmt::Display for SchemaChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.table)?;
        if let Some(column) = &self.column {
            write!(f, ".{column}")?;
        }
        write!(f, ": {}", self.change)?;
        match (&self.before, &self.after) {
            (Some(before), Some(after)) => write!(f, " ({before} → {after})"),
            (None, Some(after)) => write!(f, " ({after})"),
            (Some(before), None) => write!(f, " (was {before})"),
            (None, None) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_parse_from_postgres_text() {
        assert_eq!(
            SourceSnapshot::parse("4294967300:4294967310:4294967301,4294967305"),
            Some(SourceSnapshot { xmin: 4_294_967_300, xmax: 4_294_967_310, xip: vec![4_294_967_301, 4_294_967_305] })
        );
        assert_eq!(SourceSnapshot::parse("10:10:"), Some(SourceSnapshot { xmin: 10, xmax: 10, xip: vec![] }));
        for bad in ["", "10:9:", "a:b:", "1:2", "1:2:3:4"] {
            assert_eq!(SourceSnapshot::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn format_1_manifests_still_parse() {
        let old = r#"{"format": 1, "run_id": "20261128T070000000-0001", "snapshot_time": "2026-11-28T07:00:00.000000",
            "previous_run_id": null, "safety_lag_seconds": 300, "tables": [{"table": "currency",
            "window_from": null, "window_to": "2026-11-28T07:00:00.000000", "rows": 3,
            "objects": ["currency/2026/11/28/20261128T070000000-0001-0000.jsonl"],
            "cursor": {"max_last_updated": null, "cutoff": null, "seen": []}}]}"#;
        let manifest: IngestionManifest = serde_json::from_str(old).expect("format 1");
        assert_eq!(manifest.snapshot, None);
        assert_eq!(manifest.table("currency").map(|t| t.rows), Some(3));
    }
}
