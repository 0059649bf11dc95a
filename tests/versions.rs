//! Every committed version, once, and nothing that can block for good (issue #22, pipeline.md
//! invariants 1, 2 and 12): a fact version is identified by its source id and `version_order`
//! (the order the extract saw it in), so an update that keeps `last_updated` is a new fact row;
//! a version identical to the one before it (a held row released while the same version is read
//! again, a row read again by a full pass) is a no-op at the load, set-based over the whole run;
//! parking a transformed run still loads its dimension rows, so the transform's reference state
//! and the warehouse agree. All against real PostgreSQL.

use onyx_core::storage::ObjectStore;
use onyx_core::tokio_postgres::Client;
use onyx_core::{extract, load, runs, transform};

use crate::support::{TestDb, assert_verifies_clean, local_dir, run_pipeline, warehouse_db};

/// `(payment_amount, paid)` of every warehouse version of a payment, in version order, and the
/// one `fact_payment_current` shows.
async fn payment_versions(warehouse: &Client, payment_id: i32) -> (Vec<String>, String) {
    let rows = warehouse
        .query(
            "SELECT payment_amount::text || '/' || paid::text FROM fact_payment WHERE payment_id = $1
             ORDER BY version_order COLLATE \"C\"",
            &[&payment_id],
        )
        .await
        .expect("versions");
    let current = warehouse
        .query_one(
            "SELECT payment_amount::text || '/' || paid::text FROM fact_payment_current WHERE payment_id = $1",
            &[&payment_id],
        )
        .await
        .expect("current");
    (rows.iter().map(|r| r.get(0)).collect(), current.get(0))
}

/// Mechanism: `RunBuilder::release_held` emits a held payment into the first 5,000-line chunk of
/// a run, and the same `(payment_id, last_updated)` is read again further down the same run (an
/// update that keeps the stamp and the content): two staged rows of one version. Before, both
/// reached the load's merge and it failed 23505 (bulk) / 21000 (`ON CONFLICT`), non-retryable,
/// blocking every later run. Now the load's set-based merge drops a staged version identical to
/// the version before it (staged or loaded) — one row, nothing blocked, verify clean.
#[tokio::test]
async fn a_released_fact_read_again_in_the_same_run_loads_once_and_blocks_nothing() {
    let db = TestDb::seeded("v_held_dup").await;
    let mut source = db.connect().await;
    let (_, ingestion, _) = local_dir("v-held-dup-in");
    let (_, processed, _) = local_dir("v-held-dup-out");
    let (_wh, mut warehouse) = warehouse_db("v_held_dup_wh").await;
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;

    source.batch_execute("ALTER TABLE payment DROP CONSTRAINT payment_transaction_id_fkey").await.expect("drop fk");
    let held: i32 = source
        .query_one(
            "INSERT INTO payment (transaction_id, counterparty_id, payment_amount, currency_id, payment_type_id, paid,
                payment_date, company_ac_number, counterparty_ac_number)
             VALUES (900001, 1, 10.00, 1, 1, false, '2026-12-01', 1, 2) RETURNING payment_id",
            &[],
        )
        .await
        .expect("a payment before its transaction")
        .get(0);
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    assert!(payment_versions_count(&warehouse, held).await == 0, "held, not loaded");

    // One run: the transaction arrives (releasing the held payment into the first chunk), 6,000
    // payments are rewritten with the same content, and then the held payment itself — so its
    // second copy is read well past the first 5,000 lines.
    source
        .batch_execute(&format!(
            "INSERT INTO transaction (transaction_id, transaction_type, sales_order_id, purchase_order_id)
                VALUES (900001, 'SALE', 1, NULL);
             UPDATE payment SET paid = paid WHERE payment_id <= 6000;
             UPDATE payment SET paid = paid WHERE payment_id = {held};"
        ))
        .await
        .expect("release and rewrite");
    let summary = extract::run(&mut source, ingestion.as_ref(), &Default::default()).await.expect("extract");
    let run_id = summary.manifest.run_id.clone();
    let line_of_held = position_of(ingestion.as_ref(), &summary.manifest, held).await;
    assert!(line_of_held > 5_000, "the second copy must fall outside the first chunk: line {line_of_held}");
    transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    let loaded = load::load_pending(&mut warehouse, processed.as_ref(), None, &Default::default()).await;
    let loaded = loaded.unwrap_or_else(|e| panic!("the run with a released and re-read version must load: {e}"));
    assert_eq!(loaded.len(), 1, "run {run_id} loaded");
    assert_eq!(payment_versions_count(&warehouse, held).await, 1, "one version of payment {held}");
    let rewritten: i64 = warehouse
        .query_one("SELECT count(*) FROM fact_payment WHERE payment_id <= 6000", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(rewritten, 6000, "a version identical to the loaded one adds no row");
    assert_verifies_clean(&mut source, &warehouse, ingestion.as_ref()).await;
}

async fn payment_versions_count(warehouse: &Client, payment_id: i32) -> i64 {
    warehouse
        .query_one("SELECT count(*) FROM fact_payment WHERE payment_id = $1", &[&payment_id])
        .await
        .expect("count")
        .get(0)
}

/// The 1-based line (across the run's payment objects) that holds `payment_id`.
async fn position_of(store: &dyn ObjectStore, manifest: &extract::IngestionManifest, payment_id: i32) -> usize {
    let mut line = 0;
    for key in &manifest.table("payment").expect("payment").objects {
        let body = String::from_utf8(store.get(key).await.expect("object")).expect("UTF-8");
        for text in body.lines() {
            line += 1;
            let row: serde_json::Value = serde_json::from_str(text).expect("json");
            if row["payment_id"].as_i64() == Some(i64::from(payment_id)) {
                return line;
            }
        }
    }
    panic!("payment {payment_id} is not in run {}", manifest.run_id)
}

/// Mechanism: the fact version key is `(id, version_order)`, not `(id, last_updated)`. An update
/// that keeps `last_updated` (`UPDATE payment SET payment_amount = …`) is a second committed
/// version: before, the load's `ON CONFLICT (payment_id, last_updated_date, last_updated_time)`
/// replaced the first; now both are kept and `fact_payment_current` shows the one committed
/// last — also when a third update puts the first content back (A → B → A: three rows).
#[tokio::test]
async fn updates_that_keep_last_updated_are_each_a_version() {
    let db = TestDb::seeded("v_same_stamp").await;
    let mut source = db.connect().await;
    let (_, ingestion, _) = local_dir("v-same-stamp-in");
    let (_, processed, _) = local_dir("v-same-stamp-out");
    let (_wh, mut warehouse) = warehouse_db("v_same_stamp_wh").await;
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    let (before, _) = payment_versions(&warehouse, 19).await;
    assert_eq!(before.len(), 1, "{before:?}");
    let original: String = source
        .query_one("SELECT payment_amount::text FROM payment WHERE payment_id = 19", &[])
        .await
        .expect("amount")
        .get(0);

    source.batch_execute("UPDATE payment SET payment_amount = 9.99 WHERE payment_id = 19").await.expect("update");
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    let (versions, current) = payment_versions(&warehouse, 19).await;
    assert_eq!(versions.len(), 2, "both committed versions are kept: {versions:?}");
    assert!(current.starts_with("9.99/"), "the newer is current: {current}");

    source
        .batch_execute(&format!("UPDATE payment SET payment_amount = {original} WHERE payment_id = 19"))
        .await
        .expect("update back");
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    let (versions, current) = payment_versions(&warehouse, 19).await;
    assert_eq!(versions.len(), 3, "A → B → A is three versions: {versions:?}");
    assert_eq!(versions[0], versions[2], "{versions:?}");
    assert_eq!(current, versions[2], "the version committed last is current");
    let again = load::load_pending(&mut warehouse, processed.as_ref(), None, &Default::default()).await.expect("load");
    assert!(again.is_empty(), "nothing left to load");
    assert_verifies_clean(&mut source, &warehouse, ingestion.as_ref()).await;
}

/// Mechanism: `load_run`'s parked path. A run parked after its transform carries dimension rows
/// the transform's reference state now counts as loaded (here a new transaction); before, the
/// load recorded the park and loaded only `dim_date`, so the next change to a payment of that
/// transaction failed with MissingReference and blocked again. Now parking loads the run's
/// dimension rows (never its facts), so the warehouse holds what the state believes.
#[tokio::test]
async fn a_run_parked_after_its_transform_leaves_later_runs_flowing() {
    let db = TestDb::seeded("v_park").await;
    let mut source = db.connect().await;
    let (_, ingestion, _) = local_dir("v-park-in");
    let (_, processed, _) = local_dir("v-park-out");
    let (_wh, mut warehouse) = warehouse_db("v_park_wh").await;
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;

    let payment: i32 = source
        .query_one(
            "WITH t AS (INSERT INTO transaction (transaction_type, sales_order_id, purchase_order_id)
                        VALUES ('SALE', 1, NULL) RETURNING transaction_id)
             INSERT INTO payment (transaction_id, counterparty_id, payment_amount, currency_id, payment_type_id, paid,
                payment_date, company_ac_number, counterparty_ac_number)
             SELECT transaction_id, 1, 42.00, 1, 1, false, '2026-12-01', 1, 2 FROM t RETURNING payment_id",
            &[],
        )
        .await
        .expect("a new transaction and its payment")
        .get(0);
    let parked = extract::run(&mut source, ingestion.as_ref(), &Default::default()).await.expect("extract");
    transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    runs::park(processed.as_ref(), &parked.manifest.run_id, "set aside by the test", "test").await.expect("park");
    let loaded = load::load_pending(&mut warehouse, processed.as_ref(), None, &Default::default()).await.expect("load");
    assert!(loaded[0].parked.is_some(), "{loaded:?}");

    source
        .batch_execute(&format!("UPDATE payment SET paid = true, last_updated = now() WHERE payment_id = {payment}"))
        .await
        .expect("a later change");
    extract::run(&mut source, ingestion.as_ref(), &Default::default()).await.expect("extract");
    transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    load::load_pending(&mut warehouse, processed.as_ref(), None, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("the run after a parked one must load: {e}"));
    let (versions, current) = payment_versions(&warehouse, payment).await;
    assert_eq!(versions.len(), 1, "the parked run's version stays set aside: {versions:?}");
    assert!(current.ends_with("/true"), "{current}");
    assert_verifies_clean(&mut source, &warehouse, ingestion.as_ref()).await;
}

/// Mechanism: `load::report_conflicts`. A processed run whose payment has the `(payment_id,
/// version_order)` of a loaded version but other content (a processed bucket rebuilt with other
/// rules, say) cannot be two versions: the load keeps the loaded one, logs an ERROR naming
/// table, key and version order, counts it with the run's quarantined rows — and the run loads.
#[tokio::test]
async fn a_conflicting_copy_of_a_loaded_version_is_reported_and_blocks_nothing() {
    use onyx_core::keys;
    use onyx_core::transform::{ProcessedManifest, ProcessedTable};
    use onyx_core::values::{Cell, Decimal};
    use onyx_core::warehouse::{FACT_PAYMENT, WAREHOUSE_TABLES};

    let db = TestDb::seeded("v_conflict").await;
    let mut source = db.connect().await;
    let (_, ingestion, _) = local_dir("v-conflict-in");
    let (_, processed, _) = local_dir("v-conflict-out");
    let (_wh, mut warehouse) = warehouse_db("v_conflict_wh").await;
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    let loaded = warehouse
        .query_one(
            "SELECT created_date, created_time, last_updated_date, last_updated_time, transaction_id, counterparty_id,
                    currency_id, payment_type_id, paid, payment_date, version_order
             FROM fact_payment WHERE payment_id = 19",
            &[],
        )
        .await
        .expect("payment 19");
    let version_order: String = loaded.get(10);
    let row = vec![
        Cell::Int(19),
        Cell::Date(loaded.get(0)),
        Cell::Time(loaded.get(1)),
        Cell::Date(loaded.get(2)),
        Cell::Time(loaded.get(3)),
        Cell::Int(loaded.get(4)),
        Cell::Int(loaded.get(5)),
        Cell::Decimal(Decimal::parse("123456.78").expect("decimal")),
        Cell::Int(loaded.get(6)),
        Cell::Int(loaded.get(7)),
        Cell::Bool(loaded.get(8)),
        Cell::Date(loaded.get(9)),
        Cell::Text(version_order.clone()),
    ];
    let run_id = "20991231T000000000-conf";
    let object = keys::processed_part(FACT_PAYMENT.name, run_id, 0);
    processed.put(&object, onyx_core::frames::to_parquet(&FACT_PAYMENT, &[row]).expect("parquet")).await.expect("put");
    let manifest = ProcessedManifest {
        format: 1,
        run_id: run_id.into(),
        source_manifest: keys::manifest(run_id),
        tables: WAREHOUSE_TABLES
            .iter()
            .map(|t| ProcessedTable {
                table: t.name.into(),
                rows: u64::from(t.name == FACT_PAYMENT.name),
                objects: if t.name == FACT_PAYMENT.name { vec![object.clone()] } else { Vec::new() },
            })
            .collect(),
        state_object: keys::state(run_id),
        ..Default::default()
    };
    processed.put(&keys::manifest(run_id), serde_json::to_vec(&manifest).expect("json")).await.expect("manifest");

    let logs = crate::support::CapturedLogs::default();
    let guard = logs.install();
    let runs = load::load_pending(&mut warehouse, processed.as_ref(), None, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("a conflicting version must not block the run: {e}"));
    drop(guard);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].quarantined_rows, 1, "counted with the run's quarantined rows");
    let (versions, current) = payment_versions(&warehouse, 19).await;
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert!(!current.starts_with("123456.78"), "the loaded version is kept: {current}");
    let text = logs.text();
    assert!(
        text.lines().any(|l| l.contains("\"ERROR\"") && l.contains("fact_payment") && l.contains(&version_order)),
        "an ERROR names the table and the version: {text}"
    );
}
