//! The transform's knowledge of earlier runs: the latest valid row of every reference table and
//! the ids of every transaction. One immutable snapshot per run in the processed bucket
//! (`_state/…/<run_id>.json`), so a transform never depends on memory between calls.
//!
//! It also holds the facts that wait for a reference (`held`): a sales order, purchase order or
//! payment whose content is valid but which names a reference no run has brought yet. Each is
//! kept with its raw row, reason, original run and `version_order`, re-applied by every later
//! run before that run's own rows of the table, and released (emitted with its original
//! `version_order`) by the first run in which all its references exist. Only held rows are kept,
//! never the quarantine history, so the state grows with what is waiting, not with time.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// 2: `held` and `requeue_after` (absent, they default to none). 3: `calendar`.
pub const FORMAT: u32 = 3;

/// Source tables whose latest rows the transform keeps (dimension sources).
pub const REFERENCE_TABLES: [&str; 7] =
    ["currency", "department", "address", "counterparty", "staff", "design", "payment_type"];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferenceState {
    pub format: u32,
    /// The run after which this is the state (`None` before the first run).
    pub after_run: Option<String>,
    /// Latest valid source row per id, per reference table.
    pub rows: BTreeMap<String, BTreeMap<i32, Map<String, Value>>>,
    /// Every known transaction id, as sorted inclusive ranges.
    pub transactions: Vec<(i32, i32)>,
    /// Facts waiting for a reference, in the order they were first read.
    #[serde(default)]
    pub held: Vec<Held>,
    /// The last requeue request consumed (`_requeue/<id>.json`): later ones are still to do.
    #[serde(default)]
    pub requeue_after: Option<String>,
    /// The first and last day of `dim_date` as the runs so far emitted it: every day in between
    /// is in it (Power BI's date table needs no gaps), so a run emits only the days that extend it.
    #[serde(default)]
    pub calendar: Option<(NaiveDate, NaiveDate)>,
    /// Days a state written before `calendar` existed (format < 3) leaves to fill: the extent of
    /// the `dim_date` rows already in the processed bucket, which the next run emits whole so
    /// that the gaps older runs left close. Not stored.
    #[serde(skip)]
    pub calendar_to_fill: Option<(NaiveDate, NaiveDate)>,
    /// The `version_order` of the version in `rows`, per reference table and id (absent for rows
    /// a state before it recorded): a held or requeued reference row is older than the state's
    /// when it was read earlier — commit order, not `last_updated`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub row_orders: BTreeMap<String, BTreeMap<i32, String>>,
}

/// A fact held for an unknown reference (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    pub table: String,
    pub key: Option<i64>,
    pub column: Option<String>,
    /// Why it is held, as of the last run that tried it.
    pub reason: String,
    /// The run that first read it, and the object and line it came from.
    pub run_id: String,
    pub source_object: String,
    pub line: usize,
    /// Its `version_order` from that run: the one it is emitted with when released.
    pub version_order: String,
    pub row: Map<String, Value>,
}

impl ReferenceState {
    pub fn row(&self, table: &str, id: i32) -> Option<&Map<String, Value>> {
        self.rows.get(table).and_then(|rows| rows.get(&id))
    }

    pub fn knows(&self, table: &str, id: i32) -> bool {
        self.row(table, id).is_some()
    }

    pub fn set_row(&mut self, table: &str, id: i32, row: Map<String, Value>) {
        self.rows.entry(table.to_string()).or_default().insert(id, row);
    }

    /// Forgets the reference rows of `table` whose keys are in `deleted` (gone from the source):
    /// a later change of their department or address must not emit them again.
    pub fn forget_rows(&mut self, table: &str, deleted: &crate::key_ranges::KeyRanges) {
        if let Some(rows) = self.rows.get_mut(table) {
            rows.retain(|id, _| !deleted.contains(i64::from(*id)));
        }
        if let Some(orders) = self.row_orders.get_mut(table) {
            orders.retain(|id, _| !deleted.contains(i64::from(*id)));
        }
    }

    pub fn set_row_order(&mut self, table: &str, id: i32, version_order: String) {
        self.row_orders.entry(table.to_string()).or_default().insert(id, version_order);
    }

    pub fn row_order(&self, table: &str, id: i32) -> Option<&str> {
        self.row_orders.get(table).and_then(|orders| orders.get(&id)).map(String::as_str)
    }

    pub fn rows_of(&self, table: &str) -> impl Iterator<Item = (&i32, &Map<String, Value>)> {
        self.rows.get(table).into_iter().flatten()
    }

    pub fn knows_transaction(&self, id: i32) -> bool {
        let i = self.transactions.partition_point(|(_, end)| *end < id);
        self.transactions.get(i).is_some_and(|(start, _)| *start <= id)
    }

    pub fn add_transaction(&mut self, id: i32) {
        if self.knows_transaction(id) {
            return;
        }
        let i = self.transactions.partition_point(|(_, end)| *end < id);
        self.transactions.insert(i, (id, id));
        // Merge with neighbours that now touch.
        if i + 1 < self.transactions.len() && self.transactions[i + 1].0 == id + 1 {
            self.transactions[i].1 = self.transactions[i + 1].1;
            self.transactions.remove(i + 1);
        }
        if i > 0 && self.transactions[i - 1].1 + 1 == id {
            self.transactions[i - 1].1 = self.transactions[i].1;
            self.transactions.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_ids_are_kept_as_ranges() {
        let mut state = ReferenceState::default();
        for id in [3, 1, 2, 7, 5, 6, 2] {
            state.add_transaction(id);
        }
        assert_eq!(state.transactions, vec![(1, 3), (5, 7)]);
        assert!(state.knows_transaction(6) && !state.knows_transaction(4) && !state.knows_transaction(8));
        state.add_transaction(4);
        assert_eq!(state.transactions, vec![(1, 7)]);
    }
}
