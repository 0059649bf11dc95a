//! `onyx migrate` creates the warehouse's two login roles (issue 13, item 3): `onyx_reader` can
//! read every table and view and write nothing; `onyx_loader` can run a real load.

use std::process::Command;

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use tokio_postgres::{Client, NoTls};

use crate::support::{TestDb, local_dir, onyx_binary, pg_base_url, run_pipeline, unique};

/// The roles are cluster-wide: the tests that set their passwords take turns.
static ROLES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `postgres://user@host:port` (the superuser URL) with another user and password.
fn url_as(db: &TestDb, user: &str, password: &str) -> String {
    let base = pg_base_url();
    let (scheme, rest) = base.split_once("://").expect("URL scheme");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host}/{}", db.name)
}

async fn connect_as(db: &TestDb, user: &str, password: &str) -> Client {
    let (client, connection) =
        tokio_postgres::connect(&url_as(db, user, password), NoTls).await.unwrap_or_else(|e| panic!("{user}: {e}"));
    tokio::spawn(connection);
    client
}

fn migrate(db: &TestDb, loader: &str, reader: &str) -> String {
    let output = Command::new(onyx_binary())
        .args(["migrate"])
        .env("ONYX_WAREHOUSE_URL", &db.url)
        .env("ONYX_LOADER_PASSWORD", loader)
        .env("ONYX_READER_PASSWORD", reader)
        .env_remove("ONYX_LOADER_PASSWORD_SECRET")
        .env_remove("ONYX_READER_PASSWORD_SECRET")
        .env_remove("ONYX_WAREHOUSE_SECRET")
        .output()
        .expect("run onyx migrate");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "onyx migrate failed: {text}");
    text
}

/// Whether `password` matches the role's stored SCRAM-SHA-256 verifier
/// (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, RFC 5802/7677): StoredKey =
/// SHA-256(HMAC(Hi(password, salt, iterations), "Client Key")). The test server trusts local
/// connections, so logging in would not prove the password; the verifier does.
async fn password_matches(admin: &Client, role: &str, password: &str) -> bool {
    let stored: String = admin
        .query_one("SELECT rolpassword FROM pg_authid WHERE rolname = $1", &[&role])
        .await
        .expect("read pg_authid")
        .get(0);
    let (scheme, rest) = stored.split_once('$').expect("verifier scheme");
    assert_eq!(scheme, "SCRAM-SHA-256", "{role} has no SCRAM verifier");
    let (params, keys) = rest.split_once('$').expect("verifier keys");
    let (iterations, salt) = params.split_once(':').expect("iterations:salt");
    let (stored_key, _) = keys.split_once(':').expect("StoredKey:ServerKey");
    let b64 = base64::engine::general_purpose::STANDARD;
    let salt = b64.decode(salt).expect("salt");
    let iterations: u32 = iterations.parse().expect("iterations");
    let hmac = |key: &[u8], data: &[u8]| {
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("any key size");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    };
    // Hi(): PBKDF2-HMAC-SHA-256 with one block.
    let mut block = hmac(password.as_bytes(), &[salt.as_slice(), &[0, 0, 0, 1]].concat());
    let mut salted = block.clone();
    for _ in 1..iterations {
        block = hmac(password.as_bytes(), &block);
        salted.iter_mut().zip(&block).for_each(|(s, b)| *s ^= b);
    }
    let client_key = hmac(&salted, b"Client Key");
    b64.encode(Sha256::digest(&client_key)) == stored_key
}

/// Mechanism: `onyx migrate` (the CLI binary, passwords in `ONYX_LOADER_PASSWORD` /
/// `ONYX_READER_PASSWORD`) against the real PostgreSQL, then connections *as the roles*:
/// `onyx_reader` SELECTs `fact_payment_current` (a view) and is refused INSERT with SQLSTATE
/// 42501; `onyx_loader` runs extract → transform → load (`run_pipeline`, its `migrate` included)
/// and the rows land. Run twice, so the second run checks idempotence; the passwords appear in
/// none of the command's output, and each role's stored SCRAM verifier matches its password
/// (checked in the test: the local server trusts its connections). Without the roles code, the
/// connections as the roles fail.
#[tokio::test]
async fn migrate_creates_a_reader_that_only_reads_and_a_loader_that_loads() {
    let _turn = ROLES.lock().await;
    let source_db = TestDb::seeded("roles_src").await;
    let mut source = source_db.connect().await;
    let warehouse = TestDb::create("roles_wh").await;
    // Roles are cluster-wide: other runs of this test share them, so every run sets fresh passwords.
    let loader_password = unique("Lp");
    let reader_password = unique("Rp");
    for _ in 0..2 {
        let out = migrate(&warehouse, &loader_password, &reader_password);
        assert!(out.contains("role onyx_loader is set up") && out.contains("role onyx_reader is set up"), "{out}");
        assert!(!out.contains(&loader_password) && !out.contains(&reader_password), "a password was printed: {out}");
    }

    let admin = warehouse.connect().await;
    assert!(password_matches(&admin, "onyx_loader", &loader_password).await, "onyx_loader's password was not set");
    assert!(password_matches(&admin, "onyx_reader", &reader_password).await, "onyx_reader's password was not set");
    assert!(!password_matches(&admin, "onyx_reader", &loader_password).await, "the verifier check accepts anything");

    let mut loader = connect_as(&warehouse, "onyx_loader", &loader_password).await;
    let (_, ingestion, _) = local_dir("roles-in");
    let (_, processed, _) = local_dir("roles-out");
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut loader).await;
    let loaded: i64 = loader.query_one("SELECT count(*) FROM fact_payment", &[]).await.expect("count").get(0);
    assert!(loaded > 0, "the load as onyx_loader wrote no payments");

    let reader = connect_as(&warehouse, "onyx_reader", &reader_password).await;
    let read: i64 =
        reader.query_one("SELECT count(*) FROM fact_payment_current", &[]).await.expect("reader SELECT").get(0);
    assert!(read > 0, "onyx_reader sees no current payments");
    let refused =
        reader.batch_execute("INSERT INTO dim_currency DEFAULT VALUES").await.expect_err("onyx_reader must not INSERT");
    assert_eq!(refused.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE), "{refused}");
    let refused = reader
        .batch_execute("CREATE TABLE onyx_reader_was_here (x int)")
        .await
        .expect_err("onyx_reader must not CREATE");
    assert_eq!(refused.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE), "{refused}");
}

async fn put_secret(value: &str) -> String {
    let aws = aws_config::load_from_env().await;
    let client = aws_sdk_secretsmanager::Client::new(&aws);
    let out = client
        .create_secret()
        .name(unique("onyx/warehouse-role-"))
        .secret_string(value)
        .send()
        .await
        .expect("create secret in moto");
    out.arn().expect("secret arn").to_string()
}

fn onyx_migrate(db: &TestDb, env: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(onyx_binary());
    command.arg("migrate").env("ONYX_WAREHOUSE_URL", &db.url).env_remove("ONYX_WAREHOUSE_SECRET");
    for var in
        ["ONYX_LOADER_PASSWORD", "ONYX_READER_PASSWORD", "ONYX_LOADER_PASSWORD_SECRET", "ONYX_READER_PASSWORD_SECRET"]
    {
        command.env_remove(var);
    }
    let output = command.envs(env.iter().copied()).output().expect("run onyx migrate");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// Mechanism: the passwords come from Secrets Manager (moto's server, through
/// `ONYX_LOADER_PASSWORD_SECRET` as JSON `{"password": …}` and `ONYX_READER_PASSWORD_SECRET` as the
/// bare password), checked against each role's stored SCRAM verifier; a password given both ways
/// is refused with a message naming the two variables and not the password.
#[tokio::test]
async fn migrate_reads_role_passwords_from_secrets_manager_and_refuses_two_sources() {
    let _turn = ROLES.lock().await;
    let warehouse = TestDb::create("roles_secret").await;
    let loader_password = unique("Ls");
    let reader_password = unique("Rs");
    let loader_secret = put_secret(&format!("{{\"password\": \"{loader_password}\"}}")).await;
    let reader_secret = put_secret(&reader_password).await;
    let (ok, out) = onyx_migrate(
        &warehouse,
        &[("ONYX_LOADER_PASSWORD_SECRET", &loader_secret), ("ONYX_READER_PASSWORD_SECRET", &reader_secret)],
    );
    assert!(ok, "{out}");
    assert!(!out.contains(&loader_password) && !out.contains(&reader_password), "a password was printed: {out}");
    let admin = warehouse.connect().await;
    assert!(password_matches(&admin, "onyx_loader", &loader_password).await, "loader password from JSON secret");
    assert!(password_matches(&admin, "onyx_reader", &reader_password).await, "reader password from plain secret");

    let (ok, out) = onyx_migrate(
        &warehouse,
        &[("ONYX_READER_PASSWORD", "Xy-not-used"), ("ONYX_READER_PASSWORD_SECRET", &reader_secret)],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("ONYX_READER_PASSWORD and ONYX_READER_PASSWORD_SECRET are both set"), "{out}");
    assert!(!out.contains("Xy-not-used") && !out.contains(&reader_password), "{out}");
}
