//! Quarantine that heals (issue #11, pipeline.md invariants 7 and 9): a reference row with a bad
//! attribute still loads, flagged; a fact held for an unknown reference is released by the first
//! later run that has it, with its original `version_order`; `onyx quarantine` lists what is held
//! and `onyx quarantine requeue` re-applies what an operator fixed. All against real PostgreSQL.

use std::process::Command;

use onyx_core::keys;
use onyx_core::ops;
use onyx_core::storage::ObjectStore;
use onyx_core::tokio_postgres::Client;
use serde_json::Value;

use crate::support::{CapturedLogs, TestDb, local_dir, onyx_binary, run_pipeline, warehouse_db, warehouse_dump};

/// The quarantine lines a run wrote (as JSON values, so every field is visible).
async fn quarantine_lines(store: &dyn ObjectStore, run_id: &str) -> Vec<Value> {
    match store.get(&keys::quarantine(run_id)).await {
        Ok(bytes) => String::from_utf8(bytes)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("quarantine line"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The facts held in the state after a run (the state keeps nothing else of the quarantine).
async fn held_rows(store: &dyn ObjectStore, run_id: &str) -> usize {
    let manifest: Value =
        serde_json::from_slice(&store.get(&keys::manifest(run_id)).await.expect("manifest")).expect("json");
    let state: Value =
        serde_json::from_slice(&store.get(manifest["state_object"].as_str().expect("state key")).await.expect("state"))
            .expect("json");
    assert_eq!(manifest["held_rows"].as_u64(), state["held"].as_array().map(|h| h.len() as u64), "{manifest:#}");
    state["held"].as_array().map_or(0, Vec::len)
}

/// `(version_order)` of every warehouse version of one fact matching `filter`.
async fn versions(warehouse: &Client, table: &str, filter: &str) -> Vec<String> {
    let sql = format!("SELECT version_order FROM {table} WHERE {filter} ORDER BY version_order");
    warehouse.query(sql.as_str(), &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).iter().map(|r| r.get(0)).collect()
}

/// A backfill of the same ingestion bucket into a fresh processed bucket and an empty warehouse
/// gives the same warehouse dump as the incremental path (invariant 9), held rows included.
async fn assert_backfill_equals(ingestion: &dyn ObjectStore, incremental: &Client, prefix: &str) {
    let (_, processed, _) = local_dir(&format!("{prefix}-backfill"));
    let (_db, mut client) = warehouse_db(&format!("{prefix}_bf")).await;
    ops::backfill(ingestion, processed.as_ref(), &mut client, |_, _, _| {}).await.expect("backfill");
    assert_eq!(warehouse_dump(&client).await, warehouse_dump(incremental).await, "backfill equals incremental");
}

/// Mechanism: a payment rejected only for `unknown reference: transaction N` is held in the
/// reference state (`ReferenceState::held`, with its raw row, reason, run and version order),
/// still written to its run's quarantine object (marked `held`), and re-applied by
/// `transform_one` in the first later run whose state knows the transaction — emitted once, with
/// the `version_order` of the run that first read it, and logged at INFO as released.
#[tokio::test]
async fn a_payment_before_its_transaction_is_released_by_the_run_that_has_it() {
    let db = TestDb::seeded("q_pay").await;
    let mut source = db.connect().await;
    let (_, ingestion, _) = local_dir("q-pay-in");
    let (_, processed, _) = local_dir("q-pay-out");
    let (_wh, mut warehouse) = warehouse_db("q_pay_wh").await;
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;

    source
        .batch_execute(
            "ALTER TABLE payment DROP CONSTRAINT payment_transaction_id_fkey;
             INSERT INTO payment (transaction_id, counterparty_id, payment_amount, currency_id, payment_type_id, paid,
                payment_date, company_ac_number, counterparty_ac_number) VALUES
                (900001, 1, 10.00, 1, 1, false, '2026-12-01', 1, 2);",
        )
        .await
        .expect("payment before its transaction");
    let first = run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    let held = quarantine_lines(processed.as_ref(), &first).await;
    assert_eq!(held.len(), 1, "{held:#?}");
    assert_eq!(held[0]["table"], "payment");
    assert!(held[0]["reason"].as_str().unwrap_or_default().contains("unknown reference: transaction 900001"));
    assert_eq!(held[0]["held"], true, "the quarantine line says the row is held: {:#?}", held[0]);
    assert!(versions(&warehouse, "fact_payment", "transaction_id = 900001").await.is_empty());
    assert_eq!(held_rows(processed.as_ref(), &first).await, 1, "the state holds it");

    source
        .batch_execute(
            "INSERT INTO transaction (transaction_id, transaction_type, sales_order_id, purchase_order_id)
             VALUES (900001, 'SALE', 1, NULL)",
        )
        .await
        .expect("the transaction arrives");
    let logs = CapturedLogs::default();
    let guard = logs.install();
    let second = run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    drop(guard);
    let loaded = versions(&warehouse, "fact_payment", "transaction_id = 900001").await;
    assert_eq!(loaded.len(), 1, "released once: {loaded:?}");
    assert!(loaded[0].starts_with(&format!("{first}:")), "original version order {loaded:?}, first run {first}");
    assert!(quarantine_lines(processed.as_ref(), &second).await.is_empty(), "nothing quarantined on release");
    assert_eq!(held_rows(processed.as_ref(), &second).await, 0, "the state keeps held rows only while held");
    let text = logs.text();
    assert!(
        text.lines().any(|l| l.contains("\"INFO\"") && l.contains("released") && l.contains("payment")),
        "an INFO release line: {text}"
    );

    // A later run does not release it again; backfill gives the same warehouse.
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    assert_eq!(versions(&warehouse, "fact_payment", "transaction_id = 900001").await, loaded);
    assert_backfill_equals(ingestion.as_ref(), &warehouse, "q-pay").await;
}

/// Mechanism: the same hold-and-release path for a sales order whose `design_id` names a design
/// not yet extracted (`unknown reference: design N`): held by the run that read it, released
/// by the run that reads the design, before that run's own sales orders, with its original
/// `version_order` — then the same warehouse by backfill.
#[tokio::test]
async fn an_order_before_its_new_design_is_released_by_the_run_that_has_it() {
    let db = TestDb::seeded("q_design").await;
    let mut source = db.connect().await;
    let (_, ingestion, _) = local_dir("q-design-in");
    let (_, processed, _) = local_dir("q-design-out");
    let (_wh, mut warehouse) = warehouse_db("q_design_wh").await;
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;

    source
        .batch_execute(
            "ALTER TABLE sales_order DROP CONSTRAINT sales_order_design_id_fkey;
             INSERT INTO sales_order (design_id, staff_id, counterparty_id, units_sold, unit_price, currency_id,
                agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id) VALUES
                (900001, 1, 1, 4242, 2.50, 1, '2026-12-01', '2026-12-02', 1);",
        )
        .await
        .expect("order before its design");
    let first = run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    let held = quarantine_lines(processed.as_ref(), &first).await;
    assert_eq!(held.len(), 1, "{held:#?}");
    assert_eq!((&held[0]["table"], &held[0]["column"]), (&Value::from("sales_order"), &Value::from("design_id")));
    assert!(versions(&warehouse, "fact_sales_order", "units_sold = 4242").await.is_empty());

    source
        .batch_execute(
            "INSERT INTO design (design_id, design_name, file_location, file_name)
             VALUES (900001, 'New', '/new', 'new.json');
             UPDATE sales_order SET units_sold = 1, last_updated = now() WHERE sales_order_id = 1;",
        )
        .await
        .expect("the design arrives");
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    let loaded = versions(&warehouse, "fact_sales_order", "units_sold = 4242").await;
    assert_eq!(loaded.len(), 1, "released once: {loaded:?}");
    assert!(loaded[0].starts_with(&format!("{first}:")), "original version order {loaded:?}, first run {first}");
    let design: i64 = warehouse
        .query_one("SELECT count(*) FROM dim_design WHERE design_id = 900001", &[])
        .await
        .expect("design")
        .get(0);
    assert_eq!(design, 1);
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    assert_eq!(versions(&warehouse, "fact_sales_order", "units_sold = 4242").await, loaded);
    assert_backfill_equals(ingestion.as_ref(), &warehouse, "q-design").await;
}

/// Mechanism: the currency rule in `model::apply` no longer rejects a code ISO 4217 does not
/// know: the row enters the reference state and `dim_currency` with the code as the source has
/// it and a flagged `currency_name`, an ERROR names table, key, column and value, the run's
/// quarantine object carries a `warning`-level line (the row was not held back), and the orders
/// and payments in that currency reach the warehouse instead of being quarantined as
/// "unknown reference". Backfill gives the same warehouse.
#[tokio::test]
async fn a_currency_iso_4217_does_not_know_loads_flagged_and_its_facts_flow() {
    let db = TestDb::seeded("q_gbp").await;
    let mut source = db.connect().await;
    let (_, ingestion, _) = local_dir("q-gbp-in");
    let (_, processed, _) = local_dir("q-gbp-out");
    let (_wh, mut warehouse) = warehouse_db("q_gbp_wh").await;
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;

    let currency: i32 = source
        .query_one("INSERT INTO currency (currency_code) VALUES ('gbp') RETURNING currency_id", &[])
        .await
        .expect("currency")
        .get(0);
    source
        .batch_execute(&format!(
            "INSERT INTO sales_order (design_id, staff_id, counterparty_id, units_sold, unit_price, currency_id,
                agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id) VALUES
                (1, 1, 1, 4343, 2.50, {currency}, '2026-12-01', '2026-12-02', 1);
             INSERT INTO payment (transaction_id, counterparty_id, payment_amount, currency_id, payment_type_id, paid,
                payment_date, company_ac_number, counterparty_ac_number) VALUES
                (1, 1, 43.43, {currency}, 1, false, '2026-12-01', 1, 2);"
        ))
        .await
        .expect("facts in gbp");
    let logs = CapturedLogs::default();
    let guard = logs.install();
    let run = run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    drop(guard);

    let row = warehouse
        .query_one("SELECT currency_code, currency_name FROM dim_currency WHERE currency_id = $1", &[&currency])
        .await
        .expect("the currency is in dim_currency");
    assert_eq!(row.get::<_, String>(0), "gbp", "the code as the source has it");
    assert_eq!(row.get::<_, String>(1), "unknown currency code \"gbp\" (not ISO 4217)");
    let orders = versions(&warehouse, "fact_sales_order", &format!("currency_id = {currency}")).await;
    let payments = versions(&warehouse, "fact_payment", &format!("currency_id = {currency}")).await;
    assert_eq!((orders.len(), payments.len()), (1, 1), "its facts flow");

    let lines = quarantine_lines(processed.as_ref(), &run).await;
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["level"], "warning", "{:#?}", lines[0]);
    assert_eq!((&lines[0]["table"], &lines[0]["column"]), (&Value::from("currency"), &Value::from("currency_code")));
    let text = logs.text();
    assert!(
        text.lines().any(|l| l.contains("\"ERROR\"")
            && l.contains("currency")
            && l.contains("currency_code")
            && l.contains("gbp")
            && l.contains(&format!("\"key\":{currency}"))
            // Issue #24 item 9: a data-quality line, left out of the outage alarm's count.
            && l.contains("\"data_quality\":true")),
        "an ERROR naming table, key, column and value, marked as data quality: {text}"
    );
    assert_backfill_equals(ingestion.as_ref(), &warehouse, "q-gbp").await;
}

fn onyx(args: &[&str]) -> (bool, String) {
    let out = Command::new(onyx_binary())
        .args(args)
        .env_remove("ONYX_SOURCE_URL")
        .env_remove("ONYX_WAREHOUSE_URL")
        .output()
        .expect("run onyx");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Mechanism: `onyx quarantine` reads the newest processed state (held rows) and the quarantine
/// objects of recent runs, and prints table, key, reason, run and age of each; `onyx quarantine
/// requeue --run R` writes an immutable request object under `_requeue/`, which the next
/// transform run consumes once (recorded in its processed manifest), re-applying the quarantined
/// lines of R through the current rules with their original `version_order`. The fixable line is
/// a quarantine line as an older build wrote it (a sales order it rejected), appended to R's
/// quarantine object — the only way to stand for a rule an operator has since fixed.
#[tokio::test]
async fn onyx_quarantine_lists_what_is_held_and_requeue_re_applies_a_run() {
    let db = TestDb::seeded("q_cli").await;
    let mut source = db.connect().await;
    let (_, ingestion, _) = local_dir("q-cli-in");
    let (_, processed, processed_dir) = local_dir("q-cli-out");
    let (_wh, mut warehouse) = warehouse_db("q_cli_wh").await;
    let dir = processed_dir.display().to_string();
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;

    source
        .batch_execute(
            "ALTER TABLE payment DROP CONSTRAINT payment_transaction_id_fkey;
             INSERT INTO payment (transaction_id, counterparty_id, payment_amount, currency_id, payment_type_id, paid,
                payment_date, company_ac_number, counterparty_ac_number) VALUES
                (900002, 1, 10.00, 1, 1, false, '2026-12-01', 1, 2),
                (1, 1, 1.1234567890123456789, 1, 1, false, '2026-12-01', 1, 2);",
        )
        .await
        .expect("a held and a bad payment");
    let run = run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    let lines = quarantine_lines(processed.as_ref(), &run).await;
    assert_eq!(lines.len(), 2, "{lines:#?}");

    let (ok, listing) = onyx(&["quarantine", "--processed", &dir]);
    assert!(ok, "{listing}");
    let held_line = listing.lines().find(|l| l.contains("900002") || l.contains("transaction 900002"));
    let held_line = held_line.unwrap_or_else(|| panic!("the held payment is listed: {listing}"));
    assert!(held_line.contains("held") && held_line.contains("payment") && held_line.contains(&run), "{listing}");
    let bad = listing.lines().find(|l| l.contains("does not fit")).unwrap_or_else(|| panic!("bad row: {listing}"));
    assert!(bad.contains("quarantined") && bad.contains("payment_amount") && bad.contains(&run), "{listing}");
    assert!(listing.contains("age"), "an age column: {listing}");
    let (ok, help) = onyx(&["quarantine", "--help"]);
    assert!(ok && help.contains("state") && help.contains("requeue"), "{help}");

    // A quarantine line as an older build wrote it: a valid sales order it rejected.
    let first_sales = keys::extract_part(
        "sales_order",
        &onyx_core::storage::manifest_run_ids(ingestion.as_ref(), None).await.expect("runs")[0],
        0,
    );
    let text = String::from_utf8(ingestion.get(&first_sales).await.expect("sales part")).expect("utf-8");
    let mut row: serde_json::Map<String, Value> =
        serde_json::from_str(text.lines().next().expect("a line")).expect("row");
    row.insert("units_sold".into(), Value::from(5151));
    row.insert("last_updated".into(), Value::from("2026-11-28T06:00:00.000000"));
    let version_order = format!("{run}:0000009999");
    let old = serde_json::json!({"table": "sales_order", "source_object": first_sales, "line": 1,
        "key": row["sales_order_id"], "column": "currency_id", "reason": "rejected by an older rule",
        "row": row, "version_order": version_order});
    let mut body = processed.get(&keys::quarantine(&run)).await.expect("quarantine object");
    body.extend(serde_json::to_vec(&old).expect("json"));
    body.push(b'\n');
    // Written past the store (which never changes an object): this stands for the older build.
    std::fs::write(processed_dir.join(keys::quarantine(&run)), body).expect("older build's line");

    let (ok, out) = onyx(&["quarantine", "requeue", "--processed", &dir, "--run", &run]);
    assert!(ok && out.contains(&run), "{out}");
    let (ok, out) = onyx(&["quarantine", "requeue", "--processed", &dir, "--run", "20990101T000000000-none"]);
    assert!(!ok && out.contains("20990101T000000000-none"), "an unknown run is refused, named: {out}");

    let (_, listing) = onyx(&["quarantine", "--processed", &dir]);
    assert!(listing.lines().any(|l| l.starts_with("requeue-pending") && l.contains("does not fit")), "{listing}");

    let next = run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    let (_, listing) = onyx(&["quarantine", "--processed", &dir]);
    let status_of = |run: &str| {
        listing
            .lines()
            .find(|l| l.contains("does not fit") && l.contains(run))
            .map(|l| l.split(' ').next().unwrap_or(""))
    };
    assert_eq!(status_of(&format!("{} ", run)), Some("requeued"), "{listing}");
    assert_eq!(status_of(&format!("{} ", next)), Some("quarantined"), "failed again, listed under {next}: {listing}");
    let requeued = versions(&warehouse, "fact_sales_order", "units_sold = 5151").await;
    assert_eq!(requeued, std::slice::from_ref(&version_order), "emitted once with its original version order");
    let again = quarantine_lines(processed.as_ref(), &next).await;
    assert_eq!(again.len(), 1, "the still-bad line is quarantined again, the held one not requeued: {again:#?}");
    let reason = again[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("requeued") && reason.contains(&run) && reason.contains("does not fit"), "{reason}");
    let manifest: Value =
        serde_json::from_slice(&processed.get(&keys::manifest(&next)).await.expect("manifest")).expect("json");
    assert_eq!(manifest["requeue_requests"].as_array().map(Vec::len), Some(1), "{manifest:#}");

    // The request is consumed once: the run after does not re-apply it.
    let after = run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    assert!(quarantine_lines(processed.as_ref(), &after).await.is_empty());
    assert_eq!(versions(&warehouse, "fact_sales_order", "units_sold = 5151").await, [version_order]);
}
