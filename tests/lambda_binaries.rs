//! The three Lambda binaries as AWS runs them: each process is started against a stub of the
//! Lambda runtime API, receives one event, and posts its response (or its error) back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use onyx_core::keys;

use crate::support::{TestDb, local_dir, onyx_binary};

/// What the function posted back: the path (`…/response` or `…/error`) and the body.
struct Posted {
    path: String,
    body: String,
}

fn read_request(stream: &mut TcpStream) -> Option<(String, String, String)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        if header.trim().is_empty() {
            break;
        }
        if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, String::from_utf8_lossy(&body).into_owned()))
}

/// Serves `event` to the first request for work and reports what the function posts.
fn runtime_stub(event: String) -> (String, mpsc::Receiver<Posted>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the runtime stub");
    let address = listener.local_addr().expect("address").to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut served = false;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some((method, path, body)) = read_request(&mut stream) else { continue };
            if method == "GET" && path.ends_with("/runtime/invocation/next") {
                if served {
                    // Hold the next request: the test ends the process.
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_secs(60));
                        drop(stream);
                    });
                    continue;
                }
                served = true;
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() + 60_000)
                    .unwrap_or(0);
                // Connection: close, as the stub answers one request per connection: a client that
                // kept the connection for its next request could race the close and lose the post.
                let head = format!(
                    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-1\r\n\
                     Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                     Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:eu-west-2:123456789012:function:onyx\r\n\
                     Content-Length: {}\r\n\r\n",
                    event.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(event.as_bytes());
            } else {
                let _ = stream.write_all(b"HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
                let _ = tx.send(Posted { path, body });
            }
        }
    });
    (address, rx)
}

fn lambda_binary(name: &str) -> std::path::PathBuf {
    let bin = onyx_binary().with_file_name(name);
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build --workspace --bins` (make test does)",
        bin.display()
    );
    bin
}

/// Runs a Lambda binary on one event with the given environment; returns what it posted.
fn invoke(name: &str, event: String, env: &[(&str, String)]) -> Posted {
    invoke_capturing(name, event, env).0
}

/// As [`invoke`], also returning what the function wrote to stdout (its metrics, as EMF lines).
fn invoke_capturing(name: &str, event: String, env: &[(&str, String)]) -> (Posted, String) {
    let (address, posted) = runtime_stub(event);
    let mut command = Command::new(lambda_binary(name));
    command
        .env("AWS_LAMBDA_RUNTIME_API", &address)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child: Child = command.spawn().expect("start the Lambda binary");
    let mut stdout = child.stdout.take().expect("stdout");
    let output = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let result = posted.recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    let posted = result.unwrap_or_else(|_| panic!("{name} posted nothing within 60 s"));
    (posted, output.join().unwrap_or_default())
}

/// The values of the metric `name` in EMF lines.
fn metric_values(stdout: &str, name: &str) -> Vec<f64> {
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|doc| doc.get("_aws").is_some())
        .filter_map(|doc| doc.get(name).and_then(serde_json::Value::as_f64))
        .collect()
}

/// Issue #24 item 9. Mechanism: `LoadFunction::check` (`{"onyx": "check"}`, scheduled on the
/// extract's schedule) and `ops::blocked_runs`. `BlockedRuns` was emitted only when an invocation
/// failed, so while a run stayed blocked and nothing new arrived the alarm went quiet, and it
/// never reported 0 to clear. The check reports how many runs stay blocked — 1 for a recorded
/// load failure of a run the warehouse has not loaded, 0 once that run is passed (parked) — and
/// a load invocation reports it too. On main the check was "unknown command ignored".
#[tokio::test]
async fn the_load_function_reports_blocked_runs_while_they_stay_blocked() {
    let warehouse = TestDb::create("bins_check_wh").await;
    let (_, processed, processed_dir) = local_dir("bins-check");
    let env = [
        ("ONYX_WAREHOUSE_URL", format!("{}?sslmode=require", warehouse.url)),
        ("ONYX_PROCESSED", processed_dir.display().to_string()),
    ];
    let check = || invoke_capturing("onyx-load", r#"{"onyx": "check"}"#.to_string(), &env);
    // The warehouse must exist as one: the check reads the ledger (it never migrates).
    let mut client = warehouse.connect().await;
    onyx_core::load::migrate(&mut client).await.expect("migrate");

    let (posted, stdout) = check();
    assert!(posted.path.ends_with("/response"), "{}", posted.body);
    assert_eq!(metric_values(&stdout, "BlockedRuns"), vec![0.0], "nothing blocked reports 0: {stdout}");

    let run = "20261203T000000000-b10c";
    onyx_core::runs::record_failure(processed.as_ref(), "load", run, "fact_payment: 23505 duplicate key")
        .await
        .expect("record a failure");
    let (posted, stdout) = check();
    let answer: serde_json::Value = serde_json::from_str(&posted.body).expect("JSON");
    assert_eq!(answer["check"]["blocked_runs"], 1, "{answer}");
    assert_eq!(metric_values(&stdout, "BlockedRuns"), vec![1.0], "while blocked, every check says so: {stdout}");
    let (_, stdout) = check();
    assert_eq!(metric_values(&stdout, "BlockedRuns"), vec![1.0], "and the next one");

    // Parked: the ledger passes it, the next check reports 0 and the alarm clears.
    client
        .execute(
            r#"INSERT INTO onyx_load_ledger (run_id, rows, quarantined_rows, status, note)
               VALUES ($1, '{}', 0, 'parked', '{"reason": "as onyx park records it"}')"#,
            &[&run],
        )
        .await
        .expect("the ledger passes the run");
    let (_, stdout) = check();
    assert_eq!(metric_values(&stdout, "BlockedRuns"), vec![0.0], "{stdout}");
}

#[tokio::test]
async fn the_three_binaries_run_the_pipeline_under_the_lambda_runtime_api() {
    let db = TestDb::seeded("bins").await;
    let warehouse = TestDb::create("bins_wh").await;
    let (_, _, ingestion) = local_dir("bins-in");
    let (_, _, processed) = local_dir("bins-out");
    // In Lambda only TLS modes that never fall back to plaintext are accepted (issue #21).
    let env = [
        ("ONYX_SOURCE_URL", format!("{}?sslmode=require", db.url)),
        ("ONYX_WAREHOUSE_URL", format!("{}?sslmode=require", warehouse.url)),
        ("ONYX_INGESTION", ingestion.display().to_string()),
        ("ONYX_PROCESSED", processed.display().to_string()),
    ];
    let scheduled = include_str!("fixtures/scheduled-event.json").to_string();
    let extracted = invoke("onyx-extract", scheduled, &env);
    assert!(extracted.path.ends_with("/invocation/req-1/response"), "{}: {}", extracted.path, extracted.body);
    let summary: serde_json::Value = serde_json::from_str(&extracted.body).expect("JSON summary");
    assert_eq!(summary["total_rows"], 48_066);
    let manifest = keys::manifest(summary["run_id"].as_str().expect("run id"));

    let event =
        serde_json::to_string(&crate::support::s3_event("ingestion", std::slice::from_ref(&manifest))).expect("event");
    let transformed = invoke("onyx-transform", event, &env);
    assert!(transformed.path.ends_with("/response"), "{}", transformed.body);
    assert!(transformed.body.contains("\"fact_payment\":15836"), "{}", transformed.body);

    let event = serde_json::to_string(&crate::support::s3_event("processed", &[manifest])).expect("event");
    let loaded = invoke("onyx-load", event, &env);
    assert!(loaded.path.ends_with("/response"), "{}", loaded.body);
    let client = warehouse.connect().await;
    let payments: i64 = client.query_one("SELECT count(*) FROM fact_payment", &[]).await.expect("count").get(0);
    assert_eq!(payments, 15_836);

    // A function whose source is unreachable reports a typed, retryable error without credentials.
    let broken = [
        ("ONYX_SOURCE_URL", "postgres://onyx:hunter2@127.0.0.1:1/totesys?sslmode=require".to_string()),
        ("ONYX_INGESTION", ingestion.display().to_string()),
    ];
    let failed = invoke("onyx-extract", include_str!("fixtures/scheduled-event.json").to_string(), &broken);
    assert!(failed.path.ends_with("/invocation/req-1/error"), "{}", failed.path);
    let error: serde_json::Value = serde_json::from_str(&failed.body).expect("error JSON");
    assert_eq!(error["errorType"], "Onyx.Retryable");
    assert!(error["errorMessage"].as_str().expect("message").contains("127.0.0.1:1/totesys"), "{error}");
    assert!(!failed.body.contains("hunter2"));

    // Issue #21 (mechanism: db::connect_with's floor, `require` when AWS_LAMBDA_FUNCTION_NAME is
    // set): the same database with sslmode=prefer is refused before connecting, with what to set.
    let (_, _, refused_dir) = local_dir("bins-prefer");
    let weak = [
        ("ONYX_SOURCE_URL", format!("{}?sslmode=prefer", db.url)),
        ("ONYX_INGESTION", refused_dir.display().to_string()),
    ];
    let refused = invoke("onyx-extract", include_str!("fixtures/scheduled-event.json").to_string(), &weak);
    assert!(
        refused.body.contains("sslmode=prefer is weaker than ONYX_DB_MIN_SSLMODE=require"),
        "{}: {}",
        refused.path,
        refused.body
    );
    assert!(!refused_dir.exists(), "nothing was extracted");
    let public = [
        ("ONYX_SOURCE_URL", format!("{}?sslmode=require", db.url)),
        ("ONYX_INGESTION", refused_dir.display().to_string()),
        ("ONYX_DB_MIN_SSLMODE", "verify-full".to_string()),
    ];
    let refused = invoke("onyx-extract", include_str!("fixtures/scheduled-event.json").to_string(), &public);
    assert!(
        refused.body.contains("sslmode=require is weaker than ONYX_DB_MIN_SSLMODE=verify-full"),
        "{}",
        refused.body
    );
}

/// Issue #13 item 8, as AWS sees it: Lambda retries an asynchronous invocation only when the
/// function posts an error. On a fresh deploy the source secret has no value yet; the extract
/// binary must answer on `…/response` (no retry, nothing dead-lettered) with what to set.
#[tokio::test]
async fn a_fresh_deploy_without_secret_values_posts_no_function_error() {
    crate::support::aws_endpoint();
    let aws = aws_config::load_from_env().await;
    let secret = aws_sdk_secretsmanager::Client::new(&aws)
        .create_secret()
        .name(crate::support::unique("onyx/source-db-"))
        .send()
        .await
        .expect("create an empty secret in moto")
        .arn()
        .expect("arn")
        .to_string();
    let (_, _, ingestion) = local_dir("bins-fresh");
    let env = [("ONYX_SOURCE_SECRET", secret.clone()), ("ONYX_INGESTION", ingestion.display().to_string())];
    let posted = invoke("onyx-extract", include_str!("fixtures/scheduled-event.json").to_string(), &env);
    assert!(posted.path.ends_with("/invocation/req-1/response"), "{}: {}", posted.path, posted.body);
    let answer: serde_json::Value = serde_json::from_str(&posted.body).expect("JSON answer");
    let not_run = answer["not_run"].as_str().unwrap_or_else(|| panic!("{answer}"));
    assert!(not_run.contains(&secret) && not_run.contains("has no value"), "{not_run}");
    assert!(!ingestion.exists(), "nothing was written");
}
