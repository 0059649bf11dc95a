//! The whole pipeline across its three Lambda handlers, over moto's S3 and real PostgreSQL, with
//! S3 events built from the objects each stage wrote. Invariants 1, 2, 4, 6 and 9 together.

use std::collections::BTreeSet;

use onyx_core::extract::ExtractOptions;
use onyx_core::handlers::{ExtractFunction, LoadFunction, TransformFunction};
use onyx_core::storage::{Location, Store};
use onyx_core::tokio_postgres::Client;
use onyx_core::{db::DbTarget, ops, simulate};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::support::{TestDb, bucket_of, s3_bucket, s3_event, warehouse_dump};

/// Source facts as the warehouse holds them (times to the microsecond).
const SOURCE_FACTS: [(&str, &str, &str); 3] = [
    (
        "fact_sales_order",
        "SELECT (sales_order_id, created_at::date, created_at::time,
                 last_updated::date, last_updated::time, staff_id, counterparty_id,
                 units_sold, trim_scale(unit_price), currency_id, design_id, agreed_payment_date::date,
                 agreed_delivery_date::date, agreed_delivery_location_id)::text FROM sales_order",
        "SELECT (sales_order_id, created_date, created_time, last_updated_date, last_updated_time, sales_staff_id,
                 counterparty_id, units_sold, trim_scale(unit_price), currency_id, design_id, agreed_payment_date,
                 agreed_delivery_date, agreed_delivery_location_id)::text FROM fact_sales_order",
    ),
    (
        "fact_purchase_order",
        "SELECT (purchase_order_id, created_at::date, created_at::time,
                 last_updated::date, last_updated::time, staff_id, counterparty_id,
                 item_code, item_quantity, trim_scale(item_unit_price), currency_id, agreed_delivery_date::date,
                 agreed_payment_date::date, agreed_delivery_location_id)::text FROM purchase_order",
        "SELECT (purchase_order_id, created_date, created_time, last_updated_date, last_updated_time, staff_id,
                 counterparty_id, item_code, item_quantity, trim_scale(item_unit_price), currency_id,
                 agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id)::text FROM fact_purchase_order",
    ),
    (
        "fact_payment",
        "SELECT (payment_id, created_at::date, created_at::time, last_updated::date,
                 last_updated::time, transaction_id, counterparty_id,
                 trim_scale(payment_amount), currency_id, payment_type_id, paid, payment_date::date)::text FROM payment",
        "SELECT (payment_id, created_date, created_time, last_updated_date, last_updated_time, transaction_id,
                 counterparty_id, trim_scale(payment_amount), currency_id, payment_type_id, paid, payment_date)::text
         FROM fact_payment",
    ),
];

/// Dimensions as the source's current state implies them.
const SOURCE_DIMS: [(&str, &str, &str); 4] = [
    (
        "dim_staff",
        "SELECT (s.staff_id, s.first_name, s.last_name, d.department_name, d.location, s.email_address)::text
         FROM staff s JOIN department d USING (department_id)",
        "SELECT (staff_id, first_name, last_name, department_name, location, email_address)::text FROM dim_staff",
    ),
    (
        "dim_counterparty",
        "SELECT (c.counterparty_id, c.counterparty_legal_name, a.address_line_1, a.address_line_2, a.district, a.city,
                 a.postal_code, a.country, a.phone)::text FROM counterparty c JOIN address a ON a.address_id = c.legal_address_id",
        "SELECT (counterparty_id, counterparty_legal_name, counterparty_legal_address_line_1,
                 counterparty_legal_address_line_2, counterparty_legal_district, counterparty_legal_city,
                 counterparty_legal_postal_code, counterparty_legal_country, counterparty_legal_phone_number)::text
         FROM dim_counterparty",
    ),
    (
        "dim_location",
        "SELECT (address_id, address_line_1, address_line_2, district, city, postal_code, country, phone)::text FROM address",
        "SELECT (location_id, address_line_1, address_line_2, district, city, postal_code, country, phone)::text FROM dim_location",
    ),
    (
        "dim_transaction",
        "SELECT (transaction_id, transaction_type, sales_order_id, purchase_order_id)::text FROM transaction",
        "SELECT (transaction_id, transaction_type, sales_order_id, purchase_order_id)::text FROM dim_transaction",
    ),
];

async fn set_of(client: &Client, sql: &str) -> BTreeSet<String> {
    client.query(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).iter().map(|r| r.get(0)).collect()
}

fn full_key(location: &Location, key: &str) -> String {
    format!("{}{key}", bucket_of(location).1)
}

/// One kind of change per round, on top of simulated activity.
async fn change_source(source: &Client, round: usize, rng: &mut StdRng) {
    let payment: i32 = rng.random_range(1..=15_000);
    let sql = match round % 4 {
        // The same row updated several times between runs: only the version at the run counts.
        0 => format!(
            "UPDATE payment SET payment_amount = payment_amount + 1, last_updated = clock_timestamp() WHERE payment_id = {payment};
             UPDATE payment SET payment_amount = payment_amount + 1, last_updated = clock_timestamp() WHERE payment_id = {payment};"
        ),
        // A row stamped with the newest millisecond already extracted.
        1 => "INSERT INTO design (design_name, file_location, file_name, created_at, last_updated)
              SELECT 'Boundary', '/b', 'b.json', max(last_updated), max(last_updated) FROM design;"
            .to_string(),
        // A department moves and an address changes: dimension rows change in place.
        2 => format!(
            "UPDATE department SET location = 'Round {round}', last_updated = now() WHERE department_id IN (SELECT department_id FROM staff LIMIT 1);
             UPDATE address SET district = NULL, last_updated = now() WHERE address_id IN (SELECT legal_address_id FROM counterparty LIMIT 1);"
        ),
        _ => format!("UPDATE payment SET paid = NOT paid, last_updated = now() WHERE payment_id = {payment};"),
    };
    source.batch_execute(&sql).await.expect("round change");
}

#[tokio::test]
async fn random_rounds_reach_the_warehouse_exactly_once_in_any_event_order_and_by_backfill() {
    let source_db = TestDb::seeded("e2e").await;
    let source = source_db.connect().await;
    let (ingestion_location, ingestion) = s3_bucket("e2e-in").await;
    let (processed_location, processed) = s3_bucket("e2e-out").await;
    let warehouse = TestDb::create("e2e_wh").await;

    let extract_fn = ExtractFunction {
        source: DbTarget::Url(source_db.url.clone().into()),
        ingestion: ingestion.clone(),
        options: ExtractOptions::default(),
    };
    let transform_fn = TransformFunction { ingestion: ingestion.clone(), processed: processed.clone() };
    let load_fn = LoadFunction::new(DbTarget::Url(warehouse.url.clone().into()), processed.clone());
    let (ingestion_bucket, _) = bucket_of(&ingestion_location);
    let (processed_bucket, _) = bucket_of(&processed_location);
    let scheduled: Value = serde_json::from_str(include_str!("fixtures/scheduled-event.json")).expect("fixture");

    let mut rng = StdRng::seed_from_u64(20_261_128);
    let mut expected_facts: Vec<BTreeSet<String>> = vec![BTreeSet::new(); SOURCE_FACTS.len()];
    let mut ingestion_events = Vec::new();
    let mut processed_events = Vec::new();
    let mut late = None;
    for round in 0..6 {
        if round > 0 {
            let options =
                simulate::SimulateOptions { minutes: 15, seed: round as u64, with_reference_changes: round == 3 };
            let mut client = source_db.connect().await;
            simulate::simulate(&mut client, &options).await.expect("simulate");
            change_source(&source, round, &mut rng).await;
        }
        if round == 2 {
            // A writer stamps rows with now() and commits only after this round's run.
            let writer = source_db.connect().await;
            writer
                .batch_execute(
                    "BEGIN;
                     INSERT INTO sales_order (design_id, staff_id, counterparty_id, units_sold, unit_price, currency_id,
                        agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id)
                        VALUES (1, 1, 1, 4242, 3.33, 1, '2026-12-24', '2026-12-31', 1);",
                )
                .await
                .expect("open late transaction");
            late = Some(writer);
            // A later change to the same table commits before the run, so that table's watermark
            // passes the late row's stamp.
            source
                .batch_execute(
                    "UPDATE sales_order SET units_sold = units_sold + 1, last_updated = now() WHERE sales_order_id = 7",
                )
                .await
                .expect("later change");
        }

        let extracted =
            extract_fn.handle(serde_json::from_value(scheduled.clone()).expect("event")).await.expect("extract");
        let event =
            s3_event(&ingestion_bucket, &[full_key(&ingestion_location, extracted["manifest"].as_str().expect("key"))]);
        ingestion_events.push(event.clone());
        let transformed = transform_fn.handle(event).await.expect("transform");
        for run in transformed["runs"].as_array().expect("runs") {
            let event =
                s3_event(&processed_bucket, &[full_key(&processed_location, run["manifest"].as_str().expect("key"))]);
            processed_events.push(event.clone());
            load_fn.handle(event).await.expect("load");
        }

        // What the source held when the run read it (the late writer's rows are still invisible).
        for (i, (_, from_source, _)) in SOURCE_FACTS.iter().enumerate() {
            expected_facts[i].extend(set_of(&source, from_source).await);
        }
        if round == 2
            && let Some(writer) = late.take()
        {
            writer.batch_execute("COMMIT").await.expect("late commit");
        }
    }

    let warehouse_client = warehouse.connect().await;
    for ((table, _, from_warehouse), expected) in SOURCE_FACTS.iter().zip(&expected_facts) {
        let actual = set_of(&warehouse_client, from_warehouse).await;
        let missing: Vec<_> = expected.difference(&actual).take(3).collect();
        let extra: Vec<_> = actual.difference(expected).take(3).collect();
        assert!(missing.is_empty() && extra.is_empty(), "{table}: missing {missing:?}, unexpected {extra:?}");
        let rows: i64 =
            warehouse_client.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.expect("count").get(0);
        assert_eq!(rows as usize, actual.len(), "{table}: no version twice");
    }
    let late_rows: i64 = warehouse_client
        .query_one("SELECT count(*) FROM fact_sales_order WHERE units_sold = 4242", &[])
        .await
        .expect("late")
        .get(0);
    assert_eq!(late_rows, 1, "the late commit arrived exactly once");
    for (table, from_source, from_warehouse) in SOURCE_DIMS {
        assert_eq!(set_of(&warehouse_client, from_warehouse).await, set_of(&source, from_source).await, "{table}");
    }
    let incremental = warehouse_dump(&warehouse_client).await;

    // The same runs, every event delivered twice, in a shuffled order, into fresh buckets.
    let (_, processed_b) = s3_bucket("e2e-out-b").await;
    let warehouse_b = TestDb::create("e2e_wh_b").await;
    let transform_b = TransformFunction { ingestion: ingestion.clone(), processed: processed_b.clone() };
    let load_b = LoadFunction::new(DbTarget::Url(warehouse_b.url.clone().into()), processed_b.clone());
    let mut shuffled: Vec<_> = ingestion_events.iter().chain(&ingestion_events).cloned().collect();
    shuffled.shuffle(&mut rng);
    for event in shuffled {
        transform_b.handle(event).await.expect("transform b");
    }
    let mut loads: Vec<_> = processed_events.iter().chain(&processed_events).cloned().collect();
    loads.shuffle(&mut rng);
    for event in loads {
        // The events name the first processed bucket; keys (and run ids) are the same in both.
        load_b.handle(rebucket(&event, &processed_b)).await.expect("load b");
    }
    assert_eq!(warehouse_dump(&warehouse_b.connect().await).await, incremental, "same warehouse whatever the order");

    // Backfill: an empty warehouse rebuilt from the ingestion bucket alone.
    let (_, processed_c) = s3_bucket("e2e-out-c").await;
    let warehouse_c = TestDb::create("e2e_wh_c").await;
    let mut client_c = warehouse_c.connect().await;
    let (transformed, loaded) =
        ops::backfill(ingestion.as_ref(), processed_c.as_ref(), &mut client_c, |_, _, _| {}).await.expect("backfill");
    assert_eq!((transformed.len(), loaded.len()), (6, 6));
    assert_eq!(warehouse_dump(&client_c).await, incremental, "backfill equals the incremental history");
}

/// The same S3 event, pointed at another processed bucket (same keys: run ids are shared).
fn rebucket(event: &aws_lambda_events::event::s3::S3Event, store: &Store) -> aws_lambda_events::event::s3::S3Event {
    let location = store.location();
    let bucket = location.trim_start_matches("s3://").split('/').next().unwrap_or_default().to_string();
    let mut event = event.clone();
    for record in &mut event.records {
        record.s3.bucket.name = Some(bucket.clone());
    }
    event
}

/// Issue #13 item 1: with no reserved concurrency, Lambda may run two transforms or two loads at
/// once for the same run (a duplicate S3 notification, or a later run's event that also picks up
/// the earlier pending runs). Exercises the two races directly:
/// - two `TransformFunction::handle` calls on the same S3 event, and then two
///   `transform::transform_pending` calls over all pending runs, under `tokio::join!` on a
///   multi-threaded runtime: both write the same immutable keys (Parquet parts, reference state,
///   quarantine object, processed manifest) through `ObjectStore::put`'s If-None-Match semantics,
///   so identical bytes must succeed and nothing may produce different bytes for a key;
/// - two `LoadFunction::handle` calls (each with its own warehouse connection) on the same
///   processed event, and two `load::load_pending` over all runs on separate connections: the
///   per-run advisory lock and the ledger must make one of them a no-op.
///
/// The warehouse must then equal the one a single sequential pass builds from the same ingestion
/// bucket (`warehouse_dump`), the processed bucket must hold the same keys with the same bytes as
/// that pass's (observed: both concurrent transforms write every run, so each put of the second
/// meets an existing identical object), and every call must succeed (a failed duplicate would be retried
/// and reach the dead-letter queue after the retries).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transforms_and_loads_of_the_same_runs_are_exactly_once() {
    let source_db = TestDb::seeded("conc").await;
    let mut source = source_db.connect().await;
    let (ingestion_location, ingestion) = s3_bucket("conc-in").await;
    let (processed_location, processed) = s3_bucket("conc-out").await;
    let warehouse = TestDb::create("conc_wh").await;
    let (ingestion_bucket, _) = bucket_of(&ingestion_location);
    let (processed_bucket, _) = bucket_of(&processed_location);

    // Two handlers of each stage, as two Lambda instances: separate connections to the warehouse.
    let transform_1 = TransformFunction { ingestion: ingestion.clone(), processed: processed.clone() };
    let transform_2 = TransformFunction { ingestion: ingestion.clone(), processed: processed.clone() };
    let load_1 = LoadFunction::new(DbTarget::Url(warehouse.url.clone().into()), processed.clone());
    let load_2 = LoadFunction::new(DbTarget::Url(warehouse.url.clone().into()), processed.clone());

    let mut run_ids = Vec::new();
    for round in 0..3u64 {
        if round > 0 {
            let options = simulate::SimulateOptions { minutes: 15, seed: round, with_reference_changes: round == 2 };
            simulate::simulate(&mut source, &options).await.expect("simulate");
        }
        let extracted = onyx_core::extract::run(&mut source, ingestion.as_ref(), &ExtractOptions::default())
            .await
            .expect("extract");
        let run_id = extracted.manifest.run_id.clone();
        let event = s3_event(&ingestion_bucket, &[full_key(&ingestion_location, &onyx_core::keys::manifest(&run_id))]);
        let (a, b) = tokio::join!(transform_1.handle(event.clone()), transform_2.handle(event));
        let (a, b) = (a.expect("first concurrent transform"), b.expect("second concurrent transform"));
        let transformed: usize = [&a, &b].iter().map(|r| r["runs"].as_array().expect("runs").len()).sum();
        assert!(transformed >= 1, "round {round}: at least one transform did the run: {a} {b}");
        // 2: both wrote the run's objects (identical bytes through If-None-Match); 1: one saw it done.
        eprintln!("round {round}: {transformed} of the two concurrent transforms wrote the run");

        let event = s3_event(&processed_bucket, &[full_key(&processed_location, &onyx_core::keys::manifest(&run_id))]);
        let (a, b) = tokio::join!(load_1.handle(event.clone()), load_2.handle(event));
        let (a, b) = (a.expect("first concurrent load"), b.expect("second concurrent load"));
        let loaded: usize = [&a, &b].iter().map(|r| r["runs"].as_array().expect("runs").len()).sum();
        assert_eq!(loaded, 1, "round {round}: exactly one of the two loads loaded the run: {a} {b}");
        run_ids.push(run_id);
    }
    let concurrent = warehouse_dump(&warehouse.connect().await).await;

    // A single sequential pass over the same ingestion bucket.
    let (_, processed_seq) = s3_bucket("conc-out-seq").await;
    let warehouse_seq = TestDb::create("conc_wh_seq").await;
    let mut client_seq = warehouse_seq.connect().await;
    onyx_core::transform::transform_pending(ingestion.as_ref(), processed_seq.as_ref(), None).await.expect("transform");
    onyx_core::load::migrate(&mut client_seq).await.expect("migrate");
    onyx_core::load::load_pending(&mut client_seq, processed_seq.as_ref(), None, &Default::default())
        .await
        .expect("load");
    let sequential = warehouse_dump(&client_seq).await;
    assert!(sequential.values().any(|rows| !rows.is_empty()), "the sequential pass loaded rows");
    assert_eq!(concurrent, sequential, "concurrent handlers give the sequential warehouse");
    // No put produced other bytes than the sequential pass: same keys, same contents.
    let keys = processed.list("", None).await.expect("list");
    assert_eq!(keys, processed_seq.list("", None).await.expect("list"), "same processed objects");
    for key in &keys {
        let (a, b) = (processed.get(key).await.expect("get"), processed_seq.get(key).await.expect("get"));
        assert!(a == b, "{key}: the concurrent transforms wrote other bytes than a sequential one");
    }

    // All three runs pending at once: two transform_pending and two load_pending race over every run.
    let (_, processed_all) = s3_bucket("conc-out-all").await;
    let warehouse_all = TestDb::create("conc_wh_all").await;
    let (mut client_a, mut client_b) = (warehouse_all.connect().await, warehouse_all.connect().await);
    onyx_core::load::migrate(&mut client_a).await.expect("migrate");
    let (a, b) = tokio::join!(
        onyx_core::transform::transform_pending(ingestion.as_ref(), processed_all.as_ref(), None),
        onyx_core::transform::transform_pending(ingestion.as_ref(), processed_all.as_ref(), None),
    );
    let (a, b) = (a.expect("first transform_pending"), b.expect("second transform_pending"));
    assert!(a.len() + b.len() >= run_ids.len(), "every run was transformed by one of them");
    eprintln!("transform_pending race: the two wrote {} and {} runs", a.len(), b.len());
    let options = onyx_core::load::LoadOptions::default();
    let (a, b) = tokio::join!(
        onyx_core::load::load_pending(&mut client_a, processed_all.as_ref(), None, &options),
        onyx_core::load::load_pending(&mut client_b, processed_all.as_ref(), None, &options),
    );
    let (a, b) = (a.expect("first load_pending"), b.expect("second load_pending"));
    let mut loaded: Vec<String> = a.iter().chain(&b).map(|r| r.run_id.clone()).collect();
    loaded.sort();
    assert_eq!(loaded, run_ids, "each run loaded exactly once between the two");
    assert_eq!(warehouse_dump(&client_a).await, sequential, "racing *_pending give the sequential warehouse");
}
