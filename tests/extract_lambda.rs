//! The extract Lambda's handler, driven by a scheduled-event fixture, with credentials in moto's
//! Secrets Manager and output in moto's S3; and bad configurations, which fail clearly, write
//! nothing and never leak a credential.

use std::process::Command;
use std::str::FromStr;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use onyx_core::db::DbTarget;
use onyx_core::extract::ExtractOptions;
use onyx_core::handlers::ExtractFunction;
use onyx_core::keys;
use onyx_core::storage::Location;
use serde_json::{Value, json};

use crate::support::{CapturedLogs, TestDb, local_dir, onyx_binary, pg_base_url, s3_bucket, unique};

fn scheduled_event() -> EventBridgeEvent<Value> {
    serde_json::from_str(include_str!("fixtures/scheduled-event.json")).expect("fixture parses")
}

/// The base URL's password, or a stand-in (trust authentication ignores it; the logs must not
/// contain it either way).
fn password() -> String {
    let config = tokio_postgres::Config::from_str(&pg_base_url()).expect("ONYX_TEST_PG_URL parses");
    config.get_password().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_else(|| "s3cr3t-Pa55word".into())
}

async fn put_secret(value: &str) -> String {
    let aws = aws_config::load_from_env().await;
    let client = aws_sdk_secretsmanager::Client::new(&aws);
    let out = client
        .create_secret()
        .name(unique("onyx/source-"))
        .secret_string(value)
        .send()
        .await
        .expect("create secret in moto");
    out.arn().expect("secret arn").to_string()
}

fn secret_json(db: &TestDb, port: u16) -> String {
    let config = tokio_postgres::Config::from_str(&pg_base_url()).expect("ONYX_TEST_PG_URL parses");
    json!({
        "host": "127.0.0.1", "port": port, "dbname": db.name,
        "username": config.get_user().unwrap_or("root"), "password": password(),
        "engine": "postgres"
    })
    .to_string()
}

#[tokio::test]
async fn lambda_reads_its_secret_writes_to_s3_and_logs_no_password() {
    crate::support::aws_endpoint();
    let db = TestDb::seeded("lambda").await;
    let secret = put_secret(&secret_json(&db, 5432)).await;
    let (_, store) = s3_bucket("lambda").await;
    let function = ExtractFunction {
        source: DbTarget::Secret(secret),
        ingestion: store.clone(),
        options: ExtractOptions::default(),
    };

    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let summary = function.handle(scheduled_event()).await.expect("handler succeeds");

    assert_eq!(summary["total_rows"], 48_066);
    assert_eq!(summary["rows"]["payment"], 15_836);
    let run_id = summary["run_id"].as_str().expect("run id");
    store.get(&keys::manifest(run_id)).await.expect("the manifest is in S3");
    let text = logs.text();
    let info: Vec<Value> =
        text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|l| l["level"] == "INFO").collect();
    assert_eq!(info.len(), 1, "one INFO line per run: {text}");
    assert_eq!(info[0]["run_id"], run_id);
    assert_eq!(info[0]["total_rows"], 48_066);
    assert!(info[0]["rows"].as_str().expect("rows per table").contains("\"sales_order\":11187"));
    assert!(info[0]["duration_ms"].is_u64());
    assert!(!text.contains(&password()), "the password leaked into the logs: {text}");

    // A second scheduled run finds nothing new and says so.
    let idle = function.handle(scheduled_event()).await.expect("idle run");
    assert_eq!(idle["total_rows"], 0);

    // While another extract holds the place after the newest run (the CLI, say), a scheduled
    // run stands aside: success, a WARN saying why, no ERROR (no alarm), nothing written.
    let newest = idle["run_id"].as_str().expect("run id").to_string();
    let claim = json!({"run_id": "20991231T000000000-cafe", "previous_run_id": newest, "attempt": 0,
        "claimed_at": onyx_core::chrono::Utc::now(), "lease_seconds": 1200});
    store.put(&keys::claim(Some(&newest), 0), serde_json::to_vec(&claim).expect("json")).await.expect("claim");
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let skipped = function.handle(scheduled_event()).await.expect("standing aside is not a failure");
    assert!(skipped["skipped"].as_str().is_some_and(|s| s.contains("20991231T000000000-cafe")), "{skipped}");
    let text = logs.text();
    assert!(text.contains("\"level\":\"WARN\"") && !text.contains("\"level\":\"ERROR\""), "{text}");
}

/// A secret Terraform created without a value.
async fn empty_secret() -> String {
    let aws = aws_config::load_from_env().await;
    let client = aws_sdk_secretsmanager::Client::new(&aws);
    let out = client.create_secret().name(unique("onyx/source-")).send().await.expect("create secret in moto");
    out.arn().expect("secret arn").to_string()
}

/// Issue #13 item 8 (mechanism: `DbError::is_configuration` and the handlers' `not_configured`).
/// A configuration no retry can fix — above all a fresh deploy's secret that has no value yet —
/// ends the invocation *without* a function error (Lambda retries failed async invocations twice
/// and then dead-letters them, on every scheduled run), with one ERROR line saying what to set.
/// A database that cannot be reached is still a retryable function error. Nothing is written,
/// nothing leaks.
#[tokio::test]
async fn bad_secrets_fail_clearly_without_writing_or_leaking() {
    crate::support::aws_endpoint();
    let db = TestDb::seeded("badsecret").await;
    let (_, store) = s3_bucket("badsecret").await;
    let no_value = empty_secret().await;
    let cases = [
        (
            "secret without a value",
            no_value.clone(),
            "has no value (Secrets Manager can't find the specified secret value",
        ),
        (
            "malformed JSON",
            put_secret(&format!("{{\"host\": \"127.0.0.1\", \"password\": \"{}\"", password())).await,
            "malformed",
        ),
        (
            "missing field",
            put_secret(&json!({"host": "127.0.0.1", "password": password()}).to_string()).await,
            "a field is missing",
        ),
        (
            "unknown secret",
            "arn:aws:secretsmanager:eu-west-2:123456789012:secret:nope".to_string(),
            "can't find the specified secret.",
        ),
        (
            "unreachable database",
            put_secret(&secret_json(&db, 1)).await,
            "cannot connect to the source database at 127.0.0.1:1",
        ),
    ];
    for (case, secret, expected) in cases {
        let function = ExtractFunction {
            source: DbTarget::Secret(secret.clone()),
            ingestion: store.clone(),
            options: ExtractOptions::default(),
        };
        let logs = CapturedLogs::default();
        let guard = logs.install();
        let outcome = function.handle(scheduled_event()).await;
        drop(guard);
        let message = match (case, outcome) {
            ("unreachable database", Err(error)) => {
                assert!(error.retryable, "{case}: a connection failure may pass: {error}");
                error.message
            }
            (_, Ok(answer)) => {
                let not_run = answer["not_run"].as_str().unwrap_or_else(|| panic!("{case}: {answer}")).to_string();
                assert!(not_run.contains(&secret), "{case}: the secret is named: {not_run}");
                assert_eq!(answer.as_object().map(|o| o.len()), Some(2), "{case}: no run summary: {answer}");
                not_run
            }
            (_, other) => panic!("{case}: {other:?}"),
        };
        assert!(message.contains(expected), "{case}: {message}");
        assert!(!message.contains(&password()), "{case}: password in the error: {message}");
        let text = logs.text();
        let errors = text.lines().filter(|l| l.contains("\"level\":\"ERROR\"")).count();
        assert_eq!(errors, 1, "{case}: one ERROR line raises the alarm: {text}");
        assert!(!text.contains(&password()), "{case}: password in the logs: {text}");
    }
    assert!(store.list("", None).await.expect("list").is_empty(), "nothing was written");

    // The daily verification (load function, `{"onyx": "verify"}`) on a fresh deploy: the same.
    let (_, processed) = s3_bucket("badsecret-out").await;
    let mut load = onyx_core::handlers::LoadFunction::new(DbTarget::Secret(empty_secret().await), processed.clone());
    load.verify = Some(onyx_core::handlers::VerifySetup {
        source: DbTarget::Secret(no_value.clone()),
        credentials: onyx_core::config::VerifyCredentials::OwnReadOnly,
        ingestion: store.clone(),
    });
    let answer = load.verify().await.expect("not configured is not a function error");
    assert!(
        answer["not_run"].as_str().is_some_and(|m| m.contains(&no_value) && m.contains("make secrets")),
        "{answer}"
    );
    // And a processed run's event while the warehouse secret has no value: no function error.
    let event = crate::support::s3_event("processed", &[keys::manifest("20261128T070000000-abcd")]);
    let answer = load.handle(event).await.expect("not configured is not a function error");
    assert!(answer["not_run"].as_str().is_some_and(|m| m.contains("warehouse database secret")), "{answer}");
    assert!(processed.list("", None).await.expect("list").is_empty(), "nothing was written");
}

#[tokio::test]
async fn cli_exits_non_zero_with_a_clear_message_on_bad_configuration() {
    let db = TestDb::seeded("badcli").await;
    let (_, _, dir) = local_dir("badcli");
    let missing_bucket = format!("s3://{}", unique("onyx-missing-"));

    let run = |args: &[&str]| {
        let out = Command::new(onyx_binary()).args(args).output().expect("run onyx");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let dir_arg = dir.display().to_string();
    let (code, stderr) =
        run(&["extract", "--source-url", "postgres://root:hunter2@127.0.0.1:1/totesys", "--ingestion", &dir_arg]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("cannot connect to the source database at 127.0.0.1:1/totesys"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let (code, stderr) = run(&["extract", "--source-url", &db.url, "--ingestion", &missing_bucket]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains(&missing_bucket) && stderr.contains("NoSuchBucket"), "{stderr}");

    let (code, stderr) = run(&["extract", "--source-url", &db.url, "--ingestion", "gs://elsewhere"]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("only local directories and s3:// locations"), "{stderr}");

    assert!(!dir.exists() || std::fs::read_dir(&dir).expect("dir").next().is_none(), "nothing was written");
    let _ = Location::Local(dir);
}

#[tokio::test]
async fn tls_is_used_when_the_url_asks_for_it() {
    let db = TestDb::create("tls").await;
    let url = format!("{}?sslmode=require", db.url);
    let client = DbTarget::Url(url.into())
        .connect("source")
        .await
        .expect("a TLS connection (the local PostgreSQL must have ssl = on, as Debian's packages configure it)");
    let row = client
        .query_one("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .expect("pg_stat_ssl");
    assert!(row.get::<_, bool>(0), "the connection is encrypted");
    assert!(row.get::<_, Option<String>>(1).is_some_and(|v| v.starts_with("TLS")));
}
