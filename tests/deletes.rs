//! Deletes as tombstones (issue #22 item 6, invariant 11): reading by commit visibility cannot see
//! a row that is gone, so a run reconciles keys (`extract::reconcile`: per-bucket counts and key
//! sums in the run's snapshot against the keys delivered so far, key lists only where a bucket
//! differs). Keys found gone become the run's `deleted` keys, the transform's tombstones, and the
//! load's `deleted_at`/`deleted_by_run` marks; the `*_current` and analysis views leave them out,
//! nothing is removed, and a warehouse rebuilt from the ingestion bucket has the same marks.
//! Against real PostgreSQL.

use std::time::Duration;

use onyx_core::extract::{self, ExtractOptions, IngestionManifest};
use onyx_core::storage::ObjectStore;
use onyx_core::tokio_postgres::Client;
use onyx_core::{load, transform};

use crate::support::{TestDb, assert_verifies_clean, count, local_dir, warehouse_db};

fn reconciling_every(every: Duration) -> ExtractOptions {
    ExtractOptions { reconcile_every: every, ..ExtractOptions::default() }
}

/// Extract (with `options`), transform and load every pending run.
async fn run(
    source: &mut Client,
    ingestion: &dyn ObjectStore,
    processed: &dyn ObjectStore,
    warehouse: &mut Client,
    options: &ExtractOptions,
) -> IngestionManifest {
    let extracted = extract::run(source, ingestion, options).await.expect("extract");
    transform::transform_pending(ingestion, processed, None).await.expect("transform");
    load::load_pending(warehouse, processed, None, &Default::default()).await.expect("load");
    extracted.manifest
}

/// Mechanism: `reconcile::gone` in the reconciling run's snapshot, `transform::tombstones_of`,
/// `load::mark_deleted_sql`, the V6 views. A sales order deleted with its transaction and
/// payments, and a design inserted and deleted between two reconciliations (delivered by a run
/// that did not reconcile), are marked in the warehouse and leave the current and analysis
/// views; every version stays. On main the deleted order stayed in `fact_sales_order_current`
/// and `onyx verify` reported 3 differences. A key used again afterwards is current again (a
/// dimension row upserted again loses its marks: `load::merge_sql`).
#[tokio::test]
async fn deleted_rows_are_marked_and_leave_the_current_and_analysis_views() {
    let db = TestDb::seeded("del_marks").await;
    let mut source = db.connect().await;
    let (_, ingestion, _) = local_dir("del-marks-in");
    let (_, processed, _) = local_dir("del-marks-out");
    let (_wh, mut warehouse) = warehouse_db("del_marks_wh").await;
    let (every_run, rarely) = (reconciling_every(Duration::ZERO), reconciling_every(Duration::from_secs(86_400)));
    let first = run(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse, &every_run).await;
    assert!(first.keys_reconciled_by.is_none(), "nothing delivered before the first run: nothing to reconcile");
    let second = run(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse, &rarely).await;
    assert_eq!(second.keys_reconciled_by.as_deref(), Some(second.run_id.as_str()), "never reconciled: due");
    assert_eq!(second.deleted_rows(), 0);

    // A design delivered by a run that does not reconcile, then deleted.
    let design: i32 = source
        .query_one(
            "INSERT INTO design (design_name, file_location, file_name) VALUES ('Short-lived', '/x', 'x.json')
             RETURNING design_id",
            &[],
        )
        .await
        .expect("design")
        .get(0);
    let third = run(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse, &rarely).await;
    assert_eq!(third.keys_reconciled_by.as_deref(), Some(second.run_id.as_str()), "not due yet");
    assert_eq!(count(&warehouse, &format!("SELECT count(*) FROM dim_design WHERE design_id = {design}")).await, 1);

    let order: i32 = source
        .query_one(
            "SELECT o.sales_order_id FROM sales_order o JOIN transaction t USING (sales_order_id)
             JOIN payment p USING (transaction_id) ORDER BY 1 LIMIT 1",
            &[],
        )
        .await
        .expect("an order with payments")
        .get(0);
    let payments = count(
        &source,
        &format!("SELECT count(*) FROM payment JOIN transaction USING (transaction_id) WHERE sales_order_id = {order}"),
    )
    .await;
    let versions_before =
        count(&warehouse, &format!("SELECT count(*) FROM fact_sales_order WHERE sales_order_id = {order}")).await;
    let orders_before = count(&warehouse, "SELECT sum(orders)::int8 FROM sales_by_design").await;
    source
        .batch_execute(&format!(
            "BEGIN;
             DELETE FROM payment WHERE transaction_id IN (SELECT transaction_id FROM transaction WHERE sales_order_id = {order});
             DELETE FROM transaction WHERE sales_order_id = {order};
             DELETE FROM sales_order WHERE sales_order_id = {order};
             DELETE FROM design WHERE design_id = {design};
             COMMIT;"
        ))
        .await
        .expect("deletes");

    let fourth = run(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse, &every_run).await;
    let deleted = |table: &str| fourth.table(table).map(|t| t.deleted.to_string()).unwrap_or_default();
    assert_eq!(deleted("sales_order"), order.to_string());
    assert_eq!(deleted("design"), design.to_string());
    assert_eq!(fourth.table("payment").map(|t| t.deleted.len()), Some(payments as u64));
    assert_eq!(fourth.deleted_rows(), 3 + payments as u64, "order, its transaction, its payments, the design");

    let marked = |table: &str, key: &str, id: i32| {
        format!(
            "SELECT count(*) FROM {table} WHERE {key} = {id} AND deleted_at IS NOT NULL AND deleted_by_run = '{}'",
            fourth.run_id
        )
    };
    assert_eq!(
        count(&warehouse, &marked("fact_sales_order", "sales_order_id", order)).await,
        versions_before,
        "every version marked"
    );
    assert_eq!(
        count(&warehouse, &format!("SELECT count(*) FROM fact_sales_order WHERE sales_order_id = {order}")).await,
        versions_before,
        "nothing removed"
    );
    assert_eq!(count(&warehouse, &marked("dim_design", "design_id", design)).await, 1);
    assert_eq!(
        count(&warehouse, &format!("SELECT count(*) FROM fact_sales_order_current WHERE sales_order_id = {order}"))
            .await,
        0
    );
    assert_eq!(
        count(
            &warehouse,
            &format!(
                "SELECT count(*) FROM fact_payment_current p JOIN dim_transaction t USING (transaction_id)
                 WHERE t.sales_order_id = {order}"
            )
        )
        .await,
        0,
        "the order's payments left fact_payment_current"
    );
    assert_eq!(count(&warehouse, "SELECT sum(orders)::int8 FROM sales_by_design").await, orders_before - 1);
    assert_eq!(
        count(&warehouse, "SELECT count(*) FROM dim_transaction WHERE deleted_at IS NOT NULL").await,
        1,
        "the order's transaction"
    );
    assert_verifies_clean(&mut source, &warehouse, ingestion.as_ref()).await;

    // The same key used again: current again, the old versions still marked.
    source
        .batch_execute(&format!(
            "INSERT INTO sales_order (sales_order_id, design_id, staff_id, counterparty_id, units_sold, unit_price,
                currency_id, agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id)
             SELECT {order}, min(design_id), 1, 1, 7, 2.50, 1, '2026-12-10', '2026-12-11', 1 FROM design;
             INSERT INTO design (design_id, design_name, file_location, file_name)
                VALUES ({design}, 'Back again', '/y', 'y.json');"
        ))
        .await
        .expect("key used again");
    run(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse, &every_run).await;
    assert_eq!(
        count(
            &warehouse,
            &format!("SELECT count(*) FROM fact_sales_order_current WHERE sales_order_id = {order} AND units_sold = 7")
        )
        .await,
        1
    );
    assert_eq!(count(&warehouse, &marked("fact_sales_order", "sales_order_id", order)).await, versions_before);
    assert_eq!(
        count(
            &warehouse,
            &format!("SELECT count(*) FROM dim_design WHERE design_id = {design} AND deleted_at IS NULL")
        )
        .await,
        1,
        "a dimension row upserted again is no longer marked"
    );
    assert_verifies_clean(&mut source, &warehouse, ingestion.as_ref()).await;

    // Invariant 9: a warehouse rebuilt from the ingestion bucket has the same marks.
    let (_, processed_again, _) = local_dir("del-marks-rebuilt");
    let (_wh2, mut rebuilt) = warehouse_db("del_marks_rebuilt").await;
    transform::transform_pending(ingestion.as_ref(), processed_again.as_ref(), None).await.expect("transform again");
    load::load_pending(&mut rebuilt, processed_again.as_ref(), None, &Default::default()).await.expect("load again");
    let marks =
        "SELECT count(*) FROM (SELECT sales_order_id, deleted_by_run FROM fact_sales_order WHERE deleted_at IS NOT NULL
                  UNION ALL SELECT design_id, deleted_by_run FROM dim_design WHERE deleted_at IS NOT NULL
                  UNION ALL SELECT payment_id, deleted_by_run FROM fact_payment WHERE deleted_at IS NOT NULL) m";
    assert_eq!(count(&rebuilt, marks).await, count(&warehouse, marks).await);
    assert!(count(&rebuilt, marks).await > 0);
}

/// Mechanism: `reconcile::delivered_before` for a predecessor written before deletes were
/// reconciled (no `delivered_keys`): every key up to the table's largest counts as delivered, so
/// rows deleted before the upgrade are marked by the first reconciliation after it.
#[tokio::test]
async fn the_first_reconciliation_after_an_upgrade_finds_rows_deleted_before_it() {
    let db = TestDb::seeded("del_upgrade").await;
    let mut source = db.connect().await;
    let (_, ingestion, ingestion_dir) = local_dir("del-upgrade-in");
    let (_, processed, _) = local_dir("del-upgrade-out");
    let (_wh, mut warehouse) = warehouse_db("del_upgrade_wh").await;
    let first =
        run(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse, &ExtractOptions::default()).await;
    // As an older build wrote it: no key bookkeeping.
    let path = ingestion_dir.join(onyx_core::keys::manifest(&first.run_id));
    let mut old: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("manifest")).expect("json");
    old.as_object_mut().expect("object").remove("delivered_keys");
    std::fs::write(&path, serde_json::to_vec_pretty(&old).expect("json")).expect("rewrite");

    let payment: i32 = source.query_one("SELECT max(payment_id) - 1 FROM payment", &[]).await.expect("payment").get(0);
    source.batch_execute(&format!("DELETE FROM payment WHERE payment_id = {payment}")).await.expect("delete");
    let after =
        run(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse, &ExtractOptions::default()).await;
    assert_eq!(
        after.keys_reconciled_by.as_deref(),
        Some(after.run_id.as_str()),
        "reconciled at once after the upgrade"
    );
    assert_eq!(after.table("payment").map(|t| t.deleted.to_string()), Some(payment.to_string()));
    assert_eq!(
        count(&warehouse, &format!("SELECT count(*) FROM fact_payment_current WHERE payment_id = {payment}")).await,
        0
    );
    assert_verifies_clean(&mut source, &warehouse, ingestion.as_ref()).await;
}

/// Mechanism: `transform::tombstones_of` drops the held rows of a deleted key (listed as a
/// warning in the run's quarantine). A payment held for a transaction no run has brought, then
/// deleted, must not load when the transaction arrives: released, it would be current again.
#[tokio::test]
async fn a_held_row_whose_source_row_is_deleted_is_dropped_not_released_later() {
    let db = TestDb::seeded("del_held").await;
    let mut source = db.connect().await;
    let (_, ingestion, _) = local_dir("del-held-in");
    let (_, processed, _) = local_dir("del-held-out");
    let (_wh, mut warehouse) = warehouse_db("del_held_wh").await;
    let every_run = reconciling_every(Duration::ZERO);
    run(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse, &every_run).await;
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
    run(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse, &every_run).await;
    source.batch_execute(&format!("DELETE FROM payment WHERE payment_id = {held}")).await.expect("delete");
    let found = run(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse, &every_run).await;
    assert_eq!(found.table("payment").map(|t| t.deleted.to_string()), Some(held.to_string()));
    let processed_run: transform::ProcessedManifest = serde_json::from_slice(
        &processed.get(&onyx_core::keys::manifest(&found.run_id)).await.expect("processed manifest"),
    )
    .expect("json");
    assert_eq!(processed_run.held_rows, 0, "no longer held");
    let quarantine =
        processed.get(processed_run.quarantine_object.as_deref().expect("listed")).await.expect("quarantine");
    assert!(String::from_utf8_lossy(&quarantine).contains("then deleted from the source"), "listed as dropped");

    source
        .batch_execute("INSERT INTO transaction (transaction_id, transaction_type, sales_order_id, purchase_order_id) VALUES (900001, 'SALE', 1, NULL)")
        .await
        .expect("the transaction arrives");
    run(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse, &every_run).await;
    assert_eq!(count(&warehouse, &format!("SELECT count(*) FROM fact_payment WHERE payment_id = {held}")).await, 0);
    assert_verifies_clean(&mut source, &warehouse, ingestion.as_ref()).await;
}

/// Mechanism: `load::mark_late_versions`. A fact version read before its key was found deleted
/// but appended after the marks (an operator's requeue of an old line) takes the marks, so the
/// deleted order does not become current again. The processed run is made by hand: the order's
/// own row from the first run with another quantity (a version of its own), with a
/// `version_order` between the first run and the reconciling one.
#[tokio::test]
async fn a_version_appended_after_the_marks_is_marked_too() {
    use onyx_core::values::Cell;
    use onyx_core::warehouse::FACT_SALES_ORDER;
    use onyx_core::{frames, keys};

    let db = TestDb::seeded("del_late").await;
    let mut source = db.connect().await;
    let (_, ingestion, _) = local_dir("del-late-in");
    let (_, processed, _) = local_dir("del-late-out");
    let (_wh, mut warehouse) = warehouse_db("del_late_wh").await;
    let every_run = reconciling_every(Duration::ZERO);
    let first = run(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse, &every_run).await;
    let order = 5;
    source
        .batch_execute(&format!(
            "BEGIN;
             DELETE FROM payment WHERE transaction_id IN (SELECT transaction_id FROM transaction WHERE sales_order_id = {order});
             DELETE FROM transaction WHERE sales_order_id = {order};
             DELETE FROM sales_order WHERE sales_order_id = {order};
             COMMIT;"
        ))
        .await
        .expect("delete");
    let found = run(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse, &every_run).await;
    assert_eq!(found.table("sales_order").map(|t| t.deleted.to_string()), Some(order.to_string()));

    // The order's row from the first run, as a requeued line of it would come back.
    let first_run: transform::ProcessedManifest =
        serde_json::from_slice(&processed.get(&keys::manifest(&first.run_id)).await.expect("manifest")).expect("json");
    let mut row = None;
    for object in &first_run.tables.iter().find(|t| t.table == FACT_SALES_ORDER.name).expect("table").objects {
        let rows =
            frames::from_parquet(&FACT_SALES_ORDER, processed.get(object).await.expect("part")).expect("parquet");
        row = row.or(rows.into_iter().find(|r| r[0] == Cell::Int(order)));
    }
    let mut row = row.expect("the order's row");
    *row.last_mut().expect("version_order") = Cell::Text(format!("{}:9000000001", first.run_id));
    // A version of its own (another quantity): an identical one would be skipped as a repeat and
    // never reach the marking.
    let units = FACT_SALES_ORDER.data_columns().position(|c| c.name == "units_sold").expect("units_sold");
    row[units] = match &row[units] {
        Cell::Int(n) => Cell::Int(n + 1),
        other => panic!("units_sold is {other:?}"),
    };
    let late = keys::next_id(onyx_core::chrono::Utc::now(), Some(&found.run_id));
    let object = keys::processed_part(FACT_SALES_ORDER.name, &late, 0);
    processed.put(&object, frames::to_parquet(&FACT_SALES_ORDER, &[row]).expect("parquet")).await.expect("put");
    let mut manifest = first_run.clone();
    manifest.run_id = late.clone();
    manifest.previous_run_id = Some(found.run_id.clone());
    manifest.source_manifest = keys::manifest(&late);
    manifest.state_object = keys::state(&late);
    manifest.quarantine_object = None;
    manifest.quarantined_rows = 0;
    for table in &mut manifest.tables {
        let ours = table.table == FACT_SALES_ORDER.name;
        table.rows = u64::from(ours);
        table.objects = if ours { vec![object.clone()] } else { Vec::new() };
    }
    processed.put(&keys::manifest(&late), serde_json::to_vec(&manifest).expect("json")).await.expect("manifest");
    let loaded = load::load_pending(&mut warehouse, processed.as_ref(), None, &Default::default()).await.expect("load");
    assert_eq!(loaded.len(), 1);

    assert_eq!(
        count(
            &warehouse,
            &format!("SELECT count(*) FROM fact_sales_order WHERE sales_order_id = {order} AND deleted_at IS NULL")
        )
        .await,
        0,
        "the late version is marked too"
    );
    assert_eq!(
        count(&warehouse, &format!("SELECT count(*) FROM fact_sales_order_current WHERE sales_order_id = {order}"))
            .await,
        0
    );
}
