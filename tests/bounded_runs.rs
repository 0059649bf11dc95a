//! Bounded runs (issue #15): a source larger than one run's cap (`ONYX_MAX_RUN_ROWS`) arrives
//! completely through consecutive runs, in dependency order of the tables and key order within
//! one, each run carrying at most the cap plus the changes since its predecessor. Changes made
//! while such a pass is under way — to rows already delivered (read again as changes), to rows
//! not reached yet (read once, at their latest version, by their page), by a transaction left
//! open across runs — all arrive exactly once, and the warehouse built run by run verifies clean.

use std::collections::BTreeMap;

use onyx_core::extract::{self, ExtractOptions, IngestionManifest};
use onyx_core::storage::ObjectStore;
use onyx_core::tables::SOURCE_TABLES;
use onyx_core::verify::{self, VerifyOptions};
use onyx_core::{load, transform};
use tokio_postgres::Client;

use crate::extract::{manifests, source_versions};
use crate::support::{TestDb, local_dir, warehouse_db};

const CAP: u64 = 7_000;

fn bounded() -> ExtractOptions {
    ExtractOptions { max_run_rows: CAP, ..Default::default() }
}

/// Every extracted line of every table across all runs, with how often each was written: a
/// line is a whole row version (every column), so a count above 1 is a version written twice.
async fn lines(store: &dyn ObjectStore) -> BTreeMap<(String, String), usize> {
    let mut lines = BTreeMap::new();
    for manifest in manifests(store).await {
        for table in &manifest.tables {
            for key in &table.objects {
                let body = String::from_utf8(store.get(key).await.expect("object")).expect("UTF-8");
                for line in body.lines() {
                    *lines.entry((table.table.clone(), line.to_string())).or_default() += 1;
                }
            }
        }
    }
    lines
}

/// The latest extracted `last_updated` per id of a table (runs in order, so the last one wins).
async fn latest_extracted(store: &dyn ObjectStore, table: &str, key: &str) -> Vec<(i64, String)> {
    let mut latest = BTreeMap::new();
    for row in crate::extract::extracted_rows(store, table).await {
        let id = row[key].as_i64().expect("integer key");
        latest.insert(id, row["last_updated"].as_str().expect("last_updated").to_string());
    }
    latest.into_iter().collect()
}

/// One extract run, then transform and load of everything pending: the pipeline, run by run.
async fn run_once(
    source: &mut Client,
    ingestion: &dyn ObjectStore,
    processed: &dyn ObjectStore,
    warehouse: &mut Client,
) -> IngestionManifest {
    let summary = extract::run(source, ingestion, &bounded()).await.expect("extract");
    transform::transform_pending(ingestion, processed, None).await.expect("transform");
    load::load_pending(warehouse, processed, None, &Default::default()).await.expect("load");
    summary.manifest
}

/// The changes each round makes between runs: one row of a table the pass has delivered, one
/// row far ahead of it (the highest payment), and a new design.
async fn change_round(source: &Client, round: usize) -> u64 {
    source
        .batch_execute(&format!(
            "UPDATE currency SET last_updated = LOCALTIMESTAMP WHERE currency_id = 1;
             UPDATE sales_order SET units_sold = units_sold + 1, last_updated = LOCALTIMESTAMP WHERE sales_order_id = 1;
             UPDATE payment SET paid = NOT paid, last_updated = LOCALTIMESTAMP
               WHERE payment_id = (SELECT max(payment_id) FROM payment);
             INSERT INTO design (design_id, created_at, design_name, file_location, file_name, last_updated)
               SELECT max(design_id) + 1, LOCALTIMESTAMP, 'round {round}', '/designs', 'r{round}.json', LOCALTIMESTAMP
               FROM design;"
        ))
        .await
        .expect("a round of changes");
    4
}

async fn assert_complete_and_once(source_db: &TestDb, ingestion: &dyn ObjectStore) {
    let twice: Vec<_> = lines(ingestion).await.into_iter().filter(|(_, n)| *n > 1).collect();
    assert!(twice.is_empty(), "row versions written more than once: {:?}", &twice[..twice.len().min(5)]);
    for table in SOURCE_TABLES {
        assert_eq!(
            latest_extracted(ingestion, table.name, table.key).await,
            source_versions(source_db, table.name, table.key).await,
            "{}: the latest extracted version of every id is the source's current one",
            table.name
        );
    }
}

#[tokio::test]
async fn a_source_larger_than_one_run_arrives_completely_through_bounded_runs() {
    let source_db = TestDb::seeded("bounded").await;
    let mut source = source_db.connect().await;
    let other = source_db.connect().await;
    let (_, ingestion, _) = local_dir("bounded-in");
    let (_, processed, _) = local_dir("bounded-out");
    let (_wh, mut warehouse) = warehouse_db("bounded_wh").await;

    let mut runs = Vec::new();
    let mut changed = 0;
    loop {
        let manifest = run_once(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
        assert!(
            manifest.total_rows() <= CAP + changed,
            "run {} carried {} rows: more than the cap ({CAP}) plus the {changed} changed since its predecessor",
            manifest.run_id,
            manifest.total_rows()
        );
        let round = runs.len();
        runs.push(manifest.clone());
        if manifest.pending.is_none() {
            break;
        }
        assert!(round < 20, "the pass does not finish: {:?}", manifest.pending);
        if round == 2 {
            // Mid-pass, the rows no run has reached yet are in flight, not missing.
            let report = verify::verify(&mut source, &warehouse, ingestion.as_ref(), &VerifyOptions::default())
                .await
                .expect("verify mid-pass");
            assert!(report.is_clean(), "{report:#?}");
            let in_flight: u64 = report.tables.iter().map(|t| t.in_flight).sum();
            assert!(in_flight > 20_000, "the payments and transactions not reached yet: {in_flight}");
        }
        changed = change_round(&source, round).await;
        match round {
            // A transaction opened now and committed after the next run: it writes a row the pass
            // has delivered (department, the second table) and one it has not reached yet.
            1 => {
                other
                    .batch_execute(
                        "BEGIN;
                         UPDATE department SET location = 'Long transaction', last_updated = LOCALTIMESTAMP
                           WHERE department_id = 3;
                         UPDATE payment SET paid = NOT paid, last_updated = LOCALTIMESTAMP WHERE payment_id = 2;",
                    )
                    .await
                    .expect("open a long transaction");
            }
            2 => {
                other.batch_execute("COMMIT").await.expect("commit it after a run");
                changed += 2;
            }
            _ => {}
        }
    }
    assert!(runs.len() >= 7, "48,066 rows at {CAP} per run take at least 7 runs, not {}", runs.len());
    assert_eq!(runs[0].full_read.as_deref(), Some("first run"));
    assert!(runs[1].full_read.is_none() && runs[1].pending.is_some(), "later runs continue the pass");
    // The cursor moves forward in dependency order, never back.
    let position = |m: &IngestionManifest| {
        m.pending.as_ref().map(|p| (SOURCE_TABLES.iter().position(|t| t.name == p.table), p.after_key))
    };
    for pair in runs.windows(2) {
        if let (Some(a), Some(b)) = (position(&pair[0]), position(&pair[1])) {
            assert!(a < b, "the pass went from {a:?} to {b:?}");
        }
    }
    assert_complete_and_once(&source_db, ingestion.as_ref()).await;
    // Every version of a delivered row was seen by one run's snapshot and arrives: sales order 1
    // was behind the cursor (in the table being paged, then before it) in every round.
    let rounds = runs.len() - 1;
    for (table, key) in [("sales_order", "sales_order_id"), ("currency", "currency_id")] {
        let versions = crate::extract::versions(ingestion.as_ref(), table, key).await;
        let of_first = versions.keys().filter(|(id, _)| *id == 1).count();
        assert_eq!(of_first, rounds + 1, "{table} 1: its original version and one per round of changes");
    }

    // A later run with nothing pending carries only changes, and the warehouse equals the source.
    let last = run_once(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    assert_eq!(last.total_rows(), 0, "{last:#?}");
    let report =
        verify::verify(&mut source, &warehouse, ingestion.as_ref(), &VerifyOptions::default()).await.expect("verify");
    assert!(report.is_clean(), "{report:#?}");
}

#[tokio::test]
async fn changes_larger_than_one_run_are_delivered_in_key_order_over_several() {
    let source_db = TestDb::seeded("backlog").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("backlog-in");
    let (_, processed, _) = local_dir("backlog-out");
    let (_wh, mut warehouse) = warehouse_db("backlog_wh").await;
    // The first load in one run (the cap is raised for it), then one transaction changing more
    // payments than a run carries, and a change to a table before payment.
    let whole = ExtractOptions { max_run_rows: 100_000, ..Default::default() };
    extract::run(&mut source, ingestion.as_ref(), &whole).await.expect("first run");
    source
        .batch_execute(
            "UPDATE payment SET payment_amount = payment_amount + 1, last_updated = LOCALTIMESTAMP
               WHERE payment_id <= 12000;
             UPDATE currency SET last_updated = LOCALTIMESTAMP WHERE currency_id = 2;",
        )
        .await
        .expect("a large transaction");
    let first = run_once(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    let pending = first.pending.clone().expect("12,001 changes do not fit in one run of 7,000");
    assert_eq!(pending.table, "payment");
    assert!(pending.window.is_some(), "the pass reads the changes, not every row: {pending:?}");
    assert_eq!(first.table("currency").map(|t| t.rows), Some(1), "tables before the overflow carry their changes");
    // The currency change took one row of the budget.
    assert_eq!(first.table("payment").map(|t| t.rows), Some(CAP - 1));
    // A change behind the cursor while the pass goes on: the next run's changes carry it.
    source
        .batch_execute("UPDATE payment SET paid = NOT paid, last_updated = LOCALTIMESTAMP WHERE payment_id = 1")
        .await
        .expect("change a delivered payment");
    let second = run_once(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    assert!(second.pending.is_none(), "{:?}", second.pending);
    assert_eq!(second.table("payment").map(|t| t.rows), Some(12_000 - (CAP - 1) + 1));
    assert_eq!(manifests(ingestion.as_ref()).await.len(), 3);
    assert_complete_and_once(&source_db, ingestion.as_ref()).await;
    let report =
        verify::verify(&mut source, &warehouse, ingestion.as_ref(), &VerifyOptions::default()).await.expect("verify");
    assert!(report.is_clean(), "{report:#?}");
}

/// Manifests of runs after `run_id` already in a local ingestion directory.
fn manifests_after(dir: &std::path::Path, run_id: &str) -> usize {
    fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".json")) {
                found.push(name.to_string());
            }
        }
    }
    let mut found = Vec::new();
    walk(&dir.join(onyx_core::keys::MANIFEST_PREFIX), &mut found);
    found.iter().filter(|r| r.as_str() > run_id).count()
}

/// `onyx run` hands each run on as soon as its stage is done: the extract of later runs goes
/// on while earlier ones are transformed and loaded (seen: when a run's load finishes, a later
/// run's manifest is already written), and still every run is transformed and loaded once, in
/// order, and the warehouse verifies clean.
#[tokio::test]
async fn onyx_run_overlaps_the_stages_across_bounded_runs_and_loads_each_run_once_in_order() {
    let source_db = TestDb::seeded("overlap").await;
    let source = source_db.connect().await;
    let mut check = source_db.connect().await;
    let (_, ingestion, ingestion_dir) = local_dir("overlap-in");
    let (_, processed, _) = local_dir("overlap-out");
    let (_wh, mut warehouse) = warehouse_db("overlap_wh").await;

    let mut loaded = Vec::new();
    let mut extracted_ahead = 0;
    let runs = onyx_core::pipeline::run_until_delivered(
        source,
        &mut warehouse,
        ingestion.clone(),
        processed.clone(),
        bounded(),
        |run| {
            let run_id = run.extracted.manifest.run_id.clone();
            assert_eq!(
                run.transformed.iter().map(|t| t.manifest.run_id.as_str()).collect::<Vec<_>>(),
                [run_id.as_str()]
            );
            assert_eq!(run.loaded.iter().map(|l| l.run_id.as_str()).collect::<Vec<_>>(), [run_id.as_str()]);
            if manifests_after(&ingestion_dir, &run_id) > 0 {
                extracted_ahead += 1;
            }
            loaded.push(run_id);
        },
    )
    .await
    .expect("onyx run");

    let extracted: Vec<String> = manifests(ingestion.as_ref()).await.into_iter().map(|m| m.run_id).collect();
    assert!(runs >= 7, "48,066 rows at {CAP} per run take at least 7 runs, not {runs}");
    assert_eq!(loaded, extracted, "every extracted run is loaded once, in run order");
    assert!(extracted_ahead > 0, "no run was extracted while an earlier one was still transforming or loading");
    let ledger: Vec<String> = warehouse
        .query("SELECT run_id FROM onyx_load_ledger ORDER BY run_id", &[])
        .await
        .expect("ledger")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ledger, extracted);
    assert_complete_and_once(&source_db, ingestion.as_ref()).await;
    let report =
        verify::verify(&mut check, &warehouse, ingestion.as_ref(), &VerifyOptions::default()).await.expect("verify");
    assert!(report.is_clean(), "{report:#?}");
}

/// The run (manifest) whose `table` object holds the row with `key` = `id`.
async fn run_holding(ingestion: &dyn ObjectStore, table: &str, key: &str, id: i64) -> String {
    for manifest in manifests(ingestion).await {
        for object in &manifest.table(table).expect("table").objects {
            let body = String::from_utf8(ingestion.get(object).await.expect("object")).expect("UTF-8");
            let found = body
                .lines()
                .any(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")[key].as_i64() == Some(id));
            if found {
                return manifest.run_id.clone();
            }
        }
    }
    panic!("{table} {id} was never extracted")
}

/// Runs the pipeline with the small cap until nothing is left to deliver; every run stays within
/// the cap.
async fn deliver(
    source: &mut Client,
    ingestion: &dyn ObjectStore,
    processed: &dyn ObjectStore,
    warehouse: &mut Client,
) -> Vec<IngestionManifest> {
    let mut runs = Vec::new();
    loop {
        let manifest = run_once(source, ingestion, processed, warehouse).await;
        assert!(
            manifest.total_rows() <= CAP,
            "run {} carried {} rows, more than the cap ({CAP})",
            manifest.run_id,
            manifest.total_rows()
        );
        let more = manifest.has_more();
        runs.push(manifest);
        if !more {
            return runs;
        }
        assert!(runs.len() < 20, "the backlog does not drain");
    }
}

/// Issue #22 item 3, mechanism: `extract::backlog_cut`. A backlog of changes larger than the cap
/// (8 transactions of 1,000 sales orders, then a new sales order with its transaction and
/// payment in one transaction, then 8 transactions of 1,000 payments) is delivered in
/// transaction order: each run carries whole transactions, oldest first, up to the cap. Before,
/// it went out table by table in key order, so the new sales order and its payment landed in two
/// runs (and two warehouse transactions).
#[tokio::test]
async fn a_small_transaction_inside_a_backlog_lands_in_one_run() {
    let source_db = TestDb::seeded("backlog_txn").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("backlog-txn-in");
    let (_, processed, _) = local_dir("backlog-txn-out");
    let (_wh, mut warehouse) = warehouse_db("backlog_txn_wh").await;
    let whole = ExtractOptions { max_run_rows: 100_000, ..Default::default() };
    extract::run(&mut source, ingestion.as_ref(), &whole).await.expect("first run");
    for batch in 0..8 {
        source
            .batch_execute(&format!(
                "UPDATE sales_order SET units_sold = units_sold + 1, last_updated = LOCALTIMESTAMP
                 WHERE sales_order_id > {} AND sales_order_id <= {}",
                batch * 1000,
                (batch + 1) * 1000
            ))
            .await
            .expect("a batch of sales orders");
    }
    let row = source
        .query_one(
            "WITH o AS (
                INSERT INTO sales_order (created_at, last_updated, design_id, staff_id, counterparty_id, units_sold,
                    unit_price, currency_id, agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id)
                VALUES (LOCALTIMESTAMP, LOCALTIMESTAMP, 1, 1, 1, 5, 2.50, 1, '2026-12-10', '2026-12-11', 1)
                RETURNING sales_order_id),
             t AS (INSERT INTO transaction (transaction_type, sales_order_id, created_at, last_updated)
                SELECT 'SALE', sales_order_id, LOCALTIMESTAMP, LOCALTIMESTAMP FROM o RETURNING transaction_id)
             INSERT INTO payment (transaction_id, counterparty_id, payment_amount, currency_id, payment_type_id, paid,
                payment_date, company_ac_number, counterparty_ac_number)
             SELECT transaction_id, 1, 12.50, 1, 1, false, '2026-12-11', 1, 2 FROM t
             RETURNING (SELECT sales_order_id FROM o)::int8, transaction_id::int8, payment_id::int8",
            &[],
        )
        .await
        .expect("a sale, its transaction and payment in one transaction");
    let (order, transaction, payment): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    for batch in 0..8 {
        source
            .batch_execute(&format!(
                "UPDATE payment SET paid = NOT paid, last_updated = LOCALTIMESTAMP
                 WHERE payment_id > {} AND payment_id <= {}",
                batch * 1000,
                (batch + 1) * 1000
            ))
            .await
            .expect("a batch of payments");
    }

    let runs = deliver(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    assert!(runs.len() >= 3, "16,003 changes at {CAP} per run: {} runs", runs.len());
    assert!(
        runs.iter().all(|m| m.delivered_before.is_some() == (m.format == 4)),
        "a cut manifest is format 4, so that a build without cuts refuses to continue from it"
    );
    let order_run = run_holding(ingestion.as_ref(), "sales_order", "sales_order_id", order).await;
    assert_eq!(
        run_holding(ingestion.as_ref(), "transaction", "transaction_id", transaction).await,
        order_run,
        "the transaction row arrives with its sales order"
    );
    assert_eq!(
        run_holding(ingestion.as_ref(), "payment", "payment_id", payment).await,
        order_run,
        "the payment arrives with its sales order: one transaction, one run"
    );
    assert_complete_and_once(&source_db, ingestion.as_ref()).await;
    let report =
        verify::verify(&mut source, &warehouse, ingestion.as_ref(), &VerifyOptions::default()).await.expect("verify");
    assert!(report.is_clean(), "{report:#?}");
}

/// Issue #22 item 5, mechanism: the capped read of the changes behind a pass's cursor. A first
/// load delivered over bounded runs; after two runs, 9 transactions change 9,000 sales orders
/// the pass has already delivered. Before, the next run read every change behind the cursor
/// without the cap (plus the pass's page: over 10,000 rows in a run of 7,000). Now those changes
/// are cut at a transaction boundary too, and every run stays within the cap.
#[tokio::test]
async fn changes_behind_a_pass_cursor_stay_within_the_cap() {
    let source_db = TestDb::seeded("behind_cursor").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("behind-cursor-in");
    let (_, processed, _) = local_dir("behind-cursor-out");
    let (_wh, mut warehouse) = warehouse_db("behind_cursor_wh").await;
    for _ in 0..2 {
        let run = run_once(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
        assert!(run.pending.is_some(), "the pass goes on");
    }
    let cursor = manifests(ingestion.as_ref()).await.last().and_then(|m| m.pending.clone()).expect("pending");
    assert!(
        SOURCE_TABLES.iter().position(|t| t.name == cursor.table)
            > SOURCE_TABLES.iter().position(|t| t.name == "sales_order"),
        "sales orders are behind the cursor: {cursor:?}"
    );
    for batch in 0..9 {
        source
            .batch_execute(&format!(
                "UPDATE sales_order SET units_sold = units_sold + 1, last_updated = LOCALTIMESTAMP
                 WHERE sales_order_id > {} AND sales_order_id <= {}",
                batch * 1000,
                (batch + 1) * 1000
            ))
            .await
            .expect("a batch of delivered sales orders");
    }
    deliver(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    assert_complete_and_once(&source_db, ingestion.as_ref()).await;
    let report =
        verify::verify(&mut source, &warehouse, ingestion.as_ref(), &VerifyOptions::default()).await.expect("verify");
    assert!(report.is_clean(), "{report:#?}");
}
