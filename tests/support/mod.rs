//! Shared test support: a fresh PostgreSQL database per test, buckets in moto's S3, captured logs.
//! A missing service fails the test with instructions; nothing is skipped.

#![allow(dead_code)]

pub mod cluster;
pub mod terraform;

use std::io::Write;
use std::sync::{Arc, Mutex};

use onyx_core::storage::{Location, Store};
use tokio_postgres::{Client, NoTls};

/// The warehouse rows the real sample becomes (issue #3's acceptance counts; `dim_date` aside).
pub const SAMPLE_WAREHOUSE_ROWS: [(&str, u64); 10] = [
    ("fact_sales_order", 11_187),
    ("fact_purchase_order", 4_649),
    ("fact_payment", 15_836),
    ("dim_transaction", 15_836),
    ("dim_design", 473),
    ("dim_location", 30),
    ("dim_counterparty", 20),
    ("dim_staff", 20),
    ("dim_currency", 3),
    ("dim_payment_type", 4),
];

/// The superuser URL (without database) that `.ci/services.sh` exports.
pub fn pg_base_url() -> String {
    std::env::var("ONYX_TEST_PG_URL").unwrap_or_else(|_| {
        panic!(
            "ONYX_TEST_PG_URL is not set: these tests need a real PostgreSQL. Run them with `make test` \
             (which runs .ci/services.sh), or export ONYX_TEST_PG_URL=postgres://user@127.0.0.1:5432"
        )
    })
}

/// The moto endpoint `.ci/services.sh` exports.
pub fn aws_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!(
            "AWS_ENDPOINT_URL is not set: these tests need moto's server for S3 and Secrets Manager. Run them \
             with `make test` (which starts it), or start `moto_server` and export AWS_ENDPOINT_URL"
        )
    })
}

pub fn unique(prefix: &str) -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}{}{:08x}", std::process::id(), nanos ^ rand_u32())
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish() as u32
}

/// Connects to `url`, with libpq's password rules (`PGPASSWORD`, `~/.pgpass`) when the URL has
/// none, as onyx itself does: the tests run against a password-authenticated PostgreSQL too.
pub async fn pg_connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = url.parse()?;
    onyx_core::pgpass::fill_password(&mut config);
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The single integer `sql` returns (a count), or a panic naming the query.
pub async fn count(client: &Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
}

/// `onyx verify` finds the warehouse equal to the source.
pub async fn assert_verifies_clean(
    source: &mut Client,
    warehouse: &Client,
    ingestion: &dyn onyx_core::storage::ObjectStore,
) {
    let report = onyx_core::verify::verify(source, warehouse, ingestion, &Default::default()).await.expect("verify");
    assert!(report.is_clean(), "onyx verify finds differences: {report:#?}");
}

/// The lines `emit` logs, exactly as a function writes them in Lambda (`lambda_subscriber`).
pub fn lambda_lines(emit: impl FnOnce()) -> Vec<String> {
    let sink = CapturedLogs::default();
    let writer = sink.clone();
    let subscriber =
        onyx_core::telemetry::lambda_subscriber(tracing_subscriber::EnvFilter::new("info"), move || writer.clone());
    tracing::subscriber::with_default(subscriber, emit);
    sink.text().lines().map(str::to_string).collect()
}

/// A database created for one test.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create(prefix: &str) -> TestDb {
        let base = pg_base_url();
        let name = unique(&format!("onyx_{prefix}_"));
        let admin = pg_connect(&format!("{base}/postgres"))
            .await
            .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at ONYX_TEST_PG_URL: {e}. Is it running?"));
        admin.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await.expect("create test database");
        TestDb { url: format!("{base}/{name}"), name }
    }

    pub async fn connect(&self) -> Client {
        pg_connect(&self.url).await.expect("connect to test database")
    }

    /// A database holding the real ToteSys sample.
    pub async fn seeded(prefix: &str) -> TestDb {
        let db = TestDb::create(prefix).await;
        let mut client = db.connect().await;
        onyx_core::seed::seed_sample(&mut client).await.expect("seed the sample");
        db
    }
}

pub async fn s3_client() -> aws_sdk_s3::Client {
    aws_endpoint();
    onyx_core::storage::s3_client().await
}

/// A new, empty bucket in moto, as a location with a key prefix.
pub async fn s3_bucket(prefix: &str) -> (Location, Store) {
    let bucket = unique(&format!("onyx-{}-", prefix.replace('_', "-"))).to_lowercase();
    s3_client()
        .await
        .create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest2)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("cannot create a bucket in moto at {}: {e:?}", aws_endpoint()));
    let location = Location::parse(&format!("s3://{bucket}/data")).expect("location");
    let store = location.open().await.expect("open bucket");
    (location, store)
}

/// A temporary local directory used as a bucket.
pub fn local_dir(prefix: &str) -> (Location, Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(unique(&format!("onyx-{prefix}-")));
    let location = Location::Local(dir.clone());
    let store: Store = Arc::new(onyx_core::storage::LocalDir::new(dir.clone()));
    (location, store, dir)
}

/// Log lines written while the guard lives (JSON, as in Lambda), for assertions.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || sink.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        // Callsites cache whether any subscriber wants them; tests on other threads install and
        // drop their own subscribers concurrently, so a callsite first seen in between can be
        // cached as unwanted. Recompute with this subscriber in place.
        tracing::callsite::rebuild_interest_cache();
        guard
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `onyx` CLI binary built alongside the tests (`make test` builds it first).
pub fn onyx_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("onyx");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p onyx-cli` (make test does)",
        bin.display()
    );
    bin
}

/// Runs the three stages once, as `onyx run` does: extract (with the given lag), transform all
/// pending runs, load all pending runs.
pub async fn run_pipeline(
    source: &mut Client,
    ingestion: &dyn onyx_core::storage::ObjectStore,
    processed: &dyn onyx_core::storage::ObjectStore,
    warehouse: &mut Client,
) -> String {
    let options = onyx_core::extract::ExtractOptions::default();
    let extracted = onyx_core::extract::run(source, ingestion, &options).await.expect("extract");
    onyx_core::transform::transform_pending(ingestion, processed, None).await.expect("transform");
    onyx_core::load::migrate(warehouse).await.expect("migrate");
    onyx_core::load::load_pending(warehouse, processed, None, &Default::default()).await.expect("load");
    extracted.manifest.run_id
}

/// Every warehouse table's rows as sorted text (record ids excluded), for whole-warehouse
/// comparisons.
pub async fn warehouse_dump(client: &Client) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut dump = std::collections::BTreeMap::new();
    for table in onyx_core::warehouse::WAREHOUSE_TABLES {
        let columns: Vec<&str> = table.data_columns().map(|c| c.name).collect();
        let sql = format!("SELECT ({})::text FROM {} ORDER BY 1", columns.join(", "), table.name);
        let rows = client.query(sql.as_str(), &[]).await.expect("dump table");
        dump.insert(table.name.to_string(), rows.iter().map(|r| r.get::<_, String>(0)).collect());
    }
    dump
}

/// A migrated, empty warehouse database.
pub async fn warehouse_db(prefix: &str) -> (TestDb, Client) {
    let db = TestDb::create(prefix).await;
    let mut client = db.connect().await;
    onyx_core::load::migrate(&mut client).await.expect("migrate");
    (db, client)
}

/// An S3 `ObjectCreated` event for keys in a bucket, with keys URL-encoded as S3 sends them
/// (space as `+`, other reserved bytes as `%xx`).
pub fn s3_event(bucket: &str, keys: &[String]) -> aws_lambda_events::event::s3::S3Event {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b' ');
    let records: Vec<serde_json::Value> = keys
        .iter()
        .map(|key| {
            let encoded = utf8_percent_encode(key, KEEP).to_string().replace(' ', "+");
            serde_json::json!({
                "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-2",
                "eventTime": "2026-11-28T07:00:00.000Z", "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:EXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
                "s3": {
                    "s3SchemaVersion": "1.0", "configurationId": "onyx-manifests",
                    "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": format!("arn:aws:s3:::{bucket}")},
                    "object": {"key": encoded, "size": 1, "eTag": "0", "sequencer": "0"}
                }
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).expect("S3 event shape")
}

/// The bucket name and full key prefix of an S3 location.
pub fn bucket_of(location: &Location) -> (String, String) {
    match location {
        Location::S3 { bucket, prefix } => (bucket.clone(), prefix.clone()),
        Location::Local(_) => panic!("not an S3 location"),
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
