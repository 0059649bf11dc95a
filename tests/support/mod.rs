//! Shared test support: a fresh PostgreSQL database per test, buckets in moto's S3, captured logs.
//! A missing service fails the test with instructions; nothing is skipped.

#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use onyx_core::storage::{Location, Store};
use tokio_postgres::{Client, NoTls};

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

/// A database created for one test.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create(prefix: &str) -> TestDb {
        let base = pg_base_url();
        let name = unique(&format!("onyx_{prefix}_"));
        let (admin, connection) = tokio_postgres::connect(&format!("{base}/postgres"), NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at ONYX_TEST_PG_URL: {e}. Is it running?"));
        tokio::spawn(connection);
        admin.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await.expect("create test database");
        TestDb { url: format!("{base}/{name}"), name }
    }

    pub async fn connect(&self) -> Client {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls).await.expect("connect to test database");
        tokio::spawn(connection);
        client
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
        tracing::subscriber::set_default(subscriber)
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
