//! Continuity of the source between two runs (pipeline.md invariant 11). Transaction ids compare
//! only within one database history: a promoted lagging replica or a restore (point-in-time or
//! from a copy of the files) rewinds the counter, and once new transactions pass the old counter
//! again, "everything since the previous snapshot" silently misses the new history's older
//! transactions. The system identifier, database oid and timeline do not change for a restored
//! cold copy, so each manifest also records what the run saw last:
//!
//! - the WAL timeline and insert position (a new timeline, or a position behind the previous
//!   run's, is a different history);
//! - **witnesses**: the newest row versions the runs saw (table, key, writing transaction). In
//!   the same history each is still there — or replaced by a later version the next window reads.
//!   A restore to an earlier point loses exactly the newest writes: the newest witness is gone or
//!   an older version is back.
//!
//! A discontinuity makes the run read everything (a pass), log an ERROR that names what changed
//! and count it (`SourceDiscontinuities`, alarmed on). Deleting the newest row a run saw also
//! looks like a discontinuity: the cost is one full read, never a lost row.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, Transaction};

use super::manifest::SourceSnapshot;
use crate::db::{error_text, quote_ident};
use crate::tables::SourceTable;

/// How many witnesses a manifest keeps: the newest row versions of this many transactions.
pub const WITNESSES: usize = 8;

/// What one run leaves for the next to check (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Continuity {
    /// The WAL timeline (`None`: a standby, or a login that may not read it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<u32>,
    /// The WAL insert position, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_position: Option<u64>,
    /// Newest first.
    pub witnesses: Vec<Witness>,
}

/// A row version a run saw: the row `key` of `table`, written by transaction `xid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Witness {
    pub table: String,
    pub key: i64,
    pub xid: u64,
}

/// The newest row versions seen so far, one per transaction.
#[derive(Debug, Default)]
pub struct WitnessSet {
    newest: BTreeMap<u64, (&'static str, i64)>,
}

impl WitnessSet {
    pub fn offer(&mut self, table: &'static SourceTable, key: i64, xid: u64) {
        if self.newest.len() >= WITNESSES && self.newest.first_key_value().is_some_and(|(oldest, _)| xid <= *oldest) {
            return;
        }
        self.newest.entry(xid).or_insert((table.name, key));
        if self.newest.len() > WITNESSES {
            self.newest.pop_first();
        }
    }

    /// Witnesses a predecessor recorded that this run found in place.
    pub fn keep(&mut self, witness: &Witness) {
        if let Some(table) = crate::tables::SourceTable::named(&witness.table) {
            self.offer(table, witness.key, witness.xid);
        }
    }

    pub fn absorb(&mut self, other: WitnessSet) {
        for (xid, (table, key)) in other.newest {
            if let Some(table) = SourceTable::named(table) {
                self.offer(table, key, xid);
            }
        }
    }

    pub fn into_witnesses(self) -> Vec<Witness> {
        self.newest
            .into_iter()
            .rev()
            .map(|(xid, (table, key))| Witness { table: table.to_string(), key, xid })
            .collect()
    }
}

/// The WAL timeline and insert position of the source, where it can tell (a primary, a login
/// allowed to call the functions); read outside the snapshot transaction, so a refusal cannot
/// abort it.
pub async fn wal_position(client: &Client) -> (Option<u32>, Option<u64>) {
    let row = client
        .query_opt(
            "SELECT pg_walfile_name(pg_current_wal_lsn()), (pg_current_wal_lsn() - '0/0'::pg_lsn)::text
             WHERE NOT pg_is_in_recovery()",
            &[],
        )
        .await
        .ok()
        .flatten();
    let Some(row) = row else { return (None, None) };
    let timeline = row
        .try_get::<_, String>(0)
        .ok()
        .and_then(|file| file.get(..8).and_then(|hex| u32::from_str_radix(hex, 16).ok()));
    let position = row.try_get::<_, String>(1).ok().and_then(|bytes| bytes.parse().ok());
    (timeline, position)
}

/// Why the WAL says the source is another history than the one run `previous_run` read: a new
/// timeline (a failover, a point-in-time restore) or a position behind the recorded one.
pub fn wal_discontinuity(previous_run: &str, before: &Continuity, now: (Option<u32>, Option<u64>)) -> Option<String> {
    if let (Some(was), Some(is)) = (before.timeline, now.0)
        && was != is
    {
        return Some(format!(
            "source continuity broken: the WAL timeline changed from {was} to {is} since run {previous_run} (a failover or a point-in-time restore)"
        ));
    }
    if let (Some(was), Some(is)) = (before.wal_position, now.1)
        && is < was
    {
        return Some(format!(
            "source continuity broken: the WAL position {is} is behind run {previous_run}'s {was} (the database was restored or rewound)"
        ));
    }
    None
}

/// What became of one witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessState {
    /// The same row version.
    InPlace,
    /// A later version, written by a transaction the new window reads.
    Replaced,
    /// An older version than the one the previous run saw (written by `xid`).
    Older { xid: u64 },
    /// No row with that key.
    Missing,
}

/// Why the source is not the history the previous run read, if a witness says so (one back at an
/// older version, or the newest gone), and the witnesses found in place. `reads` tells whether
/// the new window reads a transaction.
pub async fn check(
    tx: &Transaction<'_>,
    previous_run: &str,
    before: &Continuity,
    snapshot: &SourceSnapshot,
    reads: impl Fn(u64) -> bool,
    tables_present: impl Fn(&str) -> bool,
) -> Result<(Option<String>, Vec<Witness>), String> {
    let mut in_place = Vec::new();
    for (index, witness) in before.witnesses.iter().enumerate() {
        let Some(table) = SourceTable::named(&witness.table).filter(|t| tables_present(t.name)) else { continue };
        let sql = format!(
            "SELECT xmin::text::int8 FROM {} WHERE {} = $1::int8",
            quote_ident(table.name),
            quote_ident(table.key)
        );
        let row = tx.query_opt(sql.as_str(), &[&witness.key]).await.map_err(|e| error_text(&e))?;
        let state = match row {
            None => WitnessState::Missing,
            Some(row) => {
                let xmin: i64 = row.get(0);
                let xid = super::full_xid(xmin as u32, snapshot);
                if xid == witness.xid {
                    WitnessState::InPlace
                } else if xid > witness.xid && reads(xid) {
                    WitnessState::Replaced
                } else {
                    WitnessState::Older { xid }
                }
            }
        };
        let broken = match &state {
            WitnessState::Older { xid } => Some(format!("an older version (transaction {xid}) is back")),
            WitnessState::Missing if index == 0 => Some("it is gone".to_string()),
            _ => None,
        };
        if let Some(what) = broken {
            return Ok((
                Some(format!(
                    "source continuity broken: {} {}={} as written by transaction {}, which run {previous_run} saw, is not there: {what} (the database was restored or failed over to an earlier point)",
                    table.name, table.key, witness.key, witness.xid
                )),
                Vec::new(),
            ));
        }
        if state == WitnessState::InPlace {
            in_place.push(witness.clone());
        }
    }
    Ok((None, in_place))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::{PAYMENT, SALES_ORDER};

    #[test]
    fn witnesses_are_the_newest_transactions_one_row_each() {
        let mut set = WitnessSet::default();
        for xid in 1..=20u64 {
            set.offer(&PAYMENT, xid as i64, xid);
        }
        set.offer(&SALES_ORDER, 99, 20);
        set.offer(&SALES_ORDER, 5, 3);
        let witnesses = set.into_witnesses();
        assert_eq!(witnesses.len(), WITNESSES);
        assert_eq!(witnesses[0], Witness { table: "payment".into(), key: 20, xid: 20 });
        assert_eq!(witnesses.last().map(|w| w.xid), Some(13));
    }
}
