//! Operating a deployed stack from `onyx` (issue #14): `onyx logs`, `onyx status --stack` and
//! `onyx dlq [redrive]` against moto's CloudWatch Logs, CloudWatch alarms and SQS over HTTP, with
//! log events written in the functions' real format (`telemetry::lambda_subscriber`). Lambda's
//! Invoke API, which moto cannot run without Docker, and AWS's error answers (no permission,
//! expired credentials) come from a local HTTP stand-in that records what it received, reached
//! through the SDK's per-service endpoint variables (`AWS_ENDPOINT_URL_LAMBDA`, …).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use onyx_core::stack::{
    OUTPUT_ALARM_TOPIC, OUTPUT_DATA_QUALITY_TOPIC, OUTPUT_DEAD_LETTER_QUEUES, OUTPUT_FUNCTION_NAMES,
    OUTPUT_INGESTION_BUCKET, OUTPUT_LOG_GROUPS, OUTPUT_PROCESSED_BUCKET, STAGES,
};
use serde_json::{Value, json};

use crate::support::{aws_endpoint, onyx_binary, s3_client, unique};

/// A deployed stack's names in moto, and its `terraform output -json` file.
struct TestStack {
    prefix: String,
    outputs: std::path::PathBuf,
    topic: String,
}

impl TestStack {
    fn function(&self, stage: &str) -> String {
        format!("{}-{stage}", self.prefix)
    }
    fn log_group(&self, stage: &str) -> String {
        format!("/aws/lambda/{}-{stage}", self.prefix)
    }
    fn queue(&self, stage: &str) -> String {
        format!("{}-{stage}-dlq", self.prefix)
    }
    fn data_quality_topic(&self) -> String {
        self.topic.replace("-alarms", "-data-quality")
    }

    /// Writes the outputs file; with `create`, makes the log groups, queues and buckets in moto.
    async fn new(create: bool) -> TestStack {
        aws_endpoint();
        let prefix = unique("onyx-op-").to_lowercase();
        let topic = format!("arn:aws:sns:eu-west-2:123456789012:{prefix}-alarms");
        let stack = TestStack { outputs: std::env::temp_dir().join(format!("{prefix}.json")), prefix, topic };
        let per_stage = |name: &dyn Fn(&str) -> String| json!({"sensitive": false, "value": STAGES.iter().map(|s| (s.to_string(), json!(name(s)))).collect::<serde_json::Map<_, _>>()});
        let outputs = json!({
            OUTPUT_FUNCTION_NAMES: per_stage(&|s| stack.function(s)),
            OUTPUT_LOG_GROUPS: per_stage(&|s| stack.log_group(s)),
            OUTPUT_DEAD_LETTER_QUEUES: per_stage(&|s| stack.queue(s)),
            OUTPUT_ALARM_TOPIC: {"sensitive": false, "value": stack.topic},
            OUTPUT_DATA_QUALITY_TOPIC: {"sensitive": false, "value": stack.data_quality_topic()},
            OUTPUT_INGESTION_BUCKET: {"sensitive": false, "value": format!("{}-ingestion", stack.prefix)},
            OUTPUT_PROCESSED_BUCKET: {"sensitive": false, "value": format!("{}-processed", stack.prefix)},
        });
        std::fs::write(&stack.outputs, serde_json::to_vec_pretty(&outputs).expect("json")).expect("write outputs");
        if create {
            let logs = logs_client().await;
            let sqs = sqs_client().await;
            for stage in STAGES {
                logs.create_log_group().log_group_name(stack.log_group(stage)).send().await.expect("create log group");
                logs.create_log_stream()
                    .log_group_name(stack.log_group(stage))
                    .log_stream_name("2026/11/29/[$LATEST]abc")
                    .send()
                    .await
                    .expect("create log stream");
                sqs.create_queue().queue_name(stack.queue(stage)).send().await.expect("create queue");
            }
            let s3 = s3_client().await;
            for bucket in ["ingestion", "processed"] {
                s3.create_bucket()
                    .bucket(format!("{}-{bucket}", stack.prefix))
                    .create_bucket_configuration(
                        aws_sdk_s3::types::CreateBucketConfiguration::builder()
                            .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest2)
                            .build(),
                    )
                    .send()
                    .await
                    .expect("create bucket");
            }
        }
        stack
    }

    /// Writes one event into a stage's log group at `at_ms`.
    async fn log(&self, stage: &str, at_ms: i64, message: &str) {
        logs_client()
            .await
            .put_log_events()
            .log_group_name(self.log_group(stage))
            .log_stream_name("2026/11/29/[$LATEST]abc")
            .log_events(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(at_ms)
                    .message(message)
                    .build()
                    .expect("event"),
            )
            .send()
            .await
            .expect("put log events");
    }

    async fn queue_url(&self, stage: &str) -> String {
        let found = sqs_client().await.get_queue_url().queue_name(self.queue(stage)).send().await.expect("queue url");
        found.queue_url().expect("url").to_string()
    }

    async fn dead_letter(&self, stage: &str, body: &str) {
        let url = self.queue_url(stage).await;
        sqs_client().await.send_message().queue_url(url).message_body(body).send().await.expect("send message");
    }

    async fn queue_bodies(&self, stage: &str) -> Vec<String> {
        let url = self.queue_url(stage).await;
        let sqs = sqs_client().await;
        let mut bodies = Vec::new();
        let mut handles = Vec::new();
        loop {
            let got = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .visibility_timeout(30)
                .send()
                .await
                .expect("receive");
            if got.messages().is_empty() {
                break;
            }
            for m in got.messages() {
                bodies.push(m.body().unwrap_or_default().to_string());
                handles.push(m.receipt_handle().unwrap_or_default().to_string());
            }
        }
        for handle in handles {
            sqs.change_message_visibility()
                .queue_url(&url)
                .receipt_handle(handle)
                .visibility_timeout(0)
                .send()
                .await
                .expect("release");
        }
        bodies.sort();
        bodies
    }

    fn onyx(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let mut command = Command::new(onyx_binary());
        command.args(args).env("ONYX_STACK", &self.outputs);
        for var in ["ONYX_SOURCE_URL", "ONYX_WAREHOUSE_URL", "ONYX_INGESTION", "ONYX_PROCESSED"] {
            command.env_remove(var);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let out = command.output().expect("run onyx");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

async fn logs_client() -> aws_sdk_cloudwatchlogs::Client {
    aws_sdk_cloudwatchlogs::Client::new(&aws_config::load_from_env().await)
}

async fn sqs_client() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&aws_config::load_from_env().await)
}

async fn cloudwatch_client() -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::new(&aws_config::load_from_env().await)
}

fn now_ms() -> i64 {
    onyx_core::chrono::Utc::now().timestamp_millis()
}

/// One request a stand-in received: request line, headers (lower-case names), body.
type Recorded = (String, Vec<(String, String)>, String);

/// A local HTTP server standing in for an AWS API: answers each request with `answer`'s
/// (status, JSON body) and records the requests (request line, headers, body).
struct StandIn {
    url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl StandIn {
    fn start(answer: impl Fn(usize) -> (u16, String) + Send + 'static) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind stand-in");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut headers = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.trim_end().split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                }
                let length: usize =
                    headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                recorded.lock().expect("requests").push((
                    request_line.trim_end().to_string(),
                    headers,
                    String::from_utf8_lossy(&body).into_owned(),
                ));
                let (status, body) = answer(n);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} Stand-in\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: stand-in-{n}\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        StandIn { url, requests }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests").clone()
    }
}

/// Mechanism: `onyx logs` reads each function's log group (from the stack outputs) with
/// FilterLogEvents from --since, merges the three in time order and renders each of the
/// functions' JSON lines as time, stage, level, run id, message and fields; --level and --run
/// become a JSON filter pattern and the same check locally; --stage reads one group.
#[tokio::test]
async fn logs_merge_the_three_functions_in_time_order_one_line_per_event() {
    let stack = TestStack::new(true).await;
    let run = "20261129T050000000-ab12";
    let other = "20261129T043000000-cd34";
    let extract = crate::support::lambda_lines(|| {
        tracing::info!(stage = "extract", run_id = run, rows = 12, "extract run done");
    });
    let transform = crate::support::lambda_lines(|| {
        tracing::warn!(stage = "transform", run_id = run, reason = "operator", "run is parked: passed over");
        tracing::info!(stage = "transform", run_id = other, "run already transformed; nothing to do");
    });
    let load = crate::support::lambda_lines(|| {
        tracing::error!(
            stage = "load",
            run_id = run,
            retryable = false,
            error = "duplicate key (23505)",
            "load failed"
        );
    });
    let base = now_ms() - 10 * 60_000;
    stack.log("transform", base + 2_000, &transform[0]).await;
    stack.log("transform", base + 4_000, &transform[1]).await;
    stack.log("extract", base + 1_000, &extract[0]).await;
    // The Lambda platform's own lines and the EMF metric records share the log group.
    stack.log("load", base + 2_500, "START RequestId: 8f0c Version: $LATEST").await;
    stack.log("load", base + 2_600, r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[]},"Stage":"load","Rows":3}"#).await;
    stack.log("load", base + 3_000, &load[0]).await;
    // Older than --since: never shown.
    stack.log("extract", now_ms() - 3 * 3_600_000, &extract[0]).await;

    let time = |ms: i64| {
        onyx_core::chrono::DateTime::from_timestamp_millis(ms)
            .expect("time")
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    };
    let (code, out, err) = stack.onyx(&["logs", "--since", "2h"], &[]);
    assert_eq!(code, 0, "{err}");
    let expected = [
        format!("{}  extract    INFO   {run}  extract run done  rows=12", time(base + 1_000)),
        format!("{}  transform  WARN   {run}  run is parked: passed over  reason=operator", time(base + 2_000)),
        format!(
            "{}  load       -      -                        START RequestId: 8f0c Version: $LATEST",
            time(base + 2_500)
        ),
        format!(
            "{}  load       ERROR  {run}  load failed  error=\"duplicate key (23505)\"  retryable=false",
            time(base + 3_000)
        ),
        format!("{}  transform  INFO   {other}  run already transformed; nothing to do", time(base + 4_000)),
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected, "stderr: {err}");

    let (_, warnings, _) = stack.onyx(&["logs", "--since", "2h", "--level", "warn"], &[]);
    assert_eq!(warnings.lines().collect::<Vec<_>>(), [expected[1].as_str(), expected[3].as_str()]);

    let (_, one_run, _) = stack.onyx(&["logs", "--since", "2h", "--run", run], &[]);
    assert_eq!(one_run.lines().collect::<Vec<_>>(), [expected[0].as_str(), expected[1].as_str(), expected[3].as_str()]);

    let (_, one_stage, _) = stack.onyx(&["logs", "--since", "2h", "--stage", "transform"], &[]);
    assert_eq!(one_stage.lines().collect::<Vec<_>>(), [expected[1].as_str(), expected[4].as_str()]);

    let (code, nothing, _) = stack.onyx(&["logs", "--since", "2h", "--run", "20261129T000000000-none"], &[]);
    assert_eq!(code, 0);
    assert!(nothing.starts_with("no log events match since "), "{nothing}");
}

/// Mechanism: `onyx logs --follow` polls FilterLogEvents from the newest time it printed and
/// prints only events it has not printed yet.
#[tokio::test]
async fn logs_follow_prints_new_events_as_they_arrive_once_each() {
    let stack = TestStack::new(true).await;
    let first =
        crate::support::lambda_lines(|| tracing::info!(stage = "extract", run_id = "r-first", "extract run done"));
    let second = crate::support::lambda_lines(|| tracing::error!(stage = "load", run_id = "r-second", "load failed"));
    stack.log("extract", now_ms() - 1_000, &first[0]).await;
    let mut child = Command::new(onyx_binary())
        .args(["logs", "--follow", "--poll", "1s", "--since", "5m"])
        .env("ONYX_STACK", &stack.outputs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start onyx logs --follow");
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let next = |what: &str| {
        lines.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("no line for {what} within 20 s"))
    };
    assert!(next("the first event").contains("r-first"));
    stack.log("load", now_ms(), &second[0]).await;
    let line = next("the event written later");
    assert!(line.contains("  load       ERROR  r-second") && line.ends_with("load failed"), "{line}");
    // Several polls later, nothing is printed twice.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(again) = lines.recv_timeout(Duration::from_millis(200)) {
            panic!("printed again: {again}");
        }
    }
    child.kill().expect("stop onyx logs --follow");
    let _ = child.wait();
}

/// Mechanism: a failed AWS call becomes one line naming the resource and what to do: a log group
/// that does not exist (moto's ResourceNotFoundException), no permission (AccessDeniedException)
/// and expired credentials (ExpiredTokenException), the last two as AWS answers them, from a
/// stand-in reached through AWS_ENDPOINT_URL_CLOUDWATCH_LOGS.
#[tokio::test]
async fn logs_errors_are_one_clear_line() {
    let missing = TestStack::new(false).await;
    let (code, out, err) = missing.onyx(&["logs", "--since", "1h"], &[]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        err.trim_end(),
        format!(
            "error: log group {} of the extract function does not exist: has the stack been applied, and do \
             AWS_REGION and the stack outputs (log_groups) name the same deployment?",
            missing.log_group("extract")
        )
    );

    let stack = TestStack::new(true).await;
    for (code_name, message, says) in [
        (
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/oncall is not authorized to perform: logs:FilterLogEvents",
            "permission denied: the AWS identity in use is not allowed this action (see docs/runbook.md#permissions)",
        ),
        (
            "ExpiredTokenException",
            "The security token included in the request is expired",
            "the AWS credentials have expired: refresh them (`aws sso login`, or a new session token) and run again",
        ),
    ] {
        let body = json!({"__type": code_name, "message": message}).to_string();
        let aws = StandIn::start(move |_| (400, body.clone()));
        let (code, _, err) =
            stack.onyx(&["logs", "--since", "1h"], &[("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", aws.url.as_str())]);
        assert_eq!(code, 1);
        assert_eq!(
            err.trim_end(),
            format!("error: reading log group {}: {says} ({code_name}: {message})", stack.log_group("extract"))
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(aws.requests()[0].0.starts_with("POST / "), "FilterLogEvents reached the stand-in");
    }
}

/// A Lambda on-failure destination record, as Lambda writes it to the queue.
fn invocation_record(function: &str, payload: &Value, error: &str) -> String {
    json!({
        "version": "1.0",
        "timestamp": "2026-11-29T04:00:00.000Z",
        "requestContext": {
            "requestId": "c0ffee",
            "functionArn": format!("arn:aws:lambda:eu-west-2:123456789012:function:{function}:$LATEST"),
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "transform", "errorMessage": error}
    })
    .to_string()
}

fn s3_event(key: &str) -> Value {
    json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "onyx-ingestion"}, "object": {"key": key}}}]})
}

/// Mechanism: `onyx status --stack` reads the alarms that notify the stack's topic
/// (DescribeAlarms), each queue's depth and oldest message (SQS), each function's last ERROR
/// line and the load's last WarehouseFreshnessSeconds record (FilterLogEvents), and prints a
/// verdict; degraded exits 2.
#[tokio::test]
async fn status_of_a_deployed_stack_names_what_is_wrong() {
    let stack = TestStack::new(true).await;
    let cloudwatch = cloudwatch_client().await;
    // Outage alarms on the alarm topic; a data-quality alarm on its own topic (issue #24 item 9).
    let data_quality = stack.data_quality_topic();
    for (name, state, topic) in [
        ("run-blocked", "ALARM", &stack.topic),
        ("verify-differences", "OK", &data_quality),
        ("warehouse-stale", "OK", &stack.topic),
    ] {
        let alarm = format!("{}-{name}", stack.prefix);
        cloudwatch
            .put_metric_alarm()
            .alarm_name(&alarm)
            .namespace("Onyx")
            .metric_name("BlockedRuns")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Maximum)
            .period(300)
            .evaluation_periods(1)
            .threshold(0.0)
            .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
            .alarm_actions(topic)
            .send()
            .await
            .expect("put alarm");
        cloudwatch
            .set_alarm_state()
            .alarm_name(&alarm)
            .state_value(state.into())
            .state_reason(format!("Threshold Crossed: test sets {state}"))
            .send()
            .await
            .expect("set alarm state");
    }
    // Another stack's alarm: not ours.
    cloudwatch
        .put_metric_alarm()
        .alarm_name(format!("{}-someone-else", stack.prefix))
        .namespace("Other")
        .metric_name("X")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Maximum)
        .period(60)
        .evaluation_periods(1)
        .threshold(0.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .alarm_actions("arn:aws:sns:eu-west-2:123456789012:other")
        .send()
        .await
        .expect("put alarm");
    let payload = s3_event("_runs/2026/11/29/20261129T040000000-ab12.json");
    stack.dead_letter("transform", &invocation_record(&stack.function("transform"), &payload, "storage timeout")).await;
    stack.dead_letter("transform", &invocation_record(&stack.function("transform"), &payload, "storage timeout")).await;
    let failed = crate::support::lambda_lines(|| {
        tracing::error!(stage = "load", run_id = "20261129T040000000-ab12", error = "deadlock", "load failed");
    });
    let at = now_ms() - 60_000;
    stack.log("load", at, &failed[0]).await;
    stack.log("load", at + 10, r#"{"level":"INFO","message":"loaded","stage":"load"}"#).await;
    let freshness = onyx_core::telemetry::gauge_document(
        "WarehouseFreshnessSeconds",
        1_800.0,
        "Seconds",
        &[("Stage", "load")],
        json!({}),
    );
    stack.log("load", now_ms() - 600_000, &freshness.to_string()).await;

    let (code, out, err) = stack.onyx(&["status"], &[]);
    assert_eq!(code, 2, "degraded exits 2: {out}{err}");
    let time = onyx_core::chrono::DateTime::from_timestamp_millis(at)
        .expect("time")
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "no extract run yet: run `onyx extract` (or `onyx run`)", "the stack's buckets were read");
    let from = lines.iter().position(|l| l.starts_with("alarms")).expect("alarms section");
    assert_eq!(lines[from], "alarms           1 of 3 in ALARM");
    assert!(lines[from + 1].starts_with(&format!("  ALARM             {}-run-blocked  since ", stack.prefix)), "{out}");
    assert_eq!(lines[from + 2], "    Threshold Crossed: test sets ALARM");
    assert!(lines[from + 3].starts_with(&format!("  OK                {}-verify-differences", stack.prefix)), "{out}");
    assert!(lines[from + 4].starts_with(&format!("  OK                {}-warehouse-stale", stack.prefix)), "{out}");
    assert_eq!(lines[from + 5], "dead-letter queues");
    assert_eq!(lines[from + 6], format!("  extract   {:<32} empty", stack.queue("extract")));
    assert!(
        lines[from + 7].starts_with(&format!("  transform {:<32} 2 message(s), oldest ", stack.queue("transform"))),
        "{out}"
    );
    assert_eq!(lines[from + 9], "last error per function (last 24 h)");
    assert_eq!(lines[from + 10], "  extract   none");
    assert_eq!(lines[from + 11], "  transform none");
    assert_eq!(
        lines[from + 12],
        format!("  {time}  load       ERROR  20261129T040000000-ab12  load failed  error=deadlock")
    );
    assert_eq!(lines[from + 13], "warehouse freshness: newest loaded run is 40m old (the load's last report, 10m ago)");
    assert_eq!(
        lines[from + 14],
        format!(
            "verdict: degraded: alarm {}-run-blocked is in ALARM; 2 event(s) in {} (onyx dlq)",
            stack.prefix,
            stack.queue("transform")
        )
    );

    // The same verdict for a script (issue #24 item 5): one JSON document, exit 2.
    let (code, out, err) = stack.onyx(&["status", "--json"], &[]);
    assert_eq!(code, 2, "degraded exits 2: {out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    assert_eq!(report["deployed"]["verdict"], "degraded", "{report}");
    assert_eq!(report["deployed"]["problems"].as_array().map(Vec::len), Some(2), "{report}");
    assert!(report["pipeline"]["last_extract"].is_null(), "{report}");

    // Healthy: the alarm back to OK, the queue drained.
    cloudwatch
        .set_alarm_state()
        .alarm_name(format!("{}-run-blocked", stack.prefix))
        .state_value("OK".into())
        .state_reason("back to normal")
        .send()
        .await
        .expect("set alarm state");
    sqs_client().await.purge_queue().queue_url(stack.queue_url("transform").await).send().await.expect("purge");
    let (code, out, _) = stack.onyx(&["status"], &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().last(), Some("verdict: healthy"));
}

/// Mechanism: `onyx dlq` lists each queue's invocation records (original event and error);
/// `onyx dlq redrive` invokes the stage's function with each original event as an asynchronous
/// (Event) invocation and deletes a message only after Lambda answered 202; --dry-run changes
/// nothing; a refused invocation keeps its message; a record that is not an invocation stays.
#[tokio::test]
async fn dlq_lists_and_redrives_each_event_deleting_only_what_lambda_accepted() {
    let stack = TestStack::new(true).await;
    let transform = stack.function("transform");
    let first = s3_event("_runs/2026/11/29/20261129T040000000-ab12.json");
    let second = s3_event("_runs/2026/11/29/20261129T043000000-cd34.json");
    stack.dead_letter("transform", &invocation_record(&transform, &first, "storage timeout")).await;
    stack.dead_letter("transform", &invocation_record(&transform, &second, "storage timeout")).await;
    stack.dead_letter("transform", "not a record").await;

    let (code, listed, err) = stack.onyx(&["dlq", "--function", "transform"], &[]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines[0], format!("transform ({}): 3 dead-lettered event(s)", stack.queue("transform")));
    assert_eq!(
        listed.matches("    error: transform: storage timeout (RetriesExhausted after 3 attempt(s))").count(),
        2,
        "{listed}"
    );
    assert!(
        listed.contains(&format!("    event: {first}")) && listed.contains(&format!("    event: {second}")),
        "{listed}"
    );
    assert!(listed.contains("    error: not a Lambda invocation record (no requestPayload)\n    body:  not a record"));
    let (_, all, _) = stack.onyx(&["dlq"], &[]);
    assert!(all.starts_with(&format!("extract ({}): 0 dead-lettered event(s)\n", stack.queue("extract"))), "{all}");

    let lambda = StandIn::start(|_| (202, String::new()));
    let endpoint = [("AWS_ENDPOINT_URL_LAMBDA", lambda.url.as_str())];
    let (code, dry, err) = stack.onyx(&["dlq", "redrive", "--function", "transform", "--dry-run"], &endpoint);
    assert_eq!(code, 0, "{err}");
    assert_eq!(dry.matches(&format!("would invoke {transform} with ")).count(), 2, "{dry}");
    assert!(lambda.requests().is_empty(), "a dry run invokes nothing");
    assert_eq!(stack.queue_bodies("transform").await.len(), 3, "a dry run deletes nothing");

    let (code, out, err) = stack.onyx(&["dlq", "redrive", "--function", "transform"], &endpoint);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("redrive: 2 event(s) invoked again and deleted, 1 kept\n"), "{out}");
    let requests = lambda.requests();
    assert_eq!(requests.len(), 2);
    let mut payloads = Vec::new();
    for (line, headers, body) in &requests {
        assert!(line.starts_with(&format!("POST /2015-03-31/functions/{transform}/invocations ")), "{line}");
        assert!(headers.contains(&("x-amz-invocation-type".into(), "Event".into())), "{headers:?}");
        payloads.push(serde_json::from_str::<Value>(body).expect("payload is JSON"));
    }
    payloads.sort_by_key(|p| p.to_string());
    assert_eq!(payloads, [first.clone(), second.clone()], "each original event, unchanged");
    assert_eq!(stack.queue_bodies("transform").await, ["not a record"], "deleted only what Lambda accepted");

    // Twice: nothing left to invoke.
    let (code, out, _) = stack.onyx(&["dlq", "redrive", "--function", "transform"], &endpoint);
    assert_eq!(code, 0);
    assert!(out.ends_with("redrive: 0 event(s) invoked again and deleted, 1 kept\n"), "{out}");
    assert_eq!(lambda.requests().len(), 2);

    // Lambda refuses (throttled): the message stays, one clear line, exit 1.
    stack.dead_letter("transform", &invocation_record(&transform, &first, "storage timeout")).await;
    let body = json!({"__type": "TooManyRequestsException", "message": "Rate exceeded", "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}).to_string();
    let refusing = StandIn::start(move |_| (429, body.clone()));
    let (code, _, err) = stack.onyx(
        &["dlq", "redrive", "--function", "transform"],
        &[("AWS_ENDPOINT_URL_LAMBDA", refusing.url.as_str()), ("AWS_MAX_ATTEMPTS", "1")],
    );
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!("error: invoking {transform} for message "))
            && err.contains(&format!(
                "(the message stays in {}): TooManyRequestsException: Rate exceeded",
                stack.queue("transform")
            )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(stack.queue_bodies("transform").await.len(), 2, "the refused event is still there");
}
