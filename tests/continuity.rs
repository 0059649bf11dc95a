//! Continuity of the source (issue #22, pipeline.md invariant 11): a database restored from a
//! copy of its files keeps its system identifier, database oid and timeline, and once enough new
//! transactions ran its transaction counter passes the previous run's again — so counters alone
//! cannot tell. Each manifest records witnesses (the newest row versions the run saw: table, key,
//! transaction) and the WAL position; the next run checks them, and on any discontinuity reads in
//! full, says why in an ERROR and counts it in the manifest (the `SourceDiscontinuities` metric).
//! Tested with a real second cluster made from a cold copy of the first's data directory.

use onyx_core::extract::{self, ExtractOptions, IngestionManifest};
use onyx_core::storage::ObjectStore;
use onyx_core::verify::{self, VerifyOptions};
use onyx_core::{load, transform};

use crate::support::cluster::PrivateCluster;
use crate::support::{CapturedLogs, local_dir, warehouse_db};

async fn extract_once(source: &mut onyx_core::tokio_postgres::Client, store: &dyn ObjectStore) -> IngestionManifest {
    extract::run(source, store, &ExtractOptions::default()).await.expect("extract").manifest
}

/// The latest extracted `(paid, last_updated)` of payments `ids`, across every run in order.
async fn extracted_payments(store: &dyn ObjectStore, ids: std::ops::RangeInclusive<i64>) -> Vec<(i64, String)> {
    let mut latest = std::collections::BTreeMap::new();
    for row in crate::extract::extracted_rows(store, "payment").await {
        let id = row["payment_id"].as_i64().expect("id");
        if ids.contains(&id) {
            latest.insert(id, format!("{}/{}", row["paid"], row["last_updated"].as_str().unwrap_or_default()));
        }
    }
    latest.into_iter().collect()
}

/// Mechanism: `extract::read_window` with the manifest's `continuity` witnesses. Cluster A is
/// extracted, copied cold (the "snapshot"), changed (100 payments, one transaction each) and
/// extracted again; then the copy B takes its place at the same address, burns transaction ids
/// past A's counter and changes 100 other payments. Before, run 3 read from run 2's `xmin` and
/// silently missed B's changes below it. Now run 3 finds run 2's witnesses replaced by older
/// versions, reads everything, logs an ERROR naming the witness, and the warehouse built from the
/// runs verifies clean against B — three payments only A had are marked deleted.
#[tokio::test]
async fn a_source_restored_from_a_cold_copy_is_read_in_full_and_loses_nothing() {
    let a = PrivateCluster::start_new("restore");
    let admin = a.connect("postgres").await;
    admin.batch_execute("CREATE DATABASE totesys").await.expect("create database");
    let mut source = a.connect("totesys").await;
    onyx_core::seed::seed_sample(&mut source).await.expect("seed");
    let (_, ingestion, _) = local_dir("continuity-in");
    extract_once(&mut source, ingestion.as_ref()).await;
    drop(source);
    drop(admin);

    a.stop();
    let b = a.cold_copy();
    a.start();
    let mut source = a.connect("totesys").await;
    for id in 1..=100 {
        source
            .batch_execute(&format!("UPDATE payment SET paid = NOT paid, last_updated = now() WHERE payment_id = {id}"))
            .await
            .expect("change on A");
    }
    // Three payments that only A ever has: the restore loses them.
    let lost: Vec<i32> = source
        .query(
            "INSERT INTO payment (transaction_id, counterparty_id, payment_amount, currency_id, payment_type_id, paid,
                payment_date, company_ac_number, counterparty_ac_number)
             SELECT transaction_id, counterparty_id, payment_amount, currency_id, payment_type_id, paid, payment_date,
                    company_ac_number, counterparty_ac_number FROM payment WHERE payment_id <= 3
             RETURNING payment_id",
            &[],
        )
        .await
        .expect("payments only on A")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let second = extract_once(&mut source, ingestion.as_ref()).await;
    assert_eq!(second.table("payment").map(|t| t.rows), Some(103));
    drop(source);
    a.stop();

    b.start();
    let mut source = b.connect("totesys").await;
    for id in 201..=300 {
        source
            .batch_execute(&format!("UPDATE payment SET paid = NOT paid, last_updated = now() WHERE payment_id = {id}"))
            .await
            .expect("change on B");
    }
    let old_xmax = second.snapshot.as_ref().expect("snapshot").xmax;
    loop {
        let row = source.query_one("SELECT pg_current_xact_id()::text::int8", &[]).await.expect("xid");
        if row.get::<_, i64>(0) as u64 > old_xmax + 5 {
            break;
        }
    }
    let logs = CapturedLogs::default();
    let guard = logs.install();
    let third = extract_once(&mut source, ingestion.as_ref()).await;
    drop(guard);

    let reason = third.full_read.as_deref().unwrap_or_else(|| {
        panic!(
            "a restored source must be read in full; run 3 read {} payments",
            third.table("payment").map_or(0, |t| t.rows)
        )
    });
    assert!(reason.contains("continuity"), "the reason names the broken continuity: {reason}");
    assert_eq!(third.source_discontinuity.as_deref(), Some(reason), "recorded for the metric");
    let text = logs.text();
    assert!(text.lines().any(|l| l.contains("\"ERROR\"") && l.contains("continuity")), "an ERROR says why: {text}");
    let source_rows: Vec<(i64, String)> = source
        .query(
            "SELECT payment_id::int8, paid::text || '/' || to_char(last_updated, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')
             FROM payment WHERE payment_id BETWEEN 201 AND 300 ORDER BY 1",
            &[],
        )
        .await
        .expect("source")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(extracted_payments(ingestion.as_ref(), 201..=300).await, source_rows, "every change on B extracted");

    let (_, processed, _) = local_dir("continuity-out");
    let (_wh, mut warehouse) = warehouse_db("continuity_wh").await;
    transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    load::load_pending(&mut warehouse, processed.as_ref(), None, &Default::default()).await.expect("load");
    let report =
        verify::verify(&mut source, &warehouse, ingestion.as_ref(), &VerifyOptions::default()).await.expect("verify");
    assert!(report.is_clean(), "{report:#?}");
    // The payments the restore lost: found gone by the reconciliation a discontinuity forces, and
    // marked (issue #22 item 6); before, verify reported them as extra rows.
    assert_eq!(
        third.table("payment").map(|t| t.deleted.len()),
        Some(3),
        "{:?}",
        third.table("payment").map(|t| &t.deleted)
    );
    let ids: Vec<i32> = lost;
    let marked: i64 = warehouse
        .query_one("SELECT count(*) FROM fact_payment WHERE payment_id = ANY($1) AND deleted_at IS NOT NULL", &[&ids])
        .await
        .expect("marks")
        .get(0);
    assert_eq!(marked, 3);

    // And the run after the full read continues incrementally.
    let fourth = extract_once(&mut source, ingestion.as_ref()).await;
    assert!(fourth.full_read.is_none(), "{:?}", fourth.full_read);
}

/// Mechanism: the WAL timeline in `continuity::check`. A standby made by `pg_basebackup` after
/// run 1 lags behind its primary, which changes 50 payments and is extracted again; then the
/// primary is gone and the standby is promoted at the same address (a failover to a lagging
/// replica: a new timeline). Run 3 names the timeline change, reads in full, and the
/// warehouse verifies clean against the promoted server.
#[tokio::test]
async fn a_promoted_lagging_replica_is_a_new_timeline_and_is_read_in_full() {
    let primary = PrivateCluster::start_new("failover");
    let admin = primary.connect("postgres").await;
    admin.batch_execute("CREATE DATABASE totesys").await.expect("create database");
    let mut source = primary.connect("totesys").await;
    onyx_core::seed::seed_sample(&mut source).await.expect("seed");
    let (_, ingestion, _) = local_dir("failover-in");
    extract_once(&mut source, ingestion.as_ref()).await;
    let standby = primary.base_backup();
    for id in 1..=50 {
        source
            .batch_execute(&format!("UPDATE payment SET paid = NOT paid, last_updated = now() WHERE payment_id = {id}"))
            .await
            .expect("change on the primary");
    }
    let second = extract_once(&mut source, ingestion.as_ref()).await;
    assert_eq!(second.table("payment").map(|t| t.rows), Some(50));
    assert_eq!(second.continuity.as_ref().and_then(|c| c.timeline), Some(1), "{:?}", second.continuity);
    drop(source);
    drop(admin);
    primary.stop();

    standby.start();
    standby.promote();
    let mut source = standby.connect("totesys").await;
    source.batch_execute("SELECT 1").await.expect("the promoted server answers");
    let third = extract_once(&mut source, ingestion.as_ref()).await;
    let reason = third.source_discontinuity.as_deref().expect("a failover is a discontinuity");
    assert!(reason.contains("timeline changed from 1 to 2"), "{reason}");
    assert!(third.full_read.is_some());

    let (_, processed, _) = local_dir("failover-out");
    let (_wh, mut warehouse) = warehouse_db("failover_wh").await;
    transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    load::load_pending(&mut warehouse, processed.as_ref(), None, &Default::default()).await.expect("load");
    let report =
        verify::verify(&mut source, &warehouse, ingestion.as_ref(), &VerifyOptions::default()).await.expect("verify");
    assert!(report.is_clean(), "{report:#?}");
}
