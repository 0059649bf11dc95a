//! Transform stage: ingestion runs → star-schema Parquet. Invariants 2 (replays change nothing),
//! 3 (immutable, deterministic objects), 5 (exact values) and 7 (bad input is contained).

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Mutex;

use async_trait::async_trait;

use onyx_core::extract::{self, ExtractOptions};
use onyx_core::frames;
use onyx_core::handlers::TransformFunction;
use onyx_core::keys;
use onyx_core::storage::{ObjectStore, StorageError, Store};
use onyx_core::transform::{self, ProcessedManifest, Quarantined};
use onyx_core::values::Cell;
use onyx_core::warehouse::{self, WarehouseTable};

use crate::support::{TestDb, bucket_of, local_dir, s3_bucket, s3_event};

async fn processed_manifest(store: &dyn ObjectStore, run_id: &str) -> ProcessedManifest {
    serde_json::from_slice(&store.get(&keys::manifest(run_id)).await.expect("processed manifest")).expect("parse")
}

/// The rows a run wrote for a warehouse table.
async fn table_rows(store: &dyn ObjectStore, run_id: &str, table: &'static WarehouseTable) -> Vec<Vec<Cell>> {
    let manifest = processed_manifest(store, run_id).await;
    let entry = manifest.tables.iter().find(|t| t.table == table.name).expect("table listed");
    let mut rows = Vec::new();
    for key in &entry.objects {
        rows.extend(frames::from_parquet(table, store.get(key).await.expect("object")).expect("parquet"));
    }
    assert_eq!(rows.len() as u64, entry.rows, "{table}: manifest count equals the rows in its parts");
    rows
}

fn by_key(rows: Vec<Vec<Cell>>) -> BTreeMap<i32, Vec<Cell>> {
    rows.into_iter().map(|r| (if let Cell::Int(id) = r[0] { id } else { panic!("int key") }, r)).collect()
}

async fn quarantine(store: &dyn ObjectStore, run_id: &str) -> Vec<Quarantined> {
    let manifest = processed_manifest(store, run_id).await;
    let Some(key) = manifest.quarantine_object else { return Vec::new() };
    let text = String::from_utf8(store.get(&key).await.expect("quarantine object")).expect("utf-8");
    text.lines().map(|l| serde_json::from_str(l).expect("quarantine line")).collect()
}

async fn extract_once(db: &TestDb, store: &dyn ObjectStore) -> String {
    let mut client = db.connect().await;
    extract::run(&mut client, store, &ExtractOptions::default()).await.expect("extract").manifest.run_id
}

fn text(s: &str) -> Cell {
    Cell::text(s)
}

#[tokio::test]
async fn real_sample_becomes_the_eleven_warehouse_tables() {
    let db = TestDb::seeded("tr_full").await;
    let (_, ingestion, _) = local_dir("tr-full-in");
    let (_, processed, processed_dir) = local_dir("tr-full-out");
    let run_id = extract_once(&db, ingestion.as_ref()).await;
    let runs = transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    assert_eq!(runs.len(), 1);
    let manifest = &runs[0].manifest;
    let counts: BTreeMap<&str, u64> = manifest.tables.iter().map(|t| (t.table.as_str(), t.rows)).collect();
    for (table, rows) in crate::support::SAMPLE_WAREHOUSE_ROWS {
        assert_eq!(counts[table], rows, "{table}");
    }
    assert_eq!(manifest.quarantined_rows, 0);

    let staff = by_key(table_rows(processed.as_ref(), &run_id, &warehouse::DIM_STAFF).await);
    assert_eq!(
        staff[&13],
        vec![
            Cell::Int(13),
            text("Stan"),
            text("Lehner"),
            text("Dispatch"),
            text("Leds"),
            text("stan.lehner@terrifictotes.com")
        ]
    );
    let counterparties = by_key(table_rows(processed.as_ref(), &run_id, &warehouse::DIM_COUNTERPARTY).await);
    assert_eq!(
        counterparties[&1],
        vec![
            Cell::Int(1),
            text("Fahey and Sons"),
            text("605 Haskell Trafficway"),
            text("Axel Freeway"),
            Cell::Null,
            text("East Bobbie"),
            text("88253-4257"),
            text("Heard Island and McDonald Islands"),
            text("9687 937447"),
        ]
    );
    let currencies = by_key(table_rows(processed.as_ref(), &run_id, &warehouse::DIM_CURRENCY).await);
    assert_eq!(currencies[&1][2], text("Pound sterling"));
    let payments = table_rows(processed.as_ref(), &run_id, &warehouse::FACT_PAYMENT).await;
    let first = payments.iter().find(|r| r[0] == Cell::Int(1)).expect("payment 1");
    assert_eq!(first[7].clone(), Cell::Decimal(onyx_core::values::Decimal::parse("56925.44").expect("decimal")));
    let created_time = chrono::NaiveTime::from_hms_milli_opt(14, 20, 52, 186).expect("time");
    assert_eq!(first[2], Cell::Time(created_time), "created_time keeps .186");
    assert_eq!(first[10], Cell::Bool(true));
    let dates = table_rows(processed.as_ref(), &run_id, &warehouse::DIM_DATE).await;
    let monday = dates.iter().find(|r| r[0] == Cell::Date(chrono::NaiveDate::from_ymd_opt(2022, 11, 7).expect("d")));
    assert_eq!(monday.expect("2022-11-07 is covered")[4], Cell::Int(1), "ISO day_of_week: Monday = 1");

    // An independent reader sees the intended logical types.
    let script = r#"
import json, sys, glob, pyarrow.parquet as pq
out = {}
for path in sorted(glob.glob(sys.argv[1] + '/*/*/*/*/*.parquet')):
    table = path[len(sys.argv[1]) + 1:].split('/')[0]
    schema = pq.read_schema(path)
    out[table] = {f.name: [str(f.type), f.nullable] for f in schema}
    physical = pq.ParquetFile(path).schema
    out[table + '.logical'] = {physical.column(i).name: str(physical.column(i).logical_type) for i in range(len(physical))}
    if table == 'fact_payment':
        t = pq.read_table(path, columns=['payment_id', 'payment_amount', 'created_time'])
        # Payment 1 is in one of the table's parts (a part per chunk of a fact-source object).
        for row in t.filter(__import__('pyarrow').compute.equal(t['payment_id'], 1)).to_pylist():
            out['payment_1'] = [format(row['payment_amount'].normalize(), 'f'), str(row['created_time'])]
print(json.dumps(out))
"#;
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&processed_dir)
        .output()
        .expect("python3 runs (make test installs pyarrow)");
    assert!(output.status.success(), "pyarrow failed: {}", String::from_utf8_lossy(&output.stderr));
    let types: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(types["fact_sales_order"]["unit_price"][0], "decimal128(10, 2)");
    assert_eq!(types["fact_sales_order"]["created_date"][0], "date32[day]");
    assert!(types["fact_sales_order"]["created_time"][0].as_str().expect("time").starts_with("time64"));
    assert_eq!(types["fact_sales_order"]["sales_order_id"][0], "int32");
    assert_eq!(types["fact_payment"]["paid"][0], "bool");
    assert_eq!(types["fact_payment"]["payment_amount"][0], "decimal128(38, 18)", "the fixed carrier of NUMERIC");
    assert_eq!(types["dim_staff.logical"]["first_name"], "String", "UTF-8 strings");
    assert_eq!(types["dim_location"]["address_line_2"][1], true, "nullable where the source is");
    assert_eq!(types["payment_1"][0], "56925.44", "exact, by value, in the DECIMAL(38, 18) carrier");
    assert_eq!(types["payment_1"][1], "14:20:52.186000");
    assert_eq!(types["fact_payment.logical"]["version_order"], "String", "the version order travels as text");
}

#[tokio::test]
async fn reference_changes_propagate_and_payment_updates_become_new_facts() {
    let db = TestDb::seeded("tr_ref").await;
    let (_, ingestion, _) = local_dir("tr-ref-in");
    let (_, processed, _) = local_dir("tr-ref-out");
    extract_once(&db, ingestion.as_ref()).await;
    transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("first");

    let client = db.connect().await;
    client
        .batch_execute(
            "UPDATE department SET location = 'Leeds', last_updated = now() WHERE department_name = 'Dispatch';
             UPDATE address SET city = 'New City', last_updated = now() WHERE address_id = 15;
             UPDATE payment SET paid = true, last_updated = now() WHERE payment_id = 2;",
        )
        .await
        .expect("changes");
    let dispatch_staff: Vec<i32> = client
        .query("SELECT staff_id FROM staff JOIN department USING (department_id) WHERE department_name = 'Dispatch' ORDER BY 1", &[])
        .await
        .expect("staff")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let counterparties_at_15: Vec<i32> = client
        .query("SELECT counterparty_id FROM counterparty WHERE legal_address_id = 15 ORDER BY 1", &[])
        .await
        .expect("counterparties")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!dispatch_staff.is_empty() && !counterparties_at_15.is_empty());

    let run_id = extract_once(&db, ingestion.as_ref()).await;
    transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("second");
    let staff = by_key(table_rows(processed.as_ref(), &run_id, &warehouse::DIM_STAFF).await);
    assert_eq!(staff.keys().copied().collect::<Vec<_>>(), dispatch_staff, "every Dispatch staff row, and only those");
    assert!(staff.values().all(|r| r[4] == text("Leeds")));
    let locations = by_key(table_rows(processed.as_ref(), &run_id, &warehouse::DIM_LOCATION).await);
    assert_eq!(locations.keys().copied().collect::<Vec<_>>(), [15]);
    assert_eq!(locations[&15][4], text("New City"));
    let counterparties = by_key(table_rows(processed.as_ref(), &run_id, &warehouse::DIM_COUNTERPARTY).await);
    assert_eq!(counterparties.keys().copied().collect::<Vec<_>>(), counterparties_at_15);
    assert!(counterparties.values().all(|r| r[5] == text("New City")));
    let payments = table_rows(processed.as_ref(), &run_id, &warehouse::FACT_PAYMENT).await;
    assert_eq!(payments.len(), 1, "the new version of payment 2");
    assert_eq!((payments[0][0].clone(), payments[0][10].clone()), (Cell::Int(2), Cell::Bool(true)));
}

/// Every object under the processed bucket, with its bytes.
async fn snapshot(store: &Store) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for key in store.list("", None).await.expect("list") {
        out.insert(key.clone(), store.get(&key).await.expect("get"));
    }
    out
}

#[tokio::test]
async fn duplicate_late_and_out_of_order_events_give_the_same_objects() {
    let db = TestDb::seeded("tr_events").await;
    // A prefix with a space: keys arrive URL-encoded in the event.
    let (ingestion_location, _) = s3_bucket("tr-events-in").await;
    let (bucket, prefix) = bucket_of(&ingestion_location);
    let ingestion_location =
        onyx_core::storage::Location::S3 { bucket: bucket.clone(), prefix: format!("{prefix}with space/") };
    let ingestion = ingestion_location.open().await.expect("open");
    let (_, processed) = s3_bucket("tr-events-out").await;
    let (_, reference) = s3_bucket("tr-events-ref").await;

    let client = db.connect().await;
    let mut runs = Vec::new();
    for change in [
        "UPDATE payment SET paid = true, last_updated = now() WHERE payment_id = 2",
        "UPDATE payment SET paid = true, last_updated = now() WHERE payment_id = 4",
        "SELECT 1",
    ] {
        runs.push(extract_once(&db, ingestion.as_ref()).await);
        client.batch_execute(change).await.expect("change");
    }
    // The reference: every run transformed once, in order.
    transform::transform_pending(ingestion.as_ref(), reference.as_ref(), None).await.expect("reference");

    let function = TransformFunction { ingestion: ingestion.clone(), processed: processed.clone() };
    let event = |run: &str| s3_event(&bucket, &[format!("{prefix}with space/{}", keys::manifest(run))]);
    // The newest run's event arrives first: its predecessors are transformed first.
    let result = function.handle(event(&runs[2])).await.expect("newest first");
    assert_eq!(result["runs"].as_array().expect("runs").len(), 3);
    for run in [&runs[0], &runs[1], &runs[2], &runs[2]] {
        let result = function.handle(event(run)).await.expect("replay");
        assert!(result["runs"].as_array().expect("runs").is_empty(), "a replay is a no-op");
    }
    // A data object (not a manifest) in the same bucket is ignored.
    let data_key = format!("{prefix}with space/payment/2026/11/28/x.jsonl");
    assert!(
        function.handle(s3_event(&bucket, &[data_key])).await.expect("ignored")["runs"]
            .as_array()
            .expect("runs")
            .is_empty()
    );
    assert_eq!(snapshot(&processed).await, snapshot(&reference).await, "same objects, byte for byte");

    // Two transforms of the same run from scratch produce identical objects.
    let (_, again) = s3_bucket("tr-events-again").await;
    transform::transform_pending(ingestion.as_ref(), again.as_ref(), None).await.expect("again");
    assert_eq!(snapshot(&again).await, snapshot(&reference).await);
}

/// Writes a hand-made ingestion run: its objects and its manifest (tables not given are empty).
pub async fn write_run(store: &dyn ObjectStore, run_id: &str, tables: &[(&str, &str)]) {
    let mut entries = Vec::new();
    for table in onyx_core::tables::SOURCE_TABLES {
        let body = tables.iter().find(|(t, _)| *t == table.name).map(|(_, b)| *b);
        let objects = match body {
            Some(body) => {
                let key = keys::extract_part(table.name, run_id, 0);
                store.put(&key, body.as_bytes().to_vec()).await.expect("put");
                vec![key]
            }
            None => Vec::new(),
        };
        entries.push(serde_json::json!({
            "table": table.name, "window_from": null, "window_to": "2026-11-28T07:00:00.000000",
            "rows": body.map_or(0, |b| b.lines().count()), "objects": objects,
            "cursor": {"max_last_updated": null, "cutoff": null, "seen": []}
        }));
    }
    let manifest = serde_json::json!({
        "format": 1, "run_id": run_id, "snapshot_time": "2026-11-28T07:00:00.000000",
        "previous_run_id": null, "safety_lag_seconds": 300, "tables": entries
    });
    store.put(&keys::manifest(run_id), serde_json::to_vec(&manifest).expect("json")).await.expect("manifest");
}

#[tokio::test]
async fn each_quarantine_rule_holds_back_only_the_bad_rows() {
    let db = TestDb::seeded("tr_bad").await;
    let (_, ingestion, ingestion_dir) = local_dir("tr-bad-in");
    let (_, processed, _) = local_dir("tr-bad-out");
    extract_once(&db, ingestion.as_ref()).await;
    transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("first");

    // Bad values the source schema allows (foreign keys dropped so references can dangle).
    let client = db.connect().await;
    client
        .batch_execute(
            "ALTER TABLE sales_order DROP CONSTRAINT sales_order_staff_id_fkey;
             ALTER TABLE payment DROP CONSTRAINT payment_transaction_id_fkey;
             INSERT INTO currency (currency_code) VALUES ('XYZ');
             INSERT INTO sales_order (design_id, staff_id, counterparty_id, units_sold, unit_price, currency_id,
                agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id) VALUES
                (1, 1, 1, 10, 2.50, 1, '2026-12-01', '2026-12-02', 1),
                (1, 1, 1, 0, 2.50, 1, '2026-12-01', '2026-12-02', 1),
                (1, 1, 1, 10, -1.00, 1, '2026-12-01', '2026-12-02', 1),
                (1, 999, 1, 10, 2.50, 1, '2026-12-01', '2026-12-02', 1),
                (1, 1, 1, 10, 2.50, 1, 'tomorrow', '2026-12-02', 1);
             INSERT INTO purchase_order (staff_id, counterparty_id, item_code, item_quantity, item_unit_price, currency_id,
                agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id) VALUES
                (1, 1, 'ABC', 5, 1.1234567890123456789, 1, '2026-12-01', '2026-12-02', 1),
                (1, 1, 'ABC', 5, 1.1234567890123, 1, '2026-12-01', '2026-12-02', 1);
             INSERT INTO transaction (transaction_type, sales_order_id, purchase_order_id) VALUES
                ('REFUND', 1, NULL), ('SALE', 1, 2), ('PURCHASE', NULL, NULL);
             INSERT INTO payment (transaction_id, counterparty_id, payment_amount, currency_id, payment_type_id, paid,
                payment_date, company_ac_number, counterparty_ac_number) VALUES
                (99999, 1, 10.00, 1, 1, false, '2026-12-01', 1, 2);",
        )
        .await
        .expect("bad rows");
    let run_id = extract_once(&db, ingestion.as_ref()).await;
    transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("second");
    let held = quarantine(processed.as_ref(), &run_id).await;
    let reasons: Vec<(String, Option<String>, String)> =
        held.iter().map(|q| (q.table.clone(), q.column.clone(), q.reason.clone())).collect();
    let has = |table: &str, column: Option<&str>, fragment: &str| {
        assert!(
            reasons.iter().any(|(t, c, r)| t == table && c.as_deref() == column && r.contains(fragment)),
            "no {table}.{column:?} quarantine containing {fragment:?} in {reasons:#?}"
        );
    };
    // A currency code ISO 4217 does not know loads, flagged: a warning line, not a held-back row.
    has("currency", Some("currency_code"), "not an ISO 4217");
    let level = |table: &str| held.iter().find(|q| q.table == table).map(|q| (q.level, q.held));
    assert_eq!(level("currency"), Some((transform::Level::Warning, false)));
    // A payment whose transaction no run has brought is held for release, not dropped.
    assert_eq!(level("payment"), Some((transform::Level::Error, true)));
    assert_eq!(processed_manifest(processed.as_ref(), &run_id).await.flagged_rows, 1);
    has("sales_order", Some("units_sold"), "must be positive");
    has("sales_order", Some("unit_price"), "must be positive");
    has("sales_order", Some("staff_id"), "unknown reference: staff 999");
    has("sales_order", Some("agreed_delivery_date"), "not a YYYY-MM-DD date");
    has("transaction", Some("transaction_type"), "neither SALE nor PURCHASE");
    has("transaction", None, "exactly its own order id");
    has("payment", Some("transaction_id"), "unknown reference: transaction 99999");
    // 19 real decimal places do not fit the DECIMAL(38, 18) carrier; 13 do (the old rule kept 12).
    has("purchase_order", Some("item_unit_price"), "1.1234567890123456789 does not fit NUMERIC");
    assert_eq!(held.len(), 10, "{reasons:#?}");
    let purchases = table_rows(processed.as_ref(), &run_id, &warehouse::FACT_PURCHASE_ORDER).await;
    assert_eq!(purchases.len(), 1, "the 13-place price proceeded");
    let price = if let Cell::Decimal(d) = purchases[0][9] { d } else { panic!("decimal") };
    assert_eq!(price.to_string(), "1.1234567890123");
    assert!(held.iter().all(|q| q.key.is_some() && q.line > 0 && q.source_object.ends_with(".jsonl")));
    // The good sales order of the same run proceeded.
    let facts = table_rows(processed.as_ref(), &run_id, &warehouse::FACT_SALES_ORDER).await;
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0][7], Cell::Int(10), "units_sold of the good order");

    // Malformed input the database cannot produce: a hand-made run.
    let bad_run = "20991231T235959000-0bad";
    write_run(
        ingestion.as_ref(),
        bad_run,
        &[
            (
                "design",
                "{\"design_id\": 9001, \"created_at\": \"2026-11-28T07:00:00.000\", \"design_name\": \"Good\", \"file_location\": \"/d\", \"file_name\": \"g.json\", \"last_updated\": \"2026-11-28T07:00:00.000\"}\n\
                 {\"design_id\": \"9002\", \"created_at\": \"2026-11-28T07:00:00.000\", \"design_name\": \"Bad id\", \"file_location\": \"/d\", \"file_name\": \"b.json\", \"last_updated\": \"2026-11-28T07:00:00.000\"}\n\
                 {\"design_id\": 9003, \"created_at\": \"2026-11-28T07:00:00.000\", \"file_location\": \"/d\", \"file_name\": \"b.json\", \"last_updated\": \"2026-11-28T07:00:00.000\"}\n\
                 {\"design_id\": 9004, \"created_at\": \"yesterday\", \"design_name\": \"Bad time\", \"file_location\": \"/d\", \"file_name\": \"b.json\", \"last_updated\": \"2026-11-28T07:00:00.000\"}\n\
                 this is not json\n",
            ),
            ("payment_type", "replaced below"),
            (
                "sales_order",
                "{\"sales_order_id\": 9001, \"created_at\": \"2026-11-28T07:00:00.000\", \"last_updated\": \"2026-11-28T07:00:00.000\", \"design_id\": 1, \"staff_id\": 1, \"counterparty_id\": 1, \"units_sold\": 5, \"unit_price\": \"2.505\", \"currency_id\": 1, \"agreed_delivery_date\": \"2026-12-01\", \"agreed_payment_date\": \"2026-12-01\", \"agreed_delivery_location_id\": 1}\n",
            ),
        ],
    )
    .await;
    // An object that is not text at all.
    std::fs::write(ingestion_dir.join(keys::extract_part("payment_type", bad_run, 0)), [0xff, 0xfe, 0x00])
        .expect("corrupt the object");
    let runs = transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("bad run");
    assert_eq!(runs.len(), 1);
    let held = quarantine(processed.as_ref(), bad_run).await;
    let summary: Vec<(Option<String>, &str)> = held.iter().map(|q| (q.column.clone(), q.reason.as_str())).collect();
    assert_eq!(held.len(), 6, "{summary:#?}");
    assert!(summary.iter().any(|(c, r)| c.as_deref() == Some("unit_price") && r.contains("NUMERIC(10, 2)")));
    assert!(summary.iter().any(|(c, r)| c.is_none() && r.contains("could not be read") && r.contains("not UTF-8")));
    assert!(summary.iter().any(|(c, r)| c.as_deref() == Some("design_id") && r.contains("not of type integer")));
    assert!(summary.iter().any(|(c, r)| c.as_deref() == Some("design_name") && r.contains("missing")));
    assert!(summary.iter().any(|(c, r)| c.as_deref() == Some("created_at") && r.contains("not a timestamp")));
    assert!(
        summary.iter().any(|(c, r)| c.is_none() && r.contains("not a JSON object") && r.contains("this is not json"))
    );
    let designs = table_rows(processed.as_ref(), bad_run, &warehouse::DIM_DESIGN).await;
    assert_eq!(designs.len(), 1, "the good design proceeded");

    // A manifest that is not a manifest is about the run, not a row: the run fails, naming the
    // manifest, and stays pending — it is never recorded as done.
    let broken = "20991231T235959999-dead";
    ingestion.put(&keys::manifest(broken), b"{not a manifest".to_vec()).await.expect("put");
    let error = transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect_err("broken");
    assert!(matches!(error, transform::TransformError::BadIngestionManifest { .. }), "{error}");
    assert!(error.to_string().contains(&keys::manifest(broken)), "{error}");
    assert!(!error.is_retryable());
    assert_eq!(transform::pending_runs(ingestion.as_ref(), processed.as_ref()).await.expect("pending"), [broken]);
    assert!(processed.get(&keys::manifest(broken)).await.is_err(), "no processed manifest for the failed run");
}

/// A manifest written by a newer Onyx (a higher `format`) fails the run instead of being read
/// with fields this build does not know.
#[tokio::test]
async fn a_manifest_of_a_newer_format_fails_the_run_and_stays_pending() {
    let (_, ingestion, _) = local_dir("tr-newer-in");
    let (_, processed, _) = local_dir("tr-newer-out");
    let run = "20991231T235959000-0001";
    write_run(ingestion.as_ref(), run, &[]).await;
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&ingestion.get(&keys::manifest(run)).await.expect("manifest")).expect("json");
    manifest["format"] = serde_json::json!(99);
    let newer = "20991231T235959001-0002";
    manifest["run_id"] = serde_json::json!(newer);
    ingestion.put(&keys::manifest(newer), serde_json::to_vec(&manifest).expect("json")).await.expect("put");
    let error = transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect_err("newer");
    assert!(error.to_string().contains("format 99 is newer"), "{error}");
    let pending = transform::pending_runs(ingestion.as_ref(), processed.as_ref()).await.expect("pending");
    assert_eq!(pending, [newer], "the first run was transformed, the newer one waits");
}

/// How an injected `get` failure is built from the bucket's location and the key.
type InjectedError = fn(String, String) -> StorageError;

/// A bucket whose `get` of one object fails non-retryably, as S3 does for AccessDenied, a
/// disabled KMS key or a vanished object, until it is healed.
#[derive(Debug)]
struct FailingGet {
    inner: Store,
    /// The key that fails, and how (`None`: healed).
    failing: Mutex<Option<(String, InjectedError)>>,
}

#[async_trait]
impl ObjectStore for FailingGet {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), StorageError> {
        self.inner.put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let failing = self.failing.lock().expect("lock").clone();
        match failing {
            Some((bad, error)) if bad == key => Err(error(self.location(), key.to_string())),
            _ => self.inner.get(key).await,
        }
    }
    async fn list(&self, prefix: &str, start_after: Option<&str>) -> Result<Vec<String>, StorageError> {
        self.inner.list(prefix, start_after).await
    }
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.inner.list_dirs(prefix).await
    }
    async fn modified(&self, key: &str) -> Result<onyx_core::chrono::DateTime<onyx_core::chrono::Utc>, StorageError> {
        self.inner.modified(key).await
    }
    fn location(&self) -> String {
        self.inner.location()
    }
}

/// `read_object` tells storage failures from content: an ingestion part whose `get` fails
/// (AccessDenied, NotFound — not retryable, so the old code quarantined the whole object) fails
/// the run with an error naming the object and the run, writes no processed manifest, and the run
/// stays pending; once the store heals, the same run transforms fully with nothing quarantined.
#[tokio::test]
async fn an_unreadable_ingestion_part_fails_the_run_until_the_store_heals() {
    let db = TestDb::seeded("tr_unreadable").await;
    let (_, ingestion, _) = local_dir("tr-unreadable-in");
    let (_, processed, _) = local_dir("tr-unreadable-out");
    let run_id = extract_once(&db, ingestion.as_ref()).await;
    let manifest: serde_json::Value =
        serde_json::from_slice(&ingestion.get(&keys::manifest(&run_id)).await.expect("manifest")).expect("json");
    let part = manifest["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["table"] == "payment")
        .and_then(|t| t["objects"][0].as_str())
        .expect("a payment part")
        .to_string();

    let access_denied = |location: String, key: String| StorageError::Io {
        location,
        key,
        operation: "read",
        message: "AccessDenied: Access Denied (injected)".into(),
        retryable: false,
    };
    let not_found = |location: String, key: String| StorageError::NotFound { location, key };
    let failing = FailingGet { inner: ingestion.clone(), failing: Mutex::new(None) };
    for error in [access_denied as InjectedError, not_found] {
        *failing.failing.lock().expect("lock") = Some((part.clone(), error));
        let result = transform::transform_pending(&failing, processed.as_ref(), None).await;
        let error = result.expect_err("a storage failure fails the run");
        let message = error.to_string();
        assert!(message.contains(&part) && message.contains(&run_id), "names the object and the run: {message}");
        assert!(!error.is_retryable(), "{message}");
        assert!(
            processed.get(&keys::manifest(&run_id)).await.is_err(),
            "no processed manifest: the run is not recorded as done"
        );
        assert_eq!(
            transform::pending_runs(&failing, processed.as_ref()).await.expect("pending"),
            vec![run_id.clone()],
            "the run is still pending"
        );
    }

    *failing.failing.lock().expect("lock") = None;
    let runs = transform::transform_pending(&failing, processed.as_ref(), None).await.expect("healed");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].manifest.quarantined_rows, 0);
    let counts: BTreeMap<&str, u64> = runs[0].manifest.tables.iter().map(|t| (t.table.as_str(), t.rows)).collect();
    for (table, rows) in crate::support::SAMPLE_WAREHOUSE_ROWS {
        assert_eq!(counts[table], rows, "{table}");
    }
}
