//! Load stage and the warehouse. Invariants 1 and 2 end to end, 5 (exact values), 6 (atomic
//! loads) and 9's premise (replays change nothing).

use onyx_core::handlers::LoadFunction;
use onyx_core::load::{self, LoadError, LoadOptions};
use onyx_core::tokio_postgres::Client;
use onyx_core::{db::DbTarget, keys, transform};

use crate::support::{
    TestDb, bucket_of, count, local_dir, run_pipeline, s3_bucket, s3_event, warehouse_db, warehouse_dump,
};

async fn texts(client: &Client, sql: &str) -> Vec<String> {
    client.query(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn real_sample_end_to_end_equals_a_sql_reconstruction_of_the_source() {
    let source_db = TestDb::seeded("ld_full").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("ld-full-in");
    let (_, processed, _) = local_dir("ld-full-out");
    let (_, mut warehouse) = warehouse_db("ld_full_wh").await;
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;

    for (table, rows) in crate::support::SAMPLE_WAREHOUSE_ROWS {
        assert_eq!(count(&warehouse, &format!("SELECT count(*) FROM {table}")).await, rows as i64, "{table}");
    }
    // Every date a fact refers to is in dim_date (the foreign keys hold; check them explicitly).
    let missing_dates = count(
        &warehouse,
        "SELECT count(*) FROM fact_payment p WHERE NOT EXISTS (SELECT 1 FROM dim_date d WHERE d.date_id = p.payment_date)",
    )
    .await;
    assert_eq!(missing_dates, 0);
    let invalid_constraints =
        count(&warehouse, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated").await;
    assert_eq!(invalid_constraints, 0);

    let pairs = [
        (
            "SELECT (c.counterparty_id, c.counterparty_legal_name, a.address_line_1, a.address_line_2, a.district, a.city,
                     a.postal_code, a.country, a.phone)::text
             FROM counterparty c JOIN address a ON a.address_id = c.legal_address_id ORDER BY c.counterparty_id",
            "SELECT (counterparty_id, counterparty_legal_name, counterparty_legal_address_line_1,
                     counterparty_legal_address_line_2, counterparty_legal_district, counterparty_legal_city,
                     counterparty_legal_postal_code, counterparty_legal_country, counterparty_legal_phone_number)::text
             FROM dim_counterparty ORDER BY counterparty_id",
        ),
        (
            "SELECT (s.staff_id, s.first_name, s.last_name, d.department_name, d.location, s.email_address)::text
             FROM staff s JOIN department d USING (department_id) ORDER BY s.staff_id",
            "SELECT (staff_id, first_name, last_name, department_name, location, email_address)::text
             FROM dim_staff ORDER BY staff_id",
        ),
        (
            "SELECT (payment_id, created_at::date, created_at::time, last_updated::date, last_updated::time,
                     transaction_id, counterparty_id, payment_amount, currency_id, payment_type_id, paid,
                     payment_date::date)::text
             FROM payment ORDER BY payment_id",
            "SELECT (payment_id, created_date, created_time, last_updated_date, last_updated_time, transaction_id,
                     counterparty_id, payment_amount, currency_id, payment_type_id, paid, payment_date)::text
             FROM fact_payment ORDER BY payment_id",
        ),
        (
            "SELECT (sales_order_id, created_at::date, created_at::time, staff_id, unit_price, units_sold,
                     agreed_payment_date::date, agreed_delivery_date::date)::text
             FROM sales_order ORDER BY sales_order_id",
            "SELECT (sales_order_id, created_date, created_time, sales_staff_id, unit_price, units_sold,
                     agreed_payment_date, agreed_delivery_date)::text
             FROM fact_sales_order ORDER BY sales_order_id",
        ),
    ];
    for (from_source, from_warehouse) in pairs {
        let expected = texts(&source, from_source).await;
        let actual = texts(&warehouse, from_warehouse).await;
        assert_eq!(expected.len(), actual.len(), "{from_warehouse}");
        for (e, a) in expected.iter().zip(&actual) {
            assert_eq!(e, a, "cell for cell: {from_warehouse}");
        }
    }
    // A .186 millisecond and an exact amount, as a BI user would query them.
    let row = warehouse
        .query_one("SELECT created_time::text, payment_amount::text FROM fact_payment WHERE payment_id = 1", &[])
        .await
        .expect("payment 1");
    assert_eq!((row.get::<_, String>(0), row.get::<_, String>(1)), ("14:20:52.186".into(), "56925.44".into()));
}

#[tokio::test]
async fn payment_history_is_kept_and_reference_changes_update_dimensions_in_place() {
    let source_db = TestDb::seeded("ld_hist").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("ld-hist-in");
    let (_, processed, _) = local_dir("ld-hist-out");
    let (_, mut warehouse) = warehouse_db("ld_hist_wh").await;
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    let dims_before: Vec<String> = texts(&warehouse, "SELECT (d.*)::text FROM dim_counterparty d ORDER BY 1").await;

    let unpaid: Vec<i32> = source
        .query("SELECT payment_id FROM payment WHERE NOT paid ORDER BY payment_id LIMIT 25", &[])
        .await
        .expect("unpaid")
        .iter()
        .map(|r| r.get(0))
        .collect();
    source
        .execute("UPDATE payment SET paid = true, last_updated = now() WHERE payment_id = ANY($1)", &[&unpaid])
        .await
        .expect("mark paid");
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;

    let versions = count(&warehouse, "SELECT count(*) FROM fact_payment").await;
    assert_eq!(versions, 15_836 + 25, "one new fact row per paid payment");
    let rows = warehouse
        .query(
            "SELECT payment_id, count(*), bool_or(paid) AND NOT bool_and(paid)
             FROM fact_payment WHERE payment_id = ANY($1) GROUP BY payment_id",
            &[&unpaid],
        )
        .await
        .expect("history");
    assert_eq!(rows.len(), 25);
    assert!(rows.iter().all(|r| r.get::<_, i64>(1) == 2 && r.get::<_, bool>(2)), "an unpaid and a paid version each");
    let current_paid =
        warehouse.query("SELECT bool_and(paid) FROM fact_payment_current WHERE payment_id = ANY($1)", &[&unpaid]).await;
    assert!(current_paid.expect("current")[0].get::<_, bool>(0), "the _current view shows them paid");
    assert_eq!(count(&warehouse, "SELECT count(*) FROM fact_payment_current").await, 15_836);
    assert_eq!(texts(&warehouse, "SELECT (d.*)::text FROM dim_counterparty d ORDER BY 1").await, dims_before);

    // A department moves: its staff rows change in place (no new rows).
    source
        .batch_execute(
            "UPDATE department SET location = 'Leeds', last_updated = now() WHERE department_name = 'Dispatch'",
        )
        .await
        .expect("move");
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    assert_eq!(count(&warehouse, "SELECT count(*) FROM dim_staff").await, 20);
    assert_eq!(
        count(&warehouse, "SELECT count(*) FROM dim_staff WHERE department_name = 'Dispatch' AND location <> 'Leeds'")
            .await,
        0
    );
    assert!(count(&warehouse, "SELECT count(*) FROM dim_staff WHERE location = 'Leeds'").await > 0);
    assert_eq!(count(&warehouse, "SELECT count(*) FROM onyx_load_ledger").await, 3);
}

/// `load_pending` with a target run loads the missing earlier runs first: a later run's load
/// event delivered before an earlier one's loads both, each once, in run order, and gives the
/// same warehouse as in-order delivery; replays of loaded runs change nothing.
#[tokio::test]
async fn replays_and_out_of_order_loads_leave_the_warehouse_unchanged() {
    let source_db = TestDb::seeded("ld_replay").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("ld-replay-in");
    let (_, processed, _) = local_dir("ld-replay-out");
    let (_, mut warehouse) = warehouse_db("ld_replay_wh").await;
    let first = run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    source
        .batch_execute("UPDATE payment SET paid = true, last_updated = now() WHERE payment_id = 2")
        .await
        .expect("change");
    let second = run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    let before = warehouse_dump(&warehouse).await;

    for run in [&second, &first, &second] {
        let loaded = load::load_pending(&mut warehouse, processed.as_ref(), Some(run), &LoadOptions::default()).await;
        assert!(loaded.expect("replay").is_empty(), "{run} is already loaded");
        assert!(
            load::load_run(&mut warehouse, processed.as_ref(), run, &LoadOptions::default())
                .await
                .expect("run")
                .is_none()
        );
    }
    assert_eq!(warehouse_dump(&warehouse).await, before);
    assert_eq!(count(&warehouse, "SELECT count(*) FROM onyx_load_ledger").await, 2);

    // Two new runs, extracted and transformed but not loaded; the later one's event comes first.
    let mut new_runs = Vec::new();
    for change in [
        "UPDATE payment SET paid = true, last_updated = now() WHERE payment_id = 4",
        "UPDATE payment SET paid = false, last_updated = now() WHERE payment_id = 4;
         UPDATE design SET design_name = 'Renamed', last_updated = now() WHERE design_id = 8",
    ] {
        source.batch_execute(change).await.expect("change");
        let extracted = onyx_core::extract::run(&mut source, ingestion.as_ref(), &Default::default()).await;
        new_runs.push(extracted.expect("extract").manifest.run_id);
        transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    }
    let (third, fourth) = (&new_runs[0], &new_runs[1]);
    assert!(third < fourth);
    let loaded = load::load_pending(&mut warehouse, processed.as_ref(), Some(fourth), &LoadOptions::default())
        .await
        .expect("the later run's event");
    let order: Vec<&str> = loaded.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(order, [third.as_str(), fourth.as_str()], "the earlier run is loaded first");
    let late = load::load_pending(&mut warehouse, processed.as_ref(), Some(third), &LoadOptions::default()).await;
    assert!(late.expect("the earlier run's late event").is_empty(), "already loaded: a no-op");
    let ledger = texts(&warehouse, "SELECT run_id FROM onyx_load_ledger ORDER BY loaded_at, run_id").await;
    assert_eq!(ledger, [&first, &second, third, fourth].map(String::as_str), "each run once, in run order");
    assert_eq!(count(&warehouse, "SELECT count(*) FROM fact_payment WHERE payment_id = 4").await, 3);

    // The same runs delivered in order to a fresh warehouse give the same warehouse.
    let (_, mut in_order) = warehouse_db("ld_replay_wh2").await;
    for run in [&first, &second, third, fourth] {
        let loaded = load::load_pending(&mut in_order, processed.as_ref(), Some(run), &LoadOptions::default()).await;
        assert_eq!(loaded.expect("in order").len(), 1, "{run}");
    }
    assert_eq!(warehouse_dump(&warehouse).await, warehouse_dump(&in_order).await);
    assert_eq!(texts(&in_order, "SELECT run_id FROM onyx_load_ledger ORDER BY loaded_at, run_id").await, ledger);
}

#[tokio::test]
async fn a_crash_mid_load_commits_nothing_and_the_rerun_loads_exactly_once() {
    let source_db = TestDb::seeded("ld_crash").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("ld-crash-in");
    let (_, processed, _) = local_dir("ld-crash-out");
    let (warehouse_db_handle, mut warehouse) = warehouse_db("ld_crash_wh").await;
    onyx_core::extract::run(&mut source, ingestion.as_ref(), &Default::default()).await.expect("extract");
    transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");

    // Fail after four tables were staged and merged, inside the run's transaction.
    let crash = LoadOptions { fail_after_staged_tables: Some(4) };
    let error = load::load_pending(&mut warehouse, processed.as_ref(), None, &crash).await.expect_err("crash");
    assert!(error.to_string().contains("injected failure"), "{error}");
    let empty = warehouse_dump(&warehouse).await;
    assert!(empty.values().all(Vec::is_empty), "nothing committed");
    assert_eq!(count(&warehouse, "SELECT count(*) FROM onyx_load_ledger").await, 0);

    // The connection is killed while a load transaction is open: same outcome.
    let pid: i32 = warehouse.query_one("SELECT pg_backend_pid()", &[]).await.expect("pid").get(0);
    let killer = warehouse_db_handle.connect().await;
    let defaults = LoadOptions::default();
    let load = load::load_pending(&mut warehouse, processed.as_ref(), None, &defaults);
    let kill = async {
        // Wait until the load is inside its transaction (it holds the load lock), then kill it.
        loop {
            let busy: i64 = killer
                .query_one("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1", &[&pid])
                .await
                .expect("locks")
                .get(0);
            if busy > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        killer.execute("SELECT pg_terminate_backend($1)", &[&pid]).await.expect("terminate");
    };
    let (loaded, ()) = tokio::join!(load, kill);
    let error = loaded.expect_err("the killed load fails");
    assert!(error.is_retryable(), "a lost connection is worth a retry: {error}");
    let after_kill = warehouse_dump(&killer).await;
    assert!(after_kill.values().all(Vec::is_empty), "nothing committed");

    // The retry (a new connection, as a retried Lambda would make) loads exactly once.
    let mut retry = warehouse_db_handle.connect().await;
    let loaded =
        load::load_pending(&mut retry, processed.as_ref(), None, &LoadOptions::default()).await.expect("rerun");
    assert_eq!(loaded.len(), 1);
    assert!(
        load::load_pending(&mut retry, processed.as_ref(), None, &LoadOptions::default())
            .await
            .expect("again")
            .is_empty()
    );
    assert_eq!(count(&retry, "SELECT count(*) FROM fact_payment").await, 15_836);
    assert_eq!(count(&retry, "SELECT count(*) FROM onyx_load_ledger").await, 1);
}

#[tokio::test]
async fn migrations_are_idempotent_upgrade_older_warehouses_and_match_the_descriptions() {
    let db = TestDb::create("ld_migrate").await;
    let mut client = db.connect().await;
    load::migrate_to(&mut client, 1).await.expect("V1 only");
    assert_eq!(count(&client, "SELECT count(*) FROM pg_views WHERE viewname = 'fact_payment_current'").await, 0);
    // A fact row loaded before migration 3: milliseconds, no version order.
    client
        .batch_execute(
            "INSERT INTO dim_date (date_id, year, month, day, day_of_week, day_name, month_name, quarter)
                 VALUES ('2022-11-03', 2022, 11, 3, 4, 'Thursday', 'November', 4);
             INSERT INTO dim_transaction VALUES (1, 'SALE', 1, NULL);
             INSERT INTO dim_counterparty VALUES (1, 'C', 'a', NULL, NULL, 'c', 'p', 'UK', '1');
             INSERT INTO dim_currency VALUES (1, 'GBP', 'Pound Sterling');
             INSERT INTO dim_payment_type VALUES (1, 'SALES_RECEIPT');
             INSERT INTO fact_payment (payment_id, created_date, created_time, last_updated_date, last_updated_time,
                 transaction_id, counterparty_id, payment_amount, currency_id, payment_type_id, paid, payment_date)
                 VALUES (1, '2022-11-03', '14:20:52.186', '2022-11-03', '14:20:52.186', 1, 1, 1.00, 1, 1, true, '2022-11-03');",
        )
        .await
        .expect("a V1 row");
    let applied = load::migrate(&mut client).await.expect("upgrade");
    assert_eq!(applied.len(), 5, "V2 to V6 are applied: {applied:?}");
    let old_row =
        texts(&client, "SELECT created_time::text || ' ' || version_order || '|' FROM fact_payment_current").await;
    assert_eq!(
        old_row,
        [String::from("14:20:52.186 0:0000000001|")],
        "the V1 row survives, numbered below any run's version"
    );
    let version_keys = texts(
        &client,
        "SELECT conrelid::regclass::text || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
         WHERE contype = 'u' AND conrelid::regclass::text LIKE 'fact\\_%' ORDER BY 1",
    )
    .await;
    assert_eq!(
        version_keys,
        [
            "fact_payment UNIQUE (payment_id, version_order)",
            "fact_purchase_order UNIQUE (purchase_order_id, version_order)",
            "fact_sales_order UNIQUE (sales_order_id, version_order)"
        ],
        "a version is its id and version order (schema version 5)"
    );
    let precision = texts(
        &client,
        "SELECT DISTINCT table_name || '.' || column_name || ' ' || datetime_precision FROM information_schema.columns
         WHERE column_name LIKE '%\\_time' AND table_name LIKE 'fact\\_%' AND table_schema = current_schema() ORDER BY 1",
    )
    .await;
    assert_eq!(precision.len(), 12, "tables and their *_current views: {precision:?}");
    assert!(precision.iter().all(|p| p.ends_with(" 6")), "microseconds: {precision:?}");
    assert_eq!(count(&client, "SELECT count(*) FROM pg_views WHERE viewname = 'fact_payment_current'").await, 1);
    assert!(load::migrate(&mut client).await.expect("again").is_empty(), "a second run applies nothing");

    // The migrated schema is the one the descriptions give: names, types, nullability, order.
    for table in onyx_core::warehouse::WAREHOUSE_TABLES {
        let actual = texts(
            &client,
            &format!(
                "SELECT column_name || ' ' || CASE WHEN column_default LIKE 'nextval%' THEN 'serial' ELSE data_type END || ' ' || is_nullable
                 FROM information_schema.columns WHERE table_name = '{}' ORDER BY ordinal_position",
                table.name
            ),
        )
        .await;
        let expected: Vec<String> = table
            .all_columns()
            .map(|c| {
                let sql = c.kind.sql_type().to_lowercase();
                let data_type = match sql.split('(').next().unwrap_or_default() {
                    "integer" => "integer",
                    "text" => "text",
                    "numeric" => "numeric",
                    "date" => "date",
                    "time" => "time without time zone",
                    "boolean" => "boolean",
                    "serial" => "serial",
                    "timestamp" => "timestamp without time zone",
                    other => panic!("unexpected type {other}"),
                };
                let nullable = if c.nullable { "YES" } else { "NO" };
                format!("{} {data_type} {nullable}", c.name)
            })
            .collect();
        assert_eq!(actual, expected, "{table}");
    }
}

#[tokio::test]
async fn load_lambda_loads_from_s3_events_and_tolerates_bad_ones() {
    let source_db = TestDb::seeded("ld_lambda").await;
    let mut source = source_db.connect().await;
    let (_, ingestion) = s3_bucket("ld-lambda-in").await;
    let (processed_location, processed) = s3_bucket("ld-lambda-out").await;
    let (bucket, prefix) = bucket_of(&processed_location);
    let warehouse = TestDb::create("ld_lambda_wh").await;
    onyx_core::extract::run(&mut source, ingestion.as_ref(), &Default::default()).await.expect("extract");
    let runs = transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    let run_id = runs[0].manifest.run_id.clone();

    let function = LoadFunction::new(DbTarget::Url(warehouse.url.clone().into()), processed.clone());
    let event = s3_event(&bucket, &[format!("{prefix}{}", keys::manifest(&run_id))]);
    let result = function.handle(event.clone()).await.expect("load");
    assert_eq!(result["runs"][0]["rows"]["fact_payment"], 15_836);
    let replay = function.handle(event).await.expect("replay");
    assert!(replay["runs"].as_array().expect("runs").is_empty());

    // A run after the newest loaded one that has no manifest is unknown (one at or below the
    // ledger's maximum would be "already loaded" and never reach that check).
    let unknown = "20991231T235959999-ffff";
    assert!(unknown > run_id.as_str());
    let mut client = warehouse.connect().await;
    match load::load_pending(&mut client, processed.as_ref(), Some(unknown), &LoadOptions::default()).await {
        Err(LoadError::UnknownRun { run_id, key }) => {
            assert_eq!((run_id.as_str(), key), (unknown, keys::manifest(unknown)))
        }
        other => panic!("expected UnknownRun for {unknown}, got {other:?}"),
    }

    // Not a manifest, an unknown run, no records: logged, never a retry loop.
    let odd = s3_event(
        &bucket,
        &[format!("{prefix}fact_payment/2026/11/28/x.parquet"), format!("{prefix}{}", keys::manifest(unknown))],
    );
    assert!(function.handle(odd).await.expect("ignored")["runs"].as_array().expect("runs").is_empty());
    let none: aws_lambda_events::event::s3::S3Event = serde_json::from_str(r#"{"Records": []}"#).expect("empty event");
    assert!(function.handle(none).await.is_ok());
    assert_eq!(count(&client, "SELECT count(*) FROM fact_payment").await, 15_836);
}

#[tokio::test]
async fn a_fact_with_a_missing_dimension_is_an_error_naming_table_key_and_reference() {
    use onyx_core::transform::{ProcessedManifest, ProcessedTable};
    use onyx_core::values::{Cell, Decimal};
    use onyx_core::warehouse::{FACT_PAYMENT, WAREHOUSE_TABLES};

    let (_, processed, _) = local_dir("ld-missing");
    let (_, mut warehouse) = warehouse_db("ld_missing_wh").await;
    let run_id = "20261128T070000000-0001";
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 28).expect("date");
    let time = chrono::NaiveTime::from_hms_milli_opt(7, 0, 0, 1).expect("time");
    let row = vec![
        Cell::Int(77),
        Cell::Date(date),
        Cell::Time(time),
        Cell::Date(date),
        Cell::Time(time),
        Cell::Int(404),
        Cell::Int(1),
        Cell::Decimal(Decimal::parse("1.00").expect("decimal")),
        Cell::Int(1),
        Cell::Int(1),
        Cell::Bool(false),
        Cell::Date(date),
        Cell::Text(format!("{run_id}:0000000000")),
    ];
    let object = keys::processed_part(FACT_PAYMENT.name, run_id, 0);
    processed.put(&object, onyx_core::frames::to_parquet(&FACT_PAYMENT, &[row]).expect("parquet")).await.expect("put");
    let manifest = ProcessedManifest {
        format: 1,
        run_id: run_id.into(),
        source_manifest: keys::manifest(run_id),
        previous_run_id: None,
        tables: WAREHOUSE_TABLES
            .iter()
            .map(|t| ProcessedTable {
                table: t.name.into(),
                rows: u64::from(t.name == FACT_PAYMENT.name),
                objects: if t.name == FACT_PAYMENT.name { vec![object.clone()] } else { Vec::new() },
            })
            .collect(),
        quarantined_rows: 0,
        quarantine_object: None,
        state_object: keys::state(run_id),
        problem: None,
        ..Default::default()
    };
    processed.put(&keys::manifest(run_id), serde_json::to_vec(&manifest).expect("json")).await.expect("manifest");

    let error = load::load_pending(&mut warehouse, processed.as_ref(), None, &LoadOptions::default())
        .await
        .expect_err("dangling reference");
    let message = error.to_string();
    assert!(message.contains("fact_payment row payment_id=77"), "{message}");
    assert!(message.contains("created_date=2026-11-28") || message.contains("transaction_id=404"), "{message}");
    assert!(message.contains("which is not in dim_"), "{message}");
    assert_eq!(count(&warehouse, "SELECT count(*) FROM fact_payment").await, 0, "nothing loaded");
    assert_eq!(count(&warehouse, "SELECT count(*) FROM onyx_load_ledger").await, 0);
}

/// Decimals are judged and carried by value from source to warehouse: a payment PostgreSQL stores
/// as `1392.9300000000000000` and a 13-place purchase price are not quarantined (the old rule read
/// the scale from the text and kept 12 places), travel in the fixed DECIMAL(38, 18) carrier, and
/// reach the warehouse exactly (`1392.93`); a hand-made run's `3.000` unit price is 3.00.
#[tokio::test]
async fn decimals_reach_the_warehouse_by_value() {
    let source_db = TestDb::seeded("ld_decimal").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("ld-decimal-in");
    let (_, processed, _) = local_dir("ld-decimal-out");
    let (_, mut warehouse) = warehouse_db("ld_decimal_wh").await;
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    source
        .batch_execute(
            "UPDATE payment SET payment_amount = 1234.56 + 15837 / 100.0, last_updated = now() WHERE payment_id = 2;
             UPDATE purchase_order SET item_unit_price = 1.1234567890123, last_updated = now() WHERE purchase_order_id = 1;",
        )
        .await
        .expect("changes");
    let stored = texts(&source, "SELECT payment_amount::text FROM payment WHERE payment_id = 2").await;
    assert_eq!(stored, ["1392.9300000000000000"], "what PostgreSQL stores, and the extract writes");
    let run_id = run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    let manifest: transform::ProcessedManifest =
        serde_json::from_slice(&processed.get(&keys::manifest(&run_id)).await.expect("manifest")).expect("json");
    assert_eq!(manifest.quarantined_rows, 0, "nothing quarantined");
    assert_eq!(
        texts(&warehouse, "SELECT payment_amount::text FROM fact_payment_current WHERE payment_id = 2").await,
        ["1392.93"]
    );
    assert_eq!(
        texts(&warehouse, "SELECT item_unit_price::text FROM fact_purchase_order_current WHERE purchase_order_id = 1")
            .await,
        ["1.1234567890123"]
    );
    assert_eq!(
        texts(&warehouse, "SELECT payment_amount::text FROM fact_payment WHERE payment_id = 1").await,
        ["56925.44"],
        "unchanged amounts keep their two places"
    );

    // A unit price written `3.000` (as `(2.5 * 1.20)::numeric` prints) is 3.00.
    let hand_made = "20991231T235959000-0dec";
    crate::transform::write_run(
        ingestion.as_ref(),
        hand_made,
        &[(
            "sales_order",
            "{\"sales_order_id\": 990001, \"created_at\": \"2026-11-28T07:00:00.000\", \"last_updated\": \"2026-11-28T07:00:00.000\", \"design_id\": 1, \"staff_id\": 1, \"counterparty_id\": 1, \"units_sold\": 5, \"unit_price\": \"3.000\", \"currency_id\": 1, \"agreed_delivery_date\": \"2026-12-01\", \"agreed_payment_date\": \"2026-12-01\", \"agreed_delivery_location_id\": 1}\n",
        )],
    )
    .await;
    let runs = transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    assert_eq!(runs[0].manifest.quarantined_rows, 0, "3.000 fits NUMERIC(10, 2)");
    load::load_pending(&mut warehouse, processed.as_ref(), None, &LoadOptions::default()).await.expect("load");
    assert_eq!(
        texts(&warehouse, "SELECT unit_price::text FROM fact_sales_order WHERE sales_order_id = 990001").await,
        ["3.00"]
    );
}

/// A deterministic database error (here a CHECK constraint the warehouse's fact table has and the
/// run violates, SQLSTATE 23514) keeps its SQLSTATE in `LoadError::Database`, which
/// `is_retryable` classifies as not retryable; the error names the run and the table, and nothing
/// is committed.
#[tokio::test]
async fn a_deterministic_database_error_is_not_retryable_and_names_run_and_table() {
    let source_db = TestDb::seeded("ld_check").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("ld-check-in");
    let (_, processed, _) = local_dir("ld-check-out");
    let (_, mut warehouse) = warehouse_db("ld_check_wh").await;
    let run_id = onyx_core::extract::run(&mut source, ingestion.as_ref(), &Default::default())
        .await
        .expect("extract")
        .manifest
        .run_id;
    transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    warehouse
        .batch_execute("ALTER TABLE fact_payment ADD CONSTRAINT small_payments_only CHECK (payment_amount < 1000)")
        .await
        .expect("constraint");

    let error = load::load_pending(&mut warehouse, processed.as_ref(), None, &LoadOptions::default())
        .await
        .expect_err("the constraint is violated");
    let message = error.to_string();
    assert!(matches!(&error, LoadError::Database { code: Some(code), .. } if code == "23514"), "{error:?}");
    assert!(!error.is_retryable(), "retrying would fail the same way: {message}");
    assert!(message.contains(&run_id) && message.contains("fact_payment"), "{message}");
    assert!(message.contains("small_payments_only"), "{message}");
    assert_eq!(count(&warehouse, "SELECT count(*) FROM onyx_load_ledger").await, 0);
    assert!(warehouse_dump(&warehouse).await.values().all(Vec::is_empty), "nothing committed");
}

/// `db::connect` sets `lock_timeout` and `statement_timeout` on every session (defaults 30 s and
/// 10 min, from `ONYX_DB_LOCK_TIMEOUT_MS` / `ONYX_DB_STATEMENT_TIMEOUT_MS`); a load blocked by a
/// session holding `ACCESS EXCLUSIVE` on `fact_payment` fails after its 500 ms `lock_timeout`
/// (SQLSTATE 55P03) with an error naming the table, the run and the timeout, retryable, and the
/// warehouse is unchanged.
#[tokio::test]
async fn a_load_blocked_by_a_lock_fails_after_lock_timeout_naming_the_table() {
    use std::str::FromStr;

    use onyx_core::db::{self, SessionTimeouts};

    let source_db = TestDb::seeded("ld_lock").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("ld-lock-in");
    let (_, processed, _) = local_dir("ld-lock-out");
    let (warehouse_handle, _) = warehouse_db("ld_lock_wh").await;
    let run_id = onyx_core::extract::run(&mut source, ingestion.as_ref(), &Default::default())
        .await
        .expect("extract")
        .manifest
        .run_id;
    transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");

    // Every session the pipeline opens has both timeouts (the defaults here).
    let pipeline_session =
        DbTarget::Url(warehouse_handle.url.clone().into()).connect("warehouse").await.expect("connect");
    let settings = texts(
        &pipeline_session,
        "SELECT setting FROM pg_settings WHERE name IN ('lock_timeout', 'statement_timeout') ORDER BY name",
    )
    .await;
    assert_eq!(settings, ["30000", "600000"]);

    let config = onyx_core::tokio_postgres::Config::from_str(&warehouse_handle.url).expect("config");
    let timeouts = SessionTimeouts { lock_timeout_ms: 500, statement_timeout_ms: 600_000 };
    let mut loader = db::connect_with_timeouts("warehouse", &config, timeouts).await.expect("connect");
    let bi_session = warehouse_handle.connect().await;
    bi_session.batch_execute("BEGIN; LOCK TABLE fact_payment IN ACCESS EXCLUSIVE MODE").await.expect("lock");

    let started = std::time::Instant::now();
    let defaults = LoadOptions::default();
    let load = load::load_pending(&mut loader, processed.as_ref(), None, &defaults);
    let result = tokio::time::timeout(std::time::Duration::from_secs(30), load).await;
    let error = result.expect("the load gives up instead of waiting for the lock").expect_err("the lock times out");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "quickly: {:?}", started.elapsed());
    let message = error.to_string();
    assert_eq!(
        message,
        format!(
            "lock_timeout of 500 ms exceeded while loading fact_payment (run {run_id}) — another session holds a lock on it"
        )
    );
    assert!(error.is_retryable(), "{message}");

    bi_session.batch_execute("ROLLBACK").await.expect("release");
    assert!(warehouse_dump(&bi_session).await.values().all(Vec::is_empty), "nothing committed");
    assert_eq!(count(&bi_session, "SELECT count(*) FROM onyx_load_ledger").await, 0);
    // The retry, once the lock is gone, loads the run.
    let loaded = load::load_pending(&mut loader, processed.as_ref(), None, &LoadOptions::default()).await;
    assert_eq!(loaded.expect("retry").len(), 1);
}

/// The bulk path (issue #15): a run large against its fact table — the first load — is appended
/// with the table's foreign keys dropped and added back in the same transaction (one set-based
/// validation per key instead of a trigger per row and key); a small incremental run takes the
/// normal path. Every foreign key is there afterwards, identical and validated.
#[tokio::test]
async fn a_first_load_appends_facts_by_the_bulk_path_and_keeps_every_foreign_key() {
    let source_db = TestDb::seeded("ld_bulk").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("ld-bulk-in");
    let (_, processed, _) = local_dir("ld-bulk-out");
    let (_, mut warehouse) = warehouse_db("ld_bulk_wh").await;
    let foreign_keys =
        "SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated
                        FROM pg_constraint WHERE contype = 'f' ORDER BY 1";
    let before = texts(&warehouse, foreign_keys).await;
    assert!(before.len() >= 15, "the facts' foreign keys: {before:#?}");

    onyx_core::extract::run(&mut source, ingestion.as_ref(), &Default::default()).await.expect("extract");
    transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    let first =
        load::load_pending(&mut warehouse, processed.as_ref(), None, &LoadOptions::default()).await.expect("load");
    assert_eq!(
        first[0].bulk_tables,
        ["fact_sales_order", "fact_purchase_order", "fact_payment"].map(String::from).to_vec(),
        "the first load appends every fact table by the bulk path"
    );
    assert_eq!(texts(&warehouse, foreign_keys).await, before, "every foreign key is back, the same and validated");

    source
        .batch_execute("UPDATE payment SET paid = NOT paid, last_updated = LOCALTIMESTAMP WHERE payment_id % 100 = 0")
        .await
        .expect("1% of payments change");
    onyx_core::extract::run(&mut source, ingestion.as_ref(), &Default::default()).await.expect("extract");
    transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    let second =
        load::load_pending(&mut warehouse, processed.as_ref(), None, &LoadOptions::default()).await.expect("load");
    assert!(second[0].bulk_tables.is_empty(), "158 payments into 15,836: the normal path");
    assert_eq!(second[0].rows.get("fact_payment"), Some(&158));
    assert_eq!(texts(&warehouse, foreign_keys).await, before);
}

/// On the bulk path the re-added foreign keys stand in for the loader's reference check: a
/// staged fact naming a missing dimension row (here a trigger keeps one design out of
/// dim_design) fails the key's validation, the load rolls back to before the merge and the
/// loader's own check names the row, the column and the value; nothing of the run is loaded and
/// every key is back.
#[tokio::test]
async fn a_missing_reference_on_the_bulk_path_names_the_row_and_loads_nothing() {
    let source_db = TestDb::seeded("ld_bulk_missing").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("ld-bulk-missing-in");
    let (_, processed, _) = local_dir("ld-bulk-missing-out");
    let (_, mut warehouse) = warehouse_db("ld_bulk_missing_wh").await;
    let foreign_keys = "SELECT conrelid::regclass::text || ' ' || conname || ' ' || convalidated
                        FROM pg_constraint WHERE contype = 'f' ORDER BY 1";
    let keys_before = texts(&warehouse, foreign_keys).await;
    let design: i32 = source
        .query_one("SELECT design_id FROM sales_order ORDER BY sales_order_id LIMIT 1", &[])
        .await
        .expect("a design that is sold")
        .get(0);
    warehouse
        .batch_execute(&format!(
            "CREATE FUNCTION keep_out() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN IF NEW.design_id = {design} THEN RETURN NULL; END IF; RETURN NEW; END $$;
             CREATE TRIGGER keep_out BEFORE INSERT ON dim_design FOR EACH ROW EXECUTE FUNCTION keep_out();"
        ))
        .await
        .expect("a dimension row goes missing");

    onyx_core::extract::run(&mut source, ingestion.as_ref(), &Default::default()).await.expect("extract");
    transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    let error = load::load_pending(&mut warehouse, processed.as_ref(), None, &LoadOptions::default())
        .await
        .expect_err("a fact names a design the warehouse does not have");
    match &error {
        LoadError::MissingReference { table, column, value, references, .. } => {
            assert_eq!((*table, *column, *references), ("fact_sales_order", "design_id", "dim_design"), "{error}");
            assert_eq!(value, &design.to_string());
        }
        other => panic!("expected the loader's missing-reference error, got {other:?}"),
    }
    assert!(!error.is_retryable());
    assert_eq!(count(&warehouse, "SELECT count(*) FROM fact_sales_order").await, 0, "nothing of the run");
    assert_eq!(count(&warehouse, "SELECT count(*) FROM onyx_load_ledger").await, 0);
    assert_eq!(texts(&warehouse, foreign_keys).await, keys_before, "every key is back");
}

/// A bulk-sized run of new versions with the stamps of loaded ones (2,000 payments updated
/// without touching `last_updated`) is appended on the bulk path — every committed version is a
/// row (schema version 5) and the new ones are current; the same 2,000 rewritten with identical
/// content add nothing (`fact_append_sql` skips a version equal to the one before it).
#[tokio::test]
async fn new_versions_are_appended_on_the_bulk_path_and_identical_ones_skipped() {
    let source_db = TestDb::seeded("ld_bulk_again").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("ld-bulk-again-in");
    let (_, processed, _) = local_dir("ld-bulk-again-out");
    let (_, mut warehouse) = warehouse_db("ld_bulk_again_wh").await;
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    let payments = count(&warehouse, "SELECT count(*) FROM fact_payment").await;

    source
        .batch_execute("UPDATE payment SET paid = NOT paid WHERE payment_id <= 2000")
        .await
        .expect("2,000 payments change, last_updated kept");
    onyx_core::extract::run(&mut source, ingestion.as_ref(), &Default::default()).await.expect("extract");
    transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    let loaded =
        load::load_pending(&mut warehouse, processed.as_ref(), None, &LoadOptions::default()).await.expect("load");
    assert_eq!(loaded[0].bulk_tables, ["fact_payment"], "2,000 of 15,836 payments: the bulk path");
    assert_eq!(loaded[0].rows.get("fact_payment"), Some(&2000));
    assert_eq!(count(&warehouse, "SELECT count(*) FROM fact_payment").await, payments + 2000, "appended");
    let source_paid =
        texts(&source, "SELECT payment_id || ' ' || paid FROM payment WHERE payment_id <= 2000 ORDER BY payment_id")
            .await;
    let warehouse_paid = texts(
        &warehouse,
        "SELECT payment_id || ' ' || paid FROM fact_payment_current WHERE payment_id <= 2000 ORDER BY payment_id",
    )
    .await;
    assert_eq!(warehouse_paid, source_paid, "the new versions are current");

    source.batch_execute("UPDATE payment SET paid = paid WHERE payment_id <= 2000").await.expect("same content");
    onyx_core::extract::run(&mut source, ingestion.as_ref(), &Default::default()).await.expect("extract");
    transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    let loaded =
        load::load_pending(&mut warehouse, processed.as_ref(), None, &LoadOptions::default()).await.expect("load");
    assert_eq!(loaded[0].bulk_tables, ["fact_payment"]);
    assert_eq!(loaded[0].rows.get("fact_payment"), Some(&0), "identical versions add nothing");
    assert_eq!(count(&warehouse, "SELECT count(*) FROM fact_payment").await, payments + 2000);
}

/// The description (`COMMENT ON COLUMN`) of `relation.column`.
async fn described(client: &Client, relation: &str, column: &str) -> Option<String> {
    let sql = "SELECT col_description(c.oid, a.attnum) FROM pg_class c
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $2
               WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace";
    let row = client.query_one(sql, &[&relation, &column]).await.unwrap_or_else(|e| panic!("{relation}.{column}: {e}"));
    row.get(0)
}

/// Issue #25 (column descriptions). Mechanism: `load::migrate`'s `describe` (`COMMENT ON` from the
/// descriptions in warehouse.rs, only where they differ). Every warehouse table and column, and
/// the columns of the facts' `*_current` views, carry their description, so psql's `\d+`, Power BI
/// and DBeaver show it; a read-only login sees them too. On main no column had a description
/// (`col_description` was NULL for all of them).
#[tokio::test]
async fn every_warehouse_table_and_column_carries_its_description() {
    let (_db, mut warehouse) = warehouse_db("described").await;
    for table in onyx_core::warehouse::WAREHOUSE_TABLES {
        assert!(!table.description.is_empty(), "{} has a description", table.name);
        let comment: Option<String> = warehouse
            .query_one("SELECT obj_description(to_regclass($1), 'pg_class')", &[&table.name])
            .await
            .expect("table comment")
            .get(0);
        assert_eq!(comment.as_deref(), Some(table.description), "{}", table.name);
        for column in table.all_columns() {
            assert!(!column.description.is_empty(), "{}.{} has a description", table.name, column.name);
            assert_eq!(described(&warehouse, table.name, column.name).await.as_deref(), Some(column.description));
        }
        if table.is_fact() {
            let view = format!("{}_current", table.name);
            let key = described(&warehouse, &view, table.key).await;
            assert!(key.is_some_and(|d| !d.is_empty()), "{view}.{} is described", table.key);
        }
    }
    // Idempotent: a second migrate changes nothing and keeps them.
    onyx_core::load::migrate(&mut warehouse).await.expect("migrate again");
    let units = described(&warehouse, "fact_sales_order", "units_sold").await;
    assert_eq!(units.as_deref(), Some("Number of totes ordered."));
}
