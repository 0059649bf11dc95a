//! The ingestion run manifest: what one extract run wrote, and the extraction state the next run
//! starts from. Manifests are immutable; the newest one *is* the extract state.

use serde::{Deserialize, Serialize};

/// Current manifest format version.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestionManifest {
    pub format: u32,
    pub run_id: String,
    /// The source database's clock when the run's snapshot was taken (`YYYY-MM-DDTHH:MM:SS.ffffff`).
    pub snapshot_time: String,
    /// The run whose state this run continued from (`None` for the first run).
    pub previous_run_id: Option<String>,
    /// How long a transaction may commit after its `last_updated` and still be extracted.
    pub safety_lag_seconds: u64,
    /// One entry per source table, in dependency order.
    pub tables: Vec<TableExtract>,
}

impl IngestionManifest {
    pub fn table(&self, name: &str) -> Option<&TableExtract> {
        self.tables.iter().find(|t| t.table == name)
    }

    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// What one run extracted from one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableExtract {
    pub table: String,
    /// Rows with `last_updated >= window_from` were read (`None`: every row)…
    pub window_from: Option<String>,
    /// …as of the snapshot at `window_to`, minus the row versions earlier runs already wrote.
    pub window_to: String,
    /// Row versions written.
    pub rows: u64,
    /// The JSON Lines objects holding them, in order (none when `rows` is 0).
    pub objects: Vec<String>,
    /// Where the next run continues.
    pub cursor: Cursor,
}

/// Extraction state of one table.
///
/// The next run reads `last_updated >= cutoff` and skips the versions in `seen`. The cutoff trails
/// both the newest `last_updated` written (so rows sharing its exact millisecond are re-read) and
/// the snapshot time minus the safety lag (so transactions that commit late with an earlier
/// `last_updated` are still found); `seen` holds every version already written at or after the
/// cutoff, so nothing is written twice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The newest `last_updated` ever written for this table.
    pub max_last_updated: Option<String>,
    /// Lower bound (inclusive) of the next run's window; `None` reads the whole table.
    pub cutoff: Option<String>,
    /// `(primary key, last_updated)` of every version already written with `last_updated >= cutoff`.
    pub seen: Vec<(i32, String)>,
}
