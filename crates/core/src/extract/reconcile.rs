//! Deletes. Reading by commit visibility (xmin) cannot see a row that is gone, so a run
//! reconciles keys from time to time (`ONYX_RECONCILE_EVERY`, and always after a discontinuity):
//! inside its snapshot it compares, per table, the keys the pipeline has delivered and not yet
//! found gone (`delivered_keys` of the manifests, as key ranges) with the keys the source holds
//! now. Like `onyx verify`, it compares per key range first: one scan per table returns a count
//! and a sum of keys per bucket of 4,096 keys, and only buckets that differ are listed key by key.
//! Keys delivered and no longer in the source are the run's `deleted` keys, which the transform
//! turns into tombstones and the load marks in the warehouse (nothing is removed).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::Transaction;

use super::manifest::IngestionManifest;
use crate::db::{error_text, quote_ident};
use crate::key_ranges::KeyRanges;
use crate::keys;
use crate::tables::SourceTable;

/// `ONYX_RECONCILE_EVERY`'s default. On the real sample a reconciliation costs milliseconds; at
/// 100× about a second (see docs/performance.md).
pub const DEFAULT_RECONCILE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Keys per bucket (2^12) of the per-range comparison.
const BUCKET_BITS: u32 = 12;

/// Whether this run reconciles: when the last reconciliation (by the run ids' clock) is at least
/// `every` old, when there has been none, or when `forced` (a discontinuity: the source may
/// have lost rows the pipeline delivered).
pub fn due(previous: Option<&IngestionManifest>, now: DateTime<Utc>, every: Duration, forced: bool) -> bool {
    let Some(previous) = previous else { return false };
    let last = previous.keys_reconciled_by.as_deref().and_then(keys::run_time);
    forced
        || previous.delivered_keys.is_none()
        || last.is_none_or(|at| (now.naive_utc() - at).to_std().is_ok_and(|age| age >= every))
}

/// The keys of `table` a run starts from: what earlier runs delivered and were not found gone.
/// A predecessor that did not keep them (written before deletes were reconciled) knows only
/// that the keys up to the table's largest may have been delivered: every key from 1 (or the
/// smallest, if lower) to the largest counts as delivered, so the first reconciliation also
/// finds rows deleted before the upgrade; a key that never held a row makes a tombstone that
/// marks nothing.
pub async fn delivered_before(
    tx: &Transaction<'_>,
    table: &SourceTable,
    previous: Option<&IngestionManifest>,
) -> Result<KeyRanges, String> {
    match previous {
        None => Ok(KeyRanges::default()),
        Some(previous) => match &previous.delivered_keys {
            Some(keys) => Ok(keys.get(table.name).cloned().unwrap_or_default()),
            None => {
                let key = quote_ident(table.key);
                let row = tx
                    .query_one(
                        &format!("SELECT min({key})::int8, max({key})::int8 FROM {}", quote_ident(table.name)),
                        &[],
                    )
                    .await
                    .map_err(|e| format!("{}: smallest and largest key: {}", table.name, error_text(&e)))?;
                let (low, high): (Option<i64>, Option<i64>) = (row.get(0), row.get(1));
                Ok(match (low, high) {
                    (Some(low), Some(high)) => KeyRanges::from_ranges([(low.min(1), high)]),
                    _ => KeyRanges::default(),
                })
            }
        },
    }
}

/// The keys of `delivered` that `table` no longer holds, in the transaction's snapshot.
pub async fn gone(tx: &Transaction<'_>, table: &SourceTable, delivered: &KeyRanges) -> Result<KeyRanges, String> {
    let (Some(&(low, _)), Some(&(_, high))) = (delivered.ranges().first(), delivered.ranges().last()) else {
        return Ok(KeyRanges::default());
    };
    let fail = |what: &str, e: tokio_postgres::Error| format!("{}: {what}: {}", table.name, error_text(&e));
    let (name, key) = (quote_ident(table.name), quote_ident(table.key));
    let source: BTreeMap<i64, (i64, i128)> = tx
        .query(
            &format!(
                "SELECT k >> {BUCKET_BITS}, count(*), sum(k)::text
                 FROM (SELECT {key}::int8 AS k FROM {name} WHERE {key} BETWEEN $1::int8 AND $2::int8) s GROUP BY 1"
            ),
            &[&low, &high],
        )
        .await
        .map_err(|e| fail("keys per range", e))?
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get::<_, String>(2).parse().unwrap_or(i128::MIN))))
        .collect();
    let ours = bucket_digests(delivered);
    let differing: Vec<i64> =
        ours.iter().filter(|(bucket, digest)| source.get(bucket) != Some(digest)).map(|(bucket, _)| *bucket).collect();
    if differing.is_empty() {
        return Ok(KeyRanges::default());
    }
    let present = tx
        .query(
            &format!(
                "SELECT {key}::int8 FROM {name}, unnest($1::int8[]) AS b(n)
                 WHERE {key} >= b.n << {BUCKET_BITS} AND {key} < (b.n + 1) << {BUCKET_BITS}"
            ),
            &[&differing],
        )
        .await
        .map_err(|e| fail("keys of the ranges that differ", e))?;
    let present = KeyRanges::from_keys(present.iter().map(|row| row.get::<_, i64>(0)));
    let mut gone = KeyRanges::default();
    for bucket in differing {
        let (from, to) = (bucket << BUCKET_BITS, ((bucket + 1) << BUCKET_BITS) - 1);
        gone = gone.union(&delivered.within(from, to).difference(&present));
    }
    Ok(gone)
}

/// Per bucket of keys: how many keys and their sum.
fn bucket_digests(keys: &KeyRanges) -> BTreeMap<i64, (i64, i128)> {
    let mut digests: BTreeMap<i64, (i64, i128)> = BTreeMap::new();
    for &(lo, hi) in keys.ranges() {
        let mut from = lo;
        loop {
            let bucket = from >> BUCKET_BITS;
            let to = hi.min(((bucket + 1) << BUCKET_BITS) - 1);
            let n = i128::from(to) - i128::from(from) + 1;
            let entry = digests.entry(bucket).or_default();
            entry.0 += n as i64;
            entry.1 += (i128::from(from) + i128::from(to)) * n / 2;
            if to >= hi {
                break;
            }
            from = to + 1;
        }
    }
    digests
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_digests_count_and_sum_the_keys_of_each_bucket() {
        let keys: KeyRanges = "1..5000,8190..8200,-3..-1".parse().expect("ranges");
        let digests = bucket_digests(&keys);
        let mut expected: BTreeMap<i64, (i64, i128)> = BTreeMap::new();
        for (lo, hi) in keys.ranges() {
            for k in *lo..=*hi {
                let e = expected.entry(k >> BUCKET_BITS).or_default();
                e.0 += 1;
                e.1 += i128::from(k);
            }
        }
        assert_eq!(digests, expected);
    }
}
