//! Poison runs (issue #11): a run that fails for a reason retrying will not fix is recorded,
//! blocks the runs after it (order is kept), shows in `onyx status`, and can be set aside with
//! `onyx park` (audited in the bucket and the ledger) so later runs flow; `onyx unpark` puts it
//! back for a rebuild.

use std::process::Command;

use onyx_core::storage::ObjectStore;
use onyx_core::{extract, keys, load, ops, runs, transform};

use crate::support::{TestDb, count, local_dir, onyx_binary, run_pipeline, warehouse_db};

fn onyx(args: &[&str]) -> (bool, String) {
    let output = Command::new(onyx_binary())
        .args(args)
        .env("ONYX_OPERATOR", "on-call@example")
        .env_remove("ONYX_SOURCE_URL")
        .env_remove("ONYX_WAREHOUSE_URL")
        .output()
        .expect("run onyx");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

async fn extract_and_transform(source: &TestDb, ingestion: &dyn ObjectStore, processed: &dyn ObjectStore) -> String {
    let mut client = source.connect().await;
    let run = extract::run(&mut client, ingestion, &Default::default()).await.expect("extract").manifest.run_id;
    transform::transform_pending(ingestion, processed, None).await.expect("transform");
    run
}

/// The warehouse rejects run 2 deterministically (a CHECK constraint the run violates: SQLSTATE
/// 23514). The failure is recorded and not retried as transient; run 3 waits behind it; after
/// `onyx park`, run 2 is recorded as parked (who, why) and run 3 loads. Unparked, run 2 is part
/// of a rebuild again.
#[tokio::test]
async fn a_run_the_warehouse_rejects_blocks_later_runs_until_it_is_parked() {
    let source_db = TestDb::seeded("rc_load").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("rc-load-in");
    let (processed_location, processed, _) = local_dir("rc-load-out");
    let processed_arg = processed_location.to_string();
    let (warehouse_db_, mut warehouse) = warehouse_db("rc_load_wh").await;
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    warehouse
        .batch_execute("ALTER TABLE fact_payment ADD CONSTRAINT below_a_million CHECK (payment_amount < 1000000)")
        .await
        .expect("constraint");

    source
        .batch_execute(
            "UPDATE payment SET payment_amount = 2000000, last_updated = LOCALTIMESTAMP WHERE payment_id = 20",
        )
        .await
        .expect("a big payment");
    let poison = extract_and_transform(&source_db, ingestion.as_ref(), processed.as_ref()).await;
    let error =
        load::load_pending(&mut warehouse, processed.as_ref(), None, &Default::default()).await.expect_err("23514");
    assert!(!error.is_retryable(), "a constraint violation does not pass by itself: {error}");
    assert!(error.to_string().contains(&poison) && error.to_string().contains("fact_payment"), "{error}");
    let failures = runs::failures(processed.as_ref()).await.expect("failures");
    assert_eq!(failures.len(), 1);
    assert_eq!((failures[0].stage.as_str(), failures[0].run_id.as_str()), ("load", poison.as_str()));

    source
        .batch_execute("UPDATE payment SET paid = NOT paid, last_updated = LOCALTIMESTAMP WHERE payment_id = 21")
        .await
        .expect("a later change");
    let later = extract_and_transform(&source_db, ingestion.as_ref(), processed.as_ref()).await;
    load::load_pending(&mut warehouse, processed.as_ref(), None, &Default::default()).await.expect_err("still blocked");
    let loaded = ops::loaded_runs(&warehouse).await.expect("ledger");
    assert!(!loaded.contains_key(&later), "the later run waits behind the failed one");
    let (ok, status) = onyx(&["status", "--ingestion", &ingestion.location(), "--processed", &processed_arg]);
    assert!(ok, "{status}");
    assert!(status.contains(&format!("BLOCKED: load of run {poison}")), "{status}");

    let (ok, out) =
        onyx(&["park", &poison, "--reason", "amount breaks the finance check", "--processed", &processed_arg]);
    assert!(ok && out.contains(&format!("parked {poison}")), "{out}");
    let done = load::load_pending(&mut warehouse, processed.as_ref(), None, &Default::default()).await.expect("flows");
    assert_eq!(done.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(), [poison.as_str(), later.as_str()]);
    assert!(done[0].parked.is_some() && done[1].parked.is_none());
    let audit = warehouse
        .query_one("SELECT status, note->>'by', note->>'reason' FROM onyx_load_ledger WHERE run_id = $1", &[&poison])
        .await
        .expect("ledger row");
    let audit: (String, String, String) = (audit.get(0), audit.get(1), audit.get(2));
    assert_eq!(audit, ("parked".into(), "on-call@example".into(), "amount breaks the finance check".into()));
    assert_eq!(count(&warehouse, "SELECT count(*) FROM fact_payment WHERE payment_amount = 2000000").await, 0);
    assert_eq!(count(&warehouse, "SELECT count(*) FROM fact_payment WHERE payment_id = 21").await, 2, "run 3 loaded");
    // The calendar days the parked run's transform added loaded with it: dim_date has no gap.
    let gaps = count(&warehouse, "SELECT (max(date_id) - min(date_id) + 1) - count(*) FROM dim_date").await;
    assert_eq!(gaps, 0, "dim_date stays a contiguous calendar across a parked run");
    let (_, status) = onyx(&["status", "--ingestion", &ingestion.location(), "--processed", &processed_arg]);
    assert!(status.contains(&format!("parked: {poison} by on-call@example")), "{status}");

    // Unparked: a rebuild into an empty warehouse (without the extra constraint) includes it.
    let (ok, out) = onyx(&["unpark", &poison, "--processed", &processed_arg]);
    assert!(ok, "{out}");
    let (_, mut rebuilt) = warehouse_db("rc_load_rebuilt").await;
    ops::backfill(ingestion.as_ref(), processed.as_ref(), &mut rebuilt, |_, _, _| {}).await.expect("rebuild");
    assert_eq!(count(&rebuilt, "SELECT count(*) FROM fact_payment WHERE payment_amount = 2000000").await, 1);
    drop(warehouse_db_);
}

/// An ingestion part of run 2 is gone (NotFound: not retryable): the transform records the
/// failure and run 3 waits; parked, run 2 becomes a processed manifest that carries no rows and
/// says so, the load records it as parked, and run 3 flows through both stages.
#[tokio::test]
async fn a_run_the_transform_cannot_read_blocks_later_runs_until_it_is_parked() {
    let source_db = TestDb::seeded("rc_tr").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, ingestion_dir) = local_dir("rc-tr-in");
    let (_, processed, _) = local_dir("rc-tr-out");
    let (_, mut warehouse) = warehouse_db("rc_tr_wh").await;
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;

    source
        .batch_execute("UPDATE payment SET paid = NOT paid, last_updated = LOCALTIMESTAMP WHERE payment_id = 22")
        .await
        .expect("change");
    let poison = extract::run(&mut source, ingestion.as_ref(), &Default::default()).await.expect("extract").manifest;
    let part = &poison.table("payment").expect("payment").objects[0];
    std::fs::remove_file(ingestion_dir.join(part)).expect("lose the part");
    let error = transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect_err("lost");
    assert!(!error.is_retryable(), "{error}");
    source
        .batch_execute("UPDATE payment SET paid = NOT paid, last_updated = LOCALTIMESTAMP WHERE payment_id = 23")
        .await
        .expect("later change");
    let later = extract::run(&mut source, ingestion.as_ref(), &Default::default()).await.expect("extract").manifest;
    transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect_err("still blocked");
    assert!(processed.get(&keys::manifest(&later.run_id)).await.is_err(), "the later run waits");
    let failures = runs::failures(processed.as_ref()).await.expect("failures");
    assert!(failures.iter().all(|f| f.stage == "transform" && f.run_id == poison.run_id), "{failures:?}");
    assert!(failures[0].error.contains(part.as_str()), "names the object: {}", failures[0].error);

    runs::park(processed.as_ref(), &poison.run_id, "part lost in a bucket migration", "tester").await.expect("park");
    let done = transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("flows");
    assert_eq!(done.len(), 2);
    assert!(done[0].manifest.parked.is_some() && done[0].manifest.total_rows() == 0);
    let loaded = load::load_pending(&mut warehouse, processed.as_ref(), None, &Default::default()).await.expect("load");
    assert_eq!(loaded.len(), 2);
    assert_eq!(loaded[0].parked.as_ref().map(|p| p.reason.as_str()), Some("part lost in a bucket migration"));
    assert_eq!(count(&warehouse, "SELECT count(*) FROM fact_payment WHERE payment_id = 23").await, 2);
    assert_eq!(count(&warehouse, "SELECT count(*) FROM onyx_load_ledger WHERE status = 'parked'").await, 1);
    let freshness = load::warehouse_freshness(&warehouse, onyx_core::chrono::Utc::now()).await.expect("freshness");
    assert!(
        freshness.is_some_and(|s| (0.0..600.0).contains(&s)),
        "the newest loaded run is minutes old: {freshness:?}"
    );
}
