//! The source behaving like real databases do (issue #10): long and backdated transactions,
//! subtransactions, transactions over several tables, the `now()` commit-order race, time zones
//! and clocks that go back, microseconds, odd values, schema drift, two extracts at once.
//! Each test names the mechanism it exercises; each fails on the `last_updated`-window extract.

use std::time::Duration;

use chrono::Utc;
use onyx_core::extract::{self, ExtractOptions, IngestionManifest};
use onyx_core::storage::ObjectStore;
use onyx_core::tokio_postgres::Client;
use onyx_core::{keys, transform};
use serde_json::Value;

use crate::extract::{assert_exactly_once, extracted_rows, manifests, source_versions, versions};
use crate::support::{CapturedLogs, TestDb, local_dir, onyx_binary, run_pipeline, s3_bucket, warehouse_db};

fn options() -> ExtractOptions {
    ExtractOptions::default()
}

async fn run(client: &mut Client, store: &dyn ObjectStore) -> IngestionManifest {
    extract::run(client, store, &options()).await.expect("extract").manifest
}

fn rows_of(manifest: &IngestionManifest, table: &str) -> u64 {
    manifest.table(table).map_or(0, |t| t.rows)
}

/// Every source version of `table` is in the ingestion bucket, exactly once.
async fn assert_all_versions_once(db: &TestDb, store: &dyn ObjectStore, table: &str, key: &str) {
    let written = versions(store, table, key).await;
    assert_exactly_once(&written, table);
    for version in source_versions(db, table, key).await {
        assert!(written.contains_key(&version), "{table} {version:?} was never extracted");
    }
}

/// `UPDATE … SET last_updated = <a past time>` committed between two runs: the stamp is older
/// than any window's start, but the row's new transaction id is after the last snapshot.
#[tokio::test]
async fn a_backdated_last_updated_is_extracted() {
    let db = TestDb::seeded("src_backdated").await;
    let (_, store, _) = local_dir("src-backdated");
    let mut client = db.connect().await;
    run(&mut client, store.as_ref()).await;
    client
        .batch_execute("UPDATE payment SET paid = NOT paid, last_updated = '2022-01-01 00:00:00' WHERE payment_id = 8")
        .await
        .expect("backdate");
    let second = run(&mut client, store.as_ref()).await;
    assert_eq!(rows_of(&second, "payment"), 1);
    assert_all_versions_once(&db, store.as_ref(), "payment", "payment_id").await;
}

/// An update inside a savepoint gets a subtransaction id, which `pg_current_snapshot()` does not
/// list among running transactions: the writer is open across a run, so only reading from the
/// previous snapshot's `xmin` (not its `xip` list) finds the row once it commits.
#[tokio::test]
async fn an_update_in_a_savepoint_of_a_transaction_open_across_runs_is_extracted() {
    let db = TestDb::seeded("src_subxact").await;
    let (_, store, _) = local_dir("src-subxact");
    let mut client = db.connect().await;
    run(&mut client, store.as_ref()).await;
    let mut writer = db.connect().await;
    let tx = writer.transaction().await.expect("begin");
    tx.batch_execute(
        "UPDATE currency SET last_updated = LOCALTIMESTAMP WHERE currency_id = 1;
         SAVEPOINT s1;
         UPDATE payment SET payment_amount = 4242.42, last_updated = LOCALTIMESTAMP - interval '10 minutes'
             WHERE payment_id = 9;
         RELEASE SAVEPOINT s1;",
    )
    .await
    .expect("writes in a subtransaction");
    client.batch_execute("UPDATE design SET last_updated = LOCALTIMESTAMP WHERE design_id = 1").await.expect("other");
    let during = run(&mut client, store.as_ref()).await;
    assert_eq!((rows_of(&during, "design"), rows_of(&during, "payment")), (1, 0));
    tx.commit().await.expect("commit");
    let after = run(&mut client, store.as_ref()).await;
    assert_eq!((rows_of(&after, "currency"), rows_of(&after, "payment")), (1, 1), "both writes, one run");
    assert_eq!(after.total_rows(), 2);
    assert_all_versions_once(&db, store.as_ref(), "payment", "payment_id").await;
}

/// One transaction writes a transaction row (stamped now) and its payment (stamped an hour ago)
/// and commits after a run: per-table windows took the first and lost the second; visibility
/// delivers both in the same run (invariant 4).
#[tokio::test]
async fn a_transaction_over_two_tables_lands_in_one_run() {
    let db = TestDb::seeded("src_two_tables").await;
    let (_, store, _) = local_dir("src-two-tables");
    let mut client = db.connect().await;
    run(&mut client, store.as_ref()).await;
    let mut writer = db.connect().await;
    let tx = writer.transaction().await.expect("begin");
    tx.batch_execute(
        "INSERT INTO transaction (transaction_id, transaction_type, sales_order_id, created_at, last_updated)
             VALUES (90001, 'SALE', 1, LOCALTIMESTAMP, LOCALTIMESTAMP);
         INSERT INTO payment (transaction_id, counterparty_id, payment_amount, currency_id, payment_type_id, paid,
             payment_date, company_ac_number, counterparty_ac_number, created_at, last_updated)
             VALUES (90001, 1, 10.00, 1, 1, false, '2026-12-01', 1, 2,
                     LOCALTIMESTAMP - interval '1 hour', LOCALTIMESTAMP - interval '1 hour');",
    )
    .await
    .expect("writes");
    client
        .batch_execute("UPDATE payment SET paid = NOT paid, last_updated = LOCALTIMESTAMP WHERE payment_id = 2")
        .await
        .expect("other");
    let during = run(&mut client, store.as_ref()).await;
    assert_eq!((rows_of(&during, "transaction"), rows_of(&during, "payment")), (0, 1));
    tx.commit().await.expect("commit");
    let after = run(&mut client, store.as_ref()).await;
    assert_eq!((rows_of(&after, "transaction"), rows_of(&after, "payment")), (1, 1), "together");
    assert_all_versions_once(&db, store.as_ref(), "payment", "payment_id").await;
    assert_all_versions_once(&db, store.as_ref(), "transaction", "transaction_id").await;
}

/// The `now()` race: session A begins first (so its `now()` is earlier), session B updates the
/// payment and commits, a run sees B's version; then A updates the same payment and commits, and
/// the next run sees A's version. A's version is the newer one though its `last_updated` is
/// smaller: `fact_payment_current` must show it (ordered by `version_order`, not by stamp).
#[tokio::test]
async fn the_version_committed_last_is_current_though_its_now_stamp_is_earlier() {
    let source_db = TestDb::seeded("src_race").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("src-race-in");
    let (_, processed, _) = local_dir("src-race-out");
    let (_, mut warehouse) = warehouse_db("src_race_wh").await;
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;

    let mut a = source_db.connect().await;
    let a_tx = a.transaction().await.expect("A begins");
    a_tx.batch_execute("SELECT now()").await.expect("A's transaction starts");
    tokio::time::sleep(Duration::from_millis(20)).await;
    source
        .batch_execute("UPDATE payment SET payment_amount = 222.22, last_updated = now() WHERE payment_id = 7")
        .await
        .expect("B");
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    a_tx.batch_execute("UPDATE payment SET payment_amount = 111.11, last_updated = now() WHERE payment_id = 7")
        .await
        .expect("A");
    a_tx.commit().await.expect("A commits last");
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;

    let history = warehouse
        .query(
            "SELECT payment_amount::text, last_updated_time::text FROM fact_payment WHERE payment_id = 7
             ORDER BY version_order",
            &[],
        )
        .await
        .expect("history");
    let amounts: Vec<String> = history.iter().map(|r| r.get(0)).collect();
    assert_eq!(amounts.len(), 3, "three versions: {amounts:?}");
    assert_eq!(&amounts[1..], ["222.22", "111.11"], "in commit order");
    let (b_time, a_time): (String, String) = (history[1].get(1), history[2].get(1));
    assert!(a_time < b_time, "A's stamp ({a_time}) is earlier than B's ({b_time})");
    let current: String = warehouse
        .query_one("SELECT payment_amount::text FROM fact_payment_current WHERE payment_id = 7", &[])
        .await
        .expect("current")
        .get(0);
    assert_eq!(current, "111.11", "the version committed last");
    let paid_view: i64 =
        warehouse.query_one("SELECT count(*) FROM fact_payment_current", &[]).await.expect("count").get(0);
    assert_eq!(paid_view, 15_836);
}

/// Two versions of a row one microsecond apart: the JSON keeps six digits, the warehouse's
/// `TIME(6)` keeps them apart, so they are two fact rows (with milliseconds they collapsed and
/// the load's version key dropped the second).
#[tokio::test]
async fn versions_one_microsecond_apart_are_two_fact_rows() {
    let source_db = TestDb::seeded("src_micro").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("src-micro-in");
    let (_, processed, _) = local_dir("src-micro-out");
    let (_, mut warehouse) = warehouse_db("src_micro_wh").await;
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    for (amount, at) in [("1.01", "2026-11-29 01:06:55.582671"), ("1.02", "2026-11-29 01:06:55.582672")] {
        source
            .execute(
                "UPDATE payment SET payment_amount = $1::text::numeric, last_updated = $2::text::timestamp WHERE payment_id = 3",
                &[&amount, &at],
            )
            .await
            .expect("update");
        run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    }
    let stamps: Vec<String> = extracted_rows(ingestion.as_ref(), "payment")
        .await
        .iter()
        .filter(|r| r["payment_id"] == 3)
        .map(|r| r["last_updated"].as_str().expect("stamp").to_string())
        .collect();
    assert_eq!(stamps[1..], ["2026-11-29T01:06:55.582671", "2026-11-29T01:06:55.582672"]);
    let rows = warehouse
        .query(
            "SELECT last_updated_time::text, payment_amount::text FROM fact_payment WHERE payment_id = 3 ORDER BY 1",
            &[],
        )
        .await
        .expect("facts");
    let rows: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert!(rows.contains(&("01:06:55.582671".into(), "1.01".into())), "{rows:?}");
    assert!(rows.contains(&("01:06:55.582672".into(), "1.02".into())), "{rows:?}");
}

/// `'infinity'` and NULL stamps and a NaN amount: the extract reads them as text (it no longer
/// decodes `last_updated`), the transform quarantines each row with its reason and an ERROR, and
/// the run and later runs proceed.
#[tokio::test]
async fn odd_values_are_quarantined_and_later_runs_proceed() {
    let source_db = TestDb::seeded("src_odd").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("src-odd-in");
    let (_, processed, _) = local_dir("src-odd-out");
    let (_, mut warehouse) = warehouse_db("src_odd_wh").await;
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    source
        .batch_execute(
            "ALTER TABLE payment ALTER COLUMN last_updated DROP NOT NULL;
             UPDATE payment SET last_updated = 'infinity' WHERE payment_id = 4;
             UPDATE payment SET last_updated = NULL WHERE payment_id = 5;
             UPDATE payment SET payment_amount = 'NaN', last_updated = LOCALTIMESTAMP WHERE payment_id = 6;
             UPDATE payment SET paid = NOT paid, last_updated = LOCALTIMESTAMP WHERE payment_id = 10;",
        )
        .await
        .expect("odd values");
    let logs = CapturedLogs::default();
    let run_id = {
        let _guard = logs.install();
        run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await
    };
    let infinity = extracted_rows(ingestion.as_ref(), "payment").await;
    assert!(infinity.iter().any(|r| r["payment_id"] == 4 && r["last_updated"] == "infinity"), "kept as text");
    let manifest: transform::ProcessedManifest =
        serde_json::from_slice(&processed.get(&keys::manifest(&run_id)).await.expect("manifest")).expect("json");
    assert_eq!(manifest.quarantined_rows, 3);
    let quarantine = String::from_utf8(
        processed.get(manifest.quarantine_object.as_deref().expect("quarantine")).await.expect("quarantine"),
    )
    .expect("text");
    assert!(
        quarantine.contains("\"infinity\\\" is not a timestamp") || quarantine.contains("infinity"),
        "{quarantine}"
    );
    assert!(quarantine.contains("is null but required"), "{quarantine}");
    assert!(quarantine.contains("\\\"NaN\\\" is not an exact decimal"), "{quarantine}");
    assert!(logs.text().contains("\"level\":\"ERROR\""), "an ERROR raises the alarm");
    let paid: i64 =
        warehouse.query_one("SELECT count(*) FROM fact_payment WHERE payment_id = 10", &[]).await.expect("n").get(0);
    assert_eq!(paid, 2, "the good change of the same run was loaded");

    source
        .batch_execute("UPDATE payment SET paid = NOT paid, last_updated = LOCALTIMESTAMP WHERE payment_id = 11")
        .await
        .expect("later");
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    let later: i64 =
        warehouse.query_one("SELECT count(*) FROM fact_payment WHERE payment_id = 11", &[]).await.expect("n").get(0);
    assert_eq!(later, 2, "later runs are unaffected");
}

/// `ALTER TABLE sales_order ADD COLUMN discount_pct numeric`: the extract reads its columns from
/// the catalog, so the new column's values reach the ingestion bucket, and the manifest's schema
/// differs from the previous one's: a WARN, a `SchemaChanges` count, a line in `onyx status`.
#[tokio::test]
async fn an_added_column_is_carried_into_the_json_and_reported_as_drift() {
    let db = TestDb::seeded("src_added").await;
    let (ingestion_location, store, _) = local_dir("src-added");
    let mut client = db.connect().await;
    run(&mut client, store.as_ref()).await;
    client
        .batch_execute(
            "ALTER TABLE sales_order ADD COLUMN discount_pct numeric;
             UPDATE sales_order SET discount_pct = 12.50, last_updated = LOCALTIMESTAMP WHERE sales_order_id = 1;",
        )
        .await
        .expect("drift");
    let logs = CapturedLogs::default();
    let second = {
        let _guard = logs.install();
        run(&mut client, store.as_ref()).await
    };
    let row = extracted_rows(store.as_ref(), "sales_order").await.pop().expect("the update");
    assert_eq!(row["discount_pct"], "12.50", "the new column, exact");
    assert_eq!(second.schema_changes.len(), 1, "{:?}", second.schema_changes);
    assert_eq!(second.schema_changes[0].to_string(), "sales_order.discount_pct: column added (numeric)");
    let text = logs.text();
    assert!(text.contains("\"level\":\"WARN\"") && text.contains("discount_pct"), "{text}");
    let metrics = onyx_core::telemetry::emf_documents(&onyx_core::telemetry::RunMetrics {
        stage: "extract",
        schema_changes: Some(second.schema_changes.len() as u64),
        ..Default::default()
    });
    assert_eq!(metrics[0]["SchemaChanges"], 1);

    let (_, _, processed_dir) = local_dir("src-added-out");
    let status = std::process::Command::new(onyx_binary())
        .args(["status", "--ingestion", &ingestion_location.to_string(), "--processed"])
        .arg(&processed_dir)
        .env_remove("ONYX_SOURCE_URL")
        .env_remove("ONYX_WAREHOUSE_URL")
        .output()
        .expect("onyx status");
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{stdout}{}", String::from_utf8_lossy(&status.stderr));
    assert!(stdout.contains("sales_order.discount_pct: column added"), "{stdout}");
}

/// `ALTER TABLE payment DROP COLUMN payment_date`: reported as drift; the payment rows that
/// arrive without the column are quarantined naming it, while sales orders of the same run flow.
#[tokio::test]
async fn a_dropped_modelled_column_quarantines_that_tables_rows_while_others_flow() {
    let source_db = TestDb::seeded("src_dropped").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("src-dropped-in");
    let (_, processed, _) = local_dir("src-dropped-out");
    let (_, mut warehouse) = warehouse_db("src_dropped_wh").await;
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    source
        .batch_execute(
            "ALTER TABLE payment DROP COLUMN payment_date;
             UPDATE payment SET paid = NOT paid, last_updated = LOCALTIMESTAMP WHERE payment_id = 12;
             UPDATE sales_order SET units_sold = units_sold + 1, last_updated = LOCALTIMESTAMP WHERE sales_order_id = 12;",
        )
        .await
        .expect("drop a modelled column");
    let run_id = run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    let manifest = manifests(ingestion.as_ref()).await.pop().expect("manifest");
    assert!(
        manifest
            .schema_changes
            .iter()
            .any(|c| c.to_string() == "payment.payment_date: column dropped (was character varying)"),
        "{:?}",
        manifest.schema_changes
    );
    let processed_manifest: transform::ProcessedManifest =
        serde_json::from_slice(&processed.get(&keys::manifest(&run_id)).await.expect("manifest")).expect("json");
    assert_eq!(processed_manifest.quarantined_rows, 1);
    let quarantine: Value = serde_json::from_slice(
        &processed.get(processed_manifest.quarantine_object.as_deref().expect("object")).await.expect("read"),
    )
    .expect("one line");
    assert_eq!((quarantine["table"].as_str(), quarantine["column"].as_str()), (Some("payment"), Some("payment_date")));
    assert!(quarantine["reason"].as_str().is_some_and(|r| r.contains("missing")), "{quarantine}");
    let orders: i64 = warehouse
        .query_one("SELECT count(*) FROM fact_sales_order WHERE sales_order_id = 12", &[])
        .await
        .expect("n")
        .get(0);
    assert_eq!(orders, 2, "the sales order of the same run was loaded");
}

/// Two extracts against one bucket at once (the Lambda and `onyx extract`, say): both find the
/// same newest manifest, both try to claim the place after it with a conditional write, one
/// wins. The loser writes nothing and says so; no two manifests share a predecessor.
#[tokio::test]
async fn two_extracts_at_once_make_one_run() {
    let db = TestDb::seeded("src_twice").await;
    let (_, store) = s3_bucket("src-twice").await;
    let mut first = db.connect().await;
    run(&mut first, store.as_ref()).await;
    first
        .batch_execute("UPDATE payment SET paid = NOT paid, last_updated = LOCALTIMESTAMP WHERE payment_id = 13")
        .await
        .expect("change");
    let mut second = db.connect().await;
    let opts = options();
    let (a, b) =
        tokio::join!(extract::run(&mut first, store.as_ref(), &opts), extract::run(&mut second, store.as_ref(), &opts));
    let outcomes = [a, b];
    let won: Vec<_> = outcomes.iter().filter_map(|r| r.as_ref().ok()).collect();
    let lost: Vec<_> = outcomes.iter().filter_map(|r| r.as_ref().err()).collect();
    let all = manifests(store.as_ref()).await;
    let mut predecessors: Vec<_> = all.iter().map(|m| m.previous_run_id.clone()).collect();
    predecessors.dedup();
    assert_eq!(predecessors.len(), all.len(), "no two runs continue from the same one");
    assert_all_versions_once(&db, store.as_ref(), "payment", "payment_id").await;
    // Whichever interleaving happened, a loser stood aside cleanly.
    for error in &lost {
        assert!(error.is_claim_held() && !error.is_retryable(), "{error}");
        assert!(error.to_string().contains("wrote nothing"), "{error}");
    }
    assert_eq!(won.len() + lost.len(), 2);
    assert_eq!(all.len(), 1 + won.len());

    // Deterministically: a fresh claim on the place after the newest run makes the next run
    // stand aside, writing no object at all.
    let newest = all.last().expect("newest").run_id.clone();
    let claim = serde_json::json!({"run_id": "20991231T000000000-beef", "previous_run_id": newest,
        "attempt": 0, "claimed_at": Utc::now(), "lease_seconds": 1200});
    store.put(&keys::claim(Some(&newest), 0), serde_json::to_vec(&claim).expect("json")).await.expect("claim");
    let data_objects = |keys: Vec<String>| keys.into_iter().filter(|k| !k.starts_with(keys::CLAIM_PREFIX)).count();
    let objects_before = data_objects(store.list("", None).await.expect("list"));
    let error = extract::run(&mut first, store.as_ref(), &options()).await.expect_err("claim held");
    assert!(error.is_claim_held(), "{error}");
    assert!(error.to_string().contains("20991231T000000000-beef"), "names the holder: {error}");
    assert_eq!(data_objects(store.list("", None).await.expect("list")), objects_before, "nothing written");

    // A claim whose lease ran out by the store's clock (its holder died) is taken over by the
    // next run.
    let stale = serde_json::json!({"run_id": "20991231T000000000-dead", "previous_run_id": newest,
        "attempt": 1, "claimed_at": Utc::now(), "lease_seconds": 1});
    store.put(&keys::claim_release(Some(&newest), 0), b"{}".to_vec()).await.expect("release attempt 0");
    store.put(&keys::claim(Some(&newest), 1), serde_json::to_vec(&stale).expect("json")).await.expect("stale claim");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let taken_over = run(&mut first, store.as_ref()).await;
    assert_eq!(taken_over.previous_run_id.as_deref(), Some(newest.as_str()));
    assert!(store.get(&keys::claim(Some(&newest), 2)).await.is_ok(), "attempt 2 claimed");
}

/// Issue #22 item 5, mechanism: `claim::claim_age`. A holder whose clock is 30 minutes slow
/// writes a claim whose `claimed_at` looks 30 minutes old, with a 20-minute lease. Before, a
/// contender compared that stamp with its own clock and took over a claim whose run was still
/// under way; now the age is the store's `Last-Modified` of the claim against that of a probe the
/// contender writes, so the fresh claim holds.
#[tokio::test]
async fn a_claim_is_aged_by_the_stores_clock_not_by_the_holders() {
    let db = TestDb::seeded("src_claim_clock").await;
    let (_, store) = s3_bucket("src-claim-clock").await;
    let mut source = db.connect().await;
    let first = run(&mut source, store.as_ref()).await;
    let slow_clock = Utc::now() - chrono::Duration::minutes(30);
    let claim = serde_json::json!({"run_id": "20991231T000000000-slow", "previous_run_id": first.run_id,
        "attempt": 0, "claimed_at": slow_clock, "lease_seconds": 1200});
    store.put(&keys::claim(Some(&first.run_id), 0), serde_json::to_vec(&claim).expect("json")).await.expect("claim");
    let outcome = extract::run(&mut source, store.as_ref(), &options()).await;
    let error = outcome.map(|s| s.manifest.run_id).expect_err("a claim written a moment ago holds, whatever its stamp");
    assert!(error.is_claim_held(), "{error}");
}

/// The source writes `timestamp` stamps in Europe/London time. Across the autumn change the
/// writers' clock repeats 01:00–02:00: a row stamped 01:59 and then one stamped 01:10 (later in
/// real time) both arrive. A `last_updated` window would start at 01:59 and miss the second.
#[tokio::test]
async fn a_europe_london_source_loses_nothing_across_the_autumn_clock_change() {
    let db = TestDb::seeded("src_london").await;
    let (_, store, _) = local_dir("src-london");
    let client = db.connect().await;
    client.batch_execute(&format!("ALTER DATABASE \"{}\" SET timezone = 'Europe/London'", db.name)).await.expect("tz");
    let london = ExtractOptions { source_timezone: "Europe/London".into(), ..options() };
    let mut client = db.connect().await;
    extract::run(&mut client, store.as_ref(), &london).await.expect("first");
    client
        .batch_execute(
            "UPDATE payment SET paid = NOT paid, last_updated = '2026-10-25 01:59:59.999999' WHERE payment_id = 14",
        )
        .await
        .expect("before the change");
    let before = extract::run(&mut client, store.as_ref(), &london).await.expect("second").manifest;
    assert_eq!(rows_of(&before, "payment"), 1);
    client
        .batch_execute(
            "UPDATE payment SET paid = NOT paid, last_updated = '2026-10-25 01:10:00.000001' WHERE payment_id = 15",
        )
        .await
        .expect("the repeated hour");
    let after = extract::run(&mut client, store.as_ref(), &london).await.expect("third").manifest;
    assert_eq!(rows_of(&after, "payment"), 1, "the repeated hour's row");
    assert_eq!(after.source_timezone.as_deref(), Some("Europe/London"));
    let london_now: String = client
        .query_one("SELECT to_char(now() AT TIME ZONE 'Europe/London', 'YYYY-MM-DD\"T\"HH24')", &[])
        .await
        .expect("now")
        .get(0);
    assert!(after.snapshot_time.starts_with(&london_now), "{} is London time", after.snapshot_time);
    assert_all_versions_once(&db, store.as_ref(), "payment", "payment_id").await;
}

/// The previous run was made while the clock was an hour ahead (its run id and snapshot time are
/// in the future now): the next run neither refuses (the old `ClockWentBack`) nor sorts before
/// it, so the transform still takes it.
#[tokio::test]
async fn a_clock_that_went_back_neither_stops_extraction_nor_reorders_runs() {
    let db = TestDb::seeded("src_clock").await;
    let (_, ingestion, _) = local_dir("src-clock-in");
    let (_, processed, _) = local_dir("src-clock-out");
    let mut client = db.connect().await;
    let first = run(&mut client, ingestion.as_ref()).await;
    transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    // The same state under a run id an hour ahead, as a clock that was fast would have made it.
    let ahead = format!("{}-0ahd", (Utc::now() + chrono::Duration::hours(1)).format("%Y%m%dT%H%M%S%3f"));
    let mut future: Value = serde_json::to_value(&first).expect("json");
    future["run_id"] = Value::String(ahead.clone());
    future["previous_run_id"] = Value::String(first.run_id.clone());
    future["snapshot_time"] =
        Value::String((Utc::now() + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%S%.6f").to_string());
    for table in future["tables"].as_array_mut().expect("tables") {
        table["rows"] = 0.into();
        table["objects"] = Value::Array(vec![]);
    }
    ingestion.put(&keys::manifest(&ahead), serde_json::to_vec(&future).expect("json")).await.expect("put");
    client
        .batch_execute("UPDATE payment SET paid = NOT paid, last_updated = now() WHERE payment_id = 16")
        .await
        .expect("change");
    let next = run(&mut client, ingestion.as_ref()).await;
    assert!(next.run_id > ahead, "{} sorts after {ahead}", next.run_id);
    assert_eq!(rows_of(&next, "payment"), 1);
    let done = transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    assert_eq!(done.last().map(|r| r.manifest.run_id.as_str()), Some(next.run_id.as_str()), "transformed, not skipped");
}

/// The extractor's session defaults to a zone 14 hours ahead of the writers' (UTC). With
/// `ONYX_SOURCE_TIMEZONE=UTC` the recorded snapshot time is UTC, and a transaction committing
/// late with an earlier stamp is still found (a window trailing the snapshot time by the safety
/// lag started 14 hours in the future: the lag was silently zero).
#[tokio::test]
async fn an_extractor_session_in_another_zone_changes_nothing() {
    let db = TestDb::seeded("src_zone").await;
    let (_, store, _) = local_dir("src-zone");
    let admin = db.connect().await;
    admin
        .batch_execute(&format!("ALTER DATABASE \"{}\" SET timezone = 'Pacific/Kiritimati'", db.name))
        .await
        .expect("tz");
    let mut client = db.connect().await;
    run(&mut client, store.as_ref()).await;
    let mut writer = db.connect().await;
    let tx = writer.transaction().await.expect("begin");
    tx.batch_execute(
        "UPDATE payment SET paid = NOT paid, last_updated = (now() AT TIME ZONE 'UTC') - interval '2 seconds' WHERE payment_id = 17",
    )
    .await
    .expect("late writer");
    client
        .batch_execute(
            "UPDATE payment SET paid = NOT paid, last_updated = now() AT TIME ZONE 'UTC' WHERE payment_id = 18",
        )
        .await
        .expect("other");
    let during = run(&mut client, store.as_ref()).await;
    let utc_hour = Utc::now().format("%Y-%m-%dT%H").to_string();
    assert!(during.snapshot_time.starts_with(&utc_hour), "{} is UTC, not the session's zone", during.snapshot_time);
    tx.commit().await.expect("commit");
    let after = run(&mut client, store.as_ref()).await;
    assert_eq!(rows_of(&after, "payment"), 1);
    assert_all_versions_once(&db, store.as_ref(), "payment", "payment_id").await;

    let bad = ExtractOptions { source_timezone: "Mars/Olympus_Mons".into(), ..options() };
    let error = extract::run(&mut client, store.as_ref(), &bad).await.expect_err("unknown zone");
    assert!(
        error.to_string().contains("Mars/Olympus_Mons") && error.to_string().contains("ONYX_SOURCE_TIMEZONE"),
        "{error}"
    );
    // The failed run released its claim: the next one proceeds at once.
    run(&mut client, store.as_ref()).await;
}

/// The extract is pointed at another database (a restore, a new server) whose rows were written
/// by transactions older than the previous run's snapshot: compared by transaction id alone they
/// would look already seen. The manifest records the source's identity (system identifier and
/// database oid); a different one makes the run read everything once and say why.
#[tokio::test]
async fn a_different_source_database_is_read_in_full_not_by_transaction_id() {
    let older = TestDb::seeded("src_other_b").await;
    let first = TestDb::seeded("src_other_a").await;
    let (_, store, _) = local_dir("src-other");
    let mut a = first.connect().await;
    run(&mut a, store.as_ref()).await;
    let mut b = older.connect().await;
    let switched = run(&mut b, store.as_ref()).await;
    let reason = switched.full_read.as_deref().expect("a full read");
    assert!(reason.contains("not the database the previous run read"), "{reason}");
    assert_eq!(switched.total_rows(), 48_066, "every row of the other database");
}
