//! Extract stage: ToteSys → ingestion bucket. Invariants 1 (nothing lost), 2 (nothing written
//! twice), 3 (immutable keys), 4 (one snapshot), 5 (exact values), 8 (secrets stay secret).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use onyx_core::extract::{self, ExtractOptions, IngestionManifest};
use onyx_core::keys;
use onyx_core::storage::{ObjectStore, StorageError, Store};
use onyx_core::tables::SOURCE_TABLES;
use serde_json::Value;

use crate::support::{TestDb, local_dir, s3_bucket};

fn options() -> ExtractOptions {
    ExtractOptions::default()
}

/// Every manifest in the bucket, oldest first.
pub async fn manifests(store: &dyn ObjectStore) -> Vec<IngestionManifest> {
    let mut out = Vec::new();
    for key in store.list(keys::MANIFEST_PREFIX, None).await.expect("list manifests") {
        out.push(serde_json::from_slice(&store.get(&key).await.expect("get manifest")).expect("parse manifest"));
    }
    out
}

/// Every extracted row of `table` across all runs (in run order), parsed independently of core.
pub async fn extracted_rows(store: &dyn ObjectStore, table: &str) -> Vec<serde_json::Map<String, Value>> {
    let mut rows = Vec::new();
    for manifest in manifests(store).await {
        let entry = manifest.table(table).expect("every table is in every manifest");
        assert_eq!(entry.objects.is_empty(), entry.rows == 0, "{table}: objects iff rows");
        let mut count = 0;
        for key in &entry.objects {
            let body = store.get(key).await.expect("get data object");
            for line in String::from_utf8(body).expect("UTF-8").lines() {
                rows.push(serde_json::from_str(line).expect("one JSON object per line"));
                count += 1;
            }
        }
        assert_eq!(count, entry.rows, "{table}: manifest row count equals the rows in its objects");
    }
    rows
}

/// `(key, last_updated)` of every extracted version of a table, with how often each was written.
pub async fn versions(store: &dyn ObjectStore, table: &str, key: &str) -> BTreeMap<(i64, String), usize> {
    let mut seen = BTreeMap::new();
    for row in extracted_rows(store, table).await {
        let id = row[key].as_i64().expect("integer key");
        let at = row["last_updated"].as_str().expect("last_updated").to_string();
        *seen.entry((id, at)).or_default() += 1;
    }
    seen
}

/// The versions the source holds now, formatted as extract formats them.
pub async fn source_versions(db: &TestDb, table: &str, key: &str) -> Vec<(i64, String)> {
    let client = db.connect().await;
    let sql =
        format!("SELECT {key}::bigint, to_char(last_updated, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') FROM {table} ORDER BY 1");
    client.query(sql.as_str(), &[]).await.expect("source versions").iter().map(|r| (r.get(0), r.get(1))).collect()
}

pub fn assert_exactly_once(versions: &BTreeMap<(i64, String), usize>, table: &str) {
    let twice: Vec<_> = versions.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{table}: versions written more than once: {twice:?}");
}

#[tokio::test]
async fn full_extract_of_the_real_sample_is_exact() {
    let db = TestDb::seeded("full").await;
    let (_, store) = s3_bucket("full").await;
    let mut client = db.connect().await;
    let summary = extract::run(&mut client, store.as_ref(), &options()).await.expect("extract");

    for table in SOURCE_TABLES {
        let count: i64 =
            client.query_one(format!("SELECT count(*) FROM {}", table.name).as_str(), &[]).await.expect("count").get(0);
        assert_eq!(summary.manifest.table(table.name).expect("table").rows, count as u64, "{}", table.name);
        assert_eq!(extracted_rows(store.as_ref(), table.name).await.len() as i64, count, "{}", table.name);
    }
    assert_eq!(summary.manifest.total_rows(), 48_066);
    // The manifest is what transform reads: it is in the bucket under its run id.
    assert_eq!(summary.manifest_key, keys::manifest(&summary.manifest.run_id));

    let by_id =
        |rows: Vec<serde_json::Map<String, Value>>, key: &str| -> HashMap<i64, serde_json::Map<String, Value>> {
            rows.into_iter().map(|r| (r[key].as_i64().expect("id"), r)).collect()
        };
    let counterparties = by_id(extracted_rows(store.as_ref(), "counterparty").await, "counterparty_id");
    assert_eq!(counterparties[&7]["counterparty_legal_name"], "Padberg, Lueilwitz and Johnson");
    assert_eq!(counterparties[&7]["delivery_contact"], "Christy O'Hara");
    let staff = by_id(extracted_rows(store.as_ref(), "staff").await, "staff_id");
    assert_eq!(staff[&17]["last_name"], "O'Keefe");
    let addresses = by_id(extracted_rows(store.as_ref(), "address").await, "address_id");
    assert_eq!(addresses[&1]["address_line_2"], Value::Null);
    assert_eq!(addresses[&1]["district"], "Avon");
    let payments = by_id(extracted_rows(store.as_ref(), "payment").await, "payment_id");
    assert_eq!(payments[&1]["payment_amount"], "56925.44", "NUMERIC is an exact string");
    assert_eq!(payments[&1]["created_at"], "2022-11-03T14:20:52.186000", "microseconds, always six digits");
    assert_eq!(payments[&1]["last_updated"], "2022-11-07T07:55:11.885000");
    assert_eq!(payments[&1]["paid"], true);
    assert_eq!(payments[&1]["payment_date"], "2022-11-07");
    let orders = by_id(extracted_rows(store.as_ref(), "sales_order").await, "sales_order_id");
    assert_eq!(orders[&1]["unit_price"], "2.43");
    assert_eq!(orders[&1]["units_sold"], 84754);
    // Every extracted value equals the source's, cell for cell, for one whole table.
    let rows = client
        .query("SELECT payment_id, payment_amount::text, paid, payment_date, company_ac_number FROM payment", &[])
        .await
        .expect("payments");
    for row in rows {
        let id: i32 = row.get(0);
        let json = &payments[&(id as i64)];
        assert_eq!(json["payment_amount"], row.get::<_, String>(1), "payment {id}");
        assert_eq!(json["paid"], row.get::<_, bool>(2), "payment {id}");
        assert_eq!(json["payment_date"], row.get::<_, String>(3), "payment {id}");
        assert_eq!(json["company_ac_number"], row.get::<_, i32>(4), "payment {id}");
    }
}

#[tokio::test]
async fn incremental_runs_write_each_change_once_and_nothing_when_idle() {
    let db = TestDb::seeded("incr").await;
    let (_, store, _) = local_dir("incr");
    let mut client = db.connect().await;
    extract::run(&mut client, store.as_ref(), &options()).await.expect("first run");

    client
        .batch_execute(
            "INSERT INTO design (design_name, file_location, file_name) VALUES ('Ünïcode \"quoted\", comma', '/x', 'a.json');
             UPDATE payment SET paid = true, last_updated = now() WHERE payment_id = 2;
             UPDATE payment SET payment_amount = 1.10, last_updated = now() WHERE payment_id = 3;",
        )
        .await
        .expect("changes");
    let second = extract::run(&mut client, store.as_ref(), &options()).await.expect("second run");
    assert_eq!(second.manifest.table("design").expect("design").rows, 1);
    assert_eq!(second.manifest.table("payment").expect("payment").rows, 2);
    assert_eq!(second.manifest.total_rows(), 3, "only the changes");

    // Updated several times between runs: the latest version is taken, once.
    client
        .batch_execute(
            "UPDATE payment SET payment_amount = 2.20, last_updated = now() WHERE payment_id = 3;
             UPDATE payment SET payment_amount = 3.30, last_updated = clock_timestamp() WHERE payment_id = 3;",
        )
        .await
        .expect("repeated updates");
    let third = extract::run(&mut client, store.as_ref(), &options()).await.expect("third run");
    assert_eq!(third.manifest.total_rows(), 1);

    let idle = extract::run(&mut client, store.as_ref(), &options()).await.expect("idle run");
    assert_eq!(idle.manifest.total_rows(), 0);
    assert!(idle.manifest.tables.iter().all(|t| t.objects.is_empty()), "an idle run writes no data object");
    let idle_objects = store.list("payment/", None).await.expect("list");
    assert_eq!(idle_objects.len(), 3, "one payment object per run with changes: {idle_objects:?}");

    let payments = extracted_rows(store.as_ref(), "payment").await;
    let amounts: Vec<&str> = payments
        .iter()
        .filter(|r| r["payment_id"] == 3)
        .map(|r| r["payment_amount"].as_str().expect("amount"))
        .collect();
    assert_eq!(amounts, ["205952.22", "1.10", "3.30"], "every version at each run, in order");
    let designs = extracted_rows(store.as_ref(), "design").await;
    assert_eq!(designs.last().expect("new design")["design_name"], "Ünïcode \"quoted\", comma");

    for (table, key) in [("payment", "payment_id"), ("design", "design_id")] {
        let written = versions(store.as_ref(), table, key).await;
        assert_exactly_once(&written, table);
        for version in source_versions(&db, table, key).await {
            assert!(written.contains_key(&version), "{table} {version:?} was never extracted");
        }
    }
}

#[tokio::test]
async fn rows_sharing_the_previous_maximum_millisecond_are_extracted() {
    let db = TestDb::seeded("boundary").await;
    let (_, store, _) = local_dir("boundary");
    let mut client = db.connect().await;
    let no_lag = options();
    extract::run(&mut client, store.as_ref(), &no_lag).await.expect("first run");
    client
        .batch_execute(
            "INSERT INTO transaction (transaction_type, sales_order_id, created_at, last_updated)
             SELECT 'SALE', 1, max(last_updated), max(last_updated) FROM transaction;",
        )
        .await
        .expect("insert at the maximum");
    let second = extract::run(&mut client, store.as_ref(), &no_lag).await.expect("second run");
    assert_eq!(second.manifest.table("transaction").expect("transaction").rows, 1);
    assert_eq!(second.manifest.total_rows(), 1, "rows already written at that millisecond are not repeated");
    let written = versions(store.as_ref(), "transaction", "transaction_id").await;
    assert_exactly_once(&written, "transaction");
    assert_eq!(written.len(), 15_837);
}

/// A writer's transaction stamps a payment with a `last_updated` an hour old — what `now()` gives
/// a transaction that has been open for an hour — and commits only after the next extraction took
/// its snapshot. Payment is a large table whose newest stamps are recent, so a `last_updated`
/// window (the old design: cutoff = newest stamp written, at most the snapshot minus a 300 s
/// lag) starts after the stamp and misses the row. Commit visibility finds it, once.
#[tokio::test]
async fn a_transaction_open_across_runs_with_an_hour_old_stamp_is_extracted_exactly_once() {
    let db = TestDb::seeded("late").await;
    let (_, store, _) = local_dir("late");
    let mut client = db.connect().await;
    extract::run(&mut client, store.as_ref(), &options()).await.expect("first run");

    let mut writer = db.connect().await;
    let late = writer.transaction().await.expect("begin");
    late.batch_execute(
        "UPDATE payment SET paid = NOT paid, last_updated = LOCALTIMESTAMP - interval '1 hour' WHERE payment_id = 5",
    )
    .await
    .expect("update in the open transaction");
    client
        .batch_execute("UPDATE payment SET paid = NOT paid, last_updated = LOCALTIMESTAMP WHERE payment_id = 6")
        .await
        .expect("other change");
    let during = extract::run(&mut client, store.as_ref(), &options()).await.expect("run during the open transaction");
    assert_eq!(during.manifest.table("payment").expect("payment").rows, 1, "only the committed change");
    late.commit().await.expect("late commit");

    let after = extract::run(&mut client, store.as_ref(), &options()).await.expect("run after the commit");
    assert_eq!(after.manifest.table("payment").expect("payment").rows, 1, "the late version is found");
    assert_eq!(after.manifest.total_rows(), 1, "and nothing is repeated");
    let again = extract::run(&mut client, store.as_ref(), &options()).await.expect("one more run");
    assert_eq!(again.manifest.total_rows(), 0, "and never again");
    let written = versions(store.as_ref(), "payment", "payment_id").await;
    assert_exactly_once(&written, "payment");
    assert_eq!(written.len(), 15_836 + 2);
    for version in source_versions(&db, "payment", "payment_id").await {
        assert!(written.contains_key(&version), "payment {version:?} was never extracted");
    }
}

/// A store that fails every data write after the first `allowed` (simulating S3 trouble mid-run).
#[derive(Debug)]
struct FailingAfter {
    inner: Store,
    allowed: usize,
    writes: AtomicUsize,
}

#[async_trait]
impl ObjectStore for FailingAfter {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), StorageError> {
        // Claims pass: the failure is in the run's data, half way through.
        if !key.starts_with(keys::CLAIM_PREFIX) && self.writes.fetch_add(1, Ordering::SeqCst) >= self.allowed {
            return Err(StorageError::Io {
                location: self.location(),
                key: key.into(),
                operation: "write",
                message: "injected failure".into(),
                retryable: true,
            });
        }
        self.inner.put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        self.inner.get(key).await
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

#[tokio::test]
async fn a_run_that_fails_half_way_is_recovered_by_the_next_without_duplicates() {
    let db = TestDb::seeded("fail").await;
    let (_, store) = s3_bucket("fail").await;
    let mut client = db.connect().await;
    extract::run(&mut client, store.as_ref(), &options()).await.expect("first run");
    client
        .batch_execute(
            "UPDATE payment SET paid = true, last_updated = now() WHERE payment_id IN (2, 3);
             INSERT INTO sales_order (design_id, staff_id, counterparty_id, units_sold, unit_price, currency_id,
                agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id)
             VALUES (1, 1, 1, 5, 2.50, 1, '2026-12-01', '2026-12-02', 1);",
        )
        .await
        .expect("changes");

    // sales_order's object is written, then the payment object fails: no manifest.
    let failing = FailingAfter { inner: store.clone(), allowed: 1, writes: AtomicUsize::new(0) };
    let error = extract::run(&mut client, &failing, &options()).await.expect_err("injected failure");
    assert!(error.to_string().contains("injected failure"), "{error}");
    assert!(error.to_string().contains("payment/"), "the error names the object: {error}");
    assert_eq!(manifests(store.as_ref()).await.len(), 1, "the failed run wrote no manifest");

    extract::run(&mut client, store.as_ref(), &options()).await.expect("recovery run");
    let payments = versions(store.as_ref(), "payment", "payment_id").await;
    assert_exactly_once(&payments, "payment");
    assert_eq!(payments.len(), 15_836 + 2);
    let orders = versions(store.as_ref(), "sales_order", "sales_order_id").await;
    assert_exactly_once(&orders, "sales_order");
    assert_eq!(orders.len(), 11_188);
}

/// The extract writes each JSON line itself from the row's binary values. For every type a
/// column can have — the ToteSys ones, domains over them, and ones left to PostgreSQL's
/// `to_json` (char(n), float8 with NaN, date, jsonb, arrays) — with odd text (quotes,
/// backslashes, control characters, non-ASCII), NULLs, microseconds, ±infinity and the integer
/// limits, a line holds exactly what PostgreSQL's own JSON of the row holds, with numerics as
/// their exact text and timestamps with six digits.
#[tokio::test]
async fn every_column_type_reaches_the_json_exactly_as_postgresql_would_write_it() {
    let db = TestDb::seeded("types").await;
    let (_, store, _) = local_dir("types");
    let mut client = db.connect().await;
    client
        .batch_execute(
            r#"CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
               CREATE DOMAIN short_text AS varchar(40);
               ALTER TABLE design
                 ADD COLUMN padded char(5), ADD COLUMN ratio float8, ADD COLUMN launched date,
                 ADD COLUMN extra jsonb, ADD COLUMN tags text[], ADD COLUMN small int2, ADD COLUMN big int8,
                 ADD COLUMN rank positive_int, ADD COLUMN label short_text, ADD COLUMN active boolean,
                 ADD COLUMN price numeric(12, 4), ADD COLUMN reviewed timestamp;
               UPDATE design SET padded = 'ab', ratio = 'NaN', launched = '2024-02-29', extra = '{"a": [1, "x"]}',
                 tags = ARRAY['q"uote', 'back\slash'], small = -32768, big = 9223372036854775807, rank = 7,
                 label = E'tab\there, line\nbreak, bell\x07, é ☃ 𝄞', active = false, price = -0.0001,
                 reviewed = '2024-02-29 23:59:59.999999'
                 WHERE design_id = (SELECT min(design_id) FROM design);
               UPDATE design SET ratio = 1.5e300, reviewed = 'infinity', big = -9223372036854775808, active = true,
                 label = '', price = 12345678.9
                 WHERE design_id = (SELECT max(design_id) FROM design);
               UPDATE design SET reviewed = '-infinity', ratio = '-Infinity', created_at = '1999-12-31 23:59:59.000001'
                 WHERE design_id = (SELECT min(design_id) + 1 FROM design);"#,
        )
        .await
        .expect("add columns of every kind");
    extract::run(&mut client, store.as_ref(), &options()).await.expect("extract");

    // What PostgreSQL writes for the same rows: its own JSON, numerics as text, six digits.
    let columns: Vec<(String, String)> = client
        .query(
            "SELECT a.attname::text, format_type(COALESCE(NULLIF(t.typbasetype, 0), a.atttypid), NULL)
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
             WHERE a.attrelid = 'design'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[],
        )
        .await
        .expect("columns")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let fields: Vec<String> = columns
        .iter()
        .map(|(name, base)| {
            let value = match base.as_str() {
                "numeric" => format!("{name}::text"),
                "timestamp without time zone" => format!(
                    "CASE WHEN isfinite({name}) THEN to_char({name}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') ELSE {name}::text END"
                ),
                _ => name.clone(),
            };
            format!("'{name}', {value}")
        })
        .collect();
    let expected: BTreeMap<i64, Value> = client
        .query(
            format!("SELECT design_id::int8, jsonb_build_object({})::text FROM design", fields.join(", ")).as_str(),
            &[],
        )
        .await
        .expect("PostgreSQL's JSON")
        .iter()
        .map(|r| (r.get(0), serde_json::from_str(r.get(1)).expect("JSON")))
        .collect();
    let extracted: BTreeMap<i64, Value> = extracted_rows(store.as_ref(), "design")
        .await
        .into_iter()
        .map(|row| (row["design_id"].as_i64().expect("id"), Value::Object(row)))
        .collect();
    assert_eq!(extracted.len(), expected.len());
    for (id, row) in &expected {
        assert_eq!(&extracted[id], row, "design {id}");
    }
    let first = &extracted[expected.keys().next().expect("a design")];
    assert_eq!(first["ratio"], "NaN");
    assert_eq!(first["reviewed"], "2024-02-29T23:59:59.999999");
    assert_eq!(first["padded"], "ab   ", "char(n) keeps its padding");
    assert_eq!(first["price"], "-0.0001");
}
