//! `make smoke`'s verdict, offline: `onyx wait` follows a run through the real buckets (moto's
//! S3) and the real warehouse ledger, and either prints the loaded run or names the stage that did
//! not finish. (Invoking the deployed extract function needs AWS; everything after it is here.)

use std::process::Command;
use std::time::{Duration, Instant};

use onyx_core::storage::Location;
use serde_json::json;

use crate::support::{TestDb, onyx_binary, s3_bucket, unique, warehouse_db};

fn location_text(location: &Location) -> String {
    match location {
        Location::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        Location::Local(dir) => dir.display().to_string(),
    }
}

/// Runs `onyx wait` with the buckets and warehouse; returns (exit code, stdout, stderr, time).
fn wait(
    args: &[&str],
    ingestion: &Location,
    processed: &Location,
    warehouse: &TestDb,
) -> (i32, String, String, Duration) {
    let started = Instant::now();
    let out = Command::new(onyx_binary())
        .arg("wait")
        .args(args)
        .args(["--timeout", "2", "--interval", "1"])
        .args(["--ingestion", &location_text(ingestion), "--processed", &location_text(processed)])
        .args(["--warehouse-url", &warehouse.url])
        .output()
        .expect("run onyx wait");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr), started.elapsed())
}

fn answer_file(answer: &serde_json::Value) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(unique("onyx-answer-")).with_extension("json");
    std::fs::write(&path, answer.to_string()).expect("write the answer");
    path
}

/// Issue #13 item 2 (mechanism: `ops::run_progress` and `onyx wait`, the part of `make smoke`
/// after the invoke). A run is followed stage by stage: not transformed → "transform did not
/// finish" at the timeout; not loaded → "load did not finish"; loaded → the run's line and exit
/// 0; a recorded failure of an earlier run blocks at once, naming it; the extract function's
/// answers without a run (its error, `not_run`, `skipped`) fail naming the extract.
#[tokio::test]
async fn onyx_wait_names_the_stage_that_did_not_finish_or_prints_the_loaded_run() {
    crate::support::aws_endpoint();
    let source = TestDb::seeded("smoke").await;
    let (warehouse, mut warehouse_client) = warehouse_db("smoke_wh").await;
    let (ingestion_at, ingestion) = s3_bucket("smoke-in").await;
    let (processed_at, processed) = s3_bucket("smoke-out").await;
    let mut source_client = source.connect().await;

    let first =
        onyx_core::extract::run(&mut source_client, ingestion.as_ref(), &Default::default()).await.expect("extract");
    let run = first.manifest.run_id.clone();
    let answer = answer_file(&onyx_core::handlers::summary_json(&first));
    let answer_arg = answer.display().to_string();
    let follow = ["--extract-answer", answer_arg.as_str()];

    let (code, _, stderr, _) = wait(&follow, &ingestion_at, &processed_at, &warehouse);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&format!("transform did not finish for run {run} within 2 s")), "{stderr}");
    assert!(stderr.contains("in the processed bucket"), "{stderr}");

    onyx_core::transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    let (code, _, stderr, _) = wait(&follow, &ingestion_at, &processed_at, &warehouse);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&format!("load did not finish for run {run} within 2 s")), "{stderr}");
    assert!(stderr.contains("onyx_load_ledger"), "{stderr}");

    onyx_core::load::load_pending(&mut warehouse_client, processed.as_ref(), None, &Default::default())
        .await
        .expect("load");
    let (code, stdout, stderr, _) = wait(&follow, &ingestion_at, &processed_at, &warehouse);
    assert_eq!(code, 0, "{stderr}");
    let line = stdout.lines().find(|l| l.starts_with(&run)).unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("loaded") && line.contains("48066"), "{line}");
    assert!(stdout.contains(&format!("run {run} is loaded")), "{stdout}");

    // A later run behind a load that failed for good: fails at once, naming the blocking run.
    let second = onyx_core::extract::run(&mut source_client, ingestion.as_ref(), &Default::default())
        .await
        .expect("second extract");
    let third = onyx_core::extract::run(&mut source_client, ingestion.as_ref(), &Default::default())
        .await
        .expect("third extract");
    onyx_core::transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    let blocking = second.manifest.run_id.clone();
    onyx_core::runs::record_failure(processed.as_ref(), "load", &blocking, "23514: new row violates check constraint")
        .await
        .expect("record a failure");
    let (code, _, stderr, took) = wait(&[third.manifest.run_id.as_str()], &ingestion_at, &processed_at, &warehouse);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr
            .contains(&format!("load did not finish for run {}: load of run {blocking} failed", third.manifest.run_id))
            && stderr.contains("23514"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(2), "a recorded failure is reported without waiting: {took:?}");

    // The extract function's answers that name no run.
    for (answer, expected) in [
        (
            json!({"errorType": "Onyx.Retryable", "errorMessage": "extract failed: cannot connect"}),
            "extract: the extract function failed (Onyx.Retryable): extract failed: cannot connect",
        ),
        (
            json!({"stage": "extract", "not_run": "the source database secret s has no value"}),
            "extract: the extract function did not run: the source database secret s has no value",
        ),
        (json!({"stage": "extract", "skipped": "held by run X"}), "extract: the extract function stood aside"),
    ] {
        let path = answer_file(&answer).display().to_string();
        let (code, _, stderr, _) = wait(&["--extract-answer", &path], &ingestion_at, &processed_at, &warehouse);
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}

/// `.ci/smoke.sh` itself, with stand-ins for the two commands that need an AWS account (`aws`:
/// the schedule rule and the invoke; `terraform output`: the bucket names), real buckets in moto
/// and a real warehouse. Mechanism: the payload it builds must deserialize as the extract
/// handler's event type (an EventBridge scheduled event naming the rule — `{}`, what the old
/// guide sent, does not), and the answer the invoke writes is followed to the loaded run.
#[tokio::test]
async fn make_smoke_sends_a_scheduled_event_and_follows_the_run_to_the_warehouse() {
    crate::support::aws_endpoint();
    let source = TestDb::seeded("smokesh").await;
    let (warehouse, mut warehouse_client) = warehouse_db("smokesh_wh").await;
    let (ingestion_at, ingestion) = s3_bucket("smokesh-in").await;
    let (processed_at, processed) = s3_bucket("smokesh-out").await;
    let mut source_client = source.connect().await;
    let run =
        onyx_core::extract::run(&mut source_client, ingestion.as_ref(), &Default::default()).await.expect("extract");
    onyx_core::transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    onyx_core::load::load_pending(&mut warehouse_client, processed.as_ref(), None, &Default::default())
        .await
        .expect("load");

    let dir = std::env::temp_dir().join(unique("onyx-smoke-"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let answer = dir.join("answer.json");
    std::fs::write(&answer, onyx_core::handlers::summary_json(&run).to_string()).expect("answer");
    let sent = dir.join("sent-event.json");
    let fake_aws = dir.join("aws");
    std::fs::write(
        &fake_aws,
        format!(
            "#!/usr/bin/env bash\nset -eu\ncase \"$1 $2\" in\n\
             'events describe-rule') echo arn:aws:events:eu-west-2:123456789012:rule/onyx-extract-schedule ;;\n\
             'lambda invoke')\n  for a in \"$@\"; do case \"$a\" in file://*) cp \"${{a#file://}}\" {sent} ;; esac; done\n\
             \x20 out=''; prev=''; for a in \"$@\"; do [[ \"$prev\" == --output ]] && {{ prev=$a; continue; }}; \
             [[ \"$a\" != -* && \"$prev\" != --* ]] && out=$a; prev=$a; done\n\
             \x20 cp {answer} \"$out\"; echo '200 None' ;;\n\
             *) echo \"unexpected: $*\" >&2; exit 2 ;;\nesac\n",
            sent = sent.display(),
            answer = answer.display()
        ),
    )
    .expect("fake aws");
    let bucket = |l: &Location| crate::support::bucket_of(l);
    let ((in_bucket, in_prefix), (out_bucket, out_prefix)) = (bucket(&ingestion_at), bucket(&processed_at));
    let fake_terraform = dir.join("terraform");
    std::fs::write(
        &fake_terraform,
        format!(
            "#!/usr/bin/env bash\ncase \"$*\" in\n*ingestion_bucket) echo {in_bucket}/{in_prefix} ;;\n\
             *processed_bucket) echo {out_bucket}/{out_prefix} ;;\n*) exit 2 ;;\nesac\n"
        ),
    )
    .expect("fake terraform");
    for script in [&fake_aws, &fake_terraform] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("bash")
        .arg(repo.join(".ci/smoke.sh"))
        .current_dir(&repo)
        .env("INFRA_AWS", &fake_aws)
        .env("INFRA_TERRAFORM", &fake_terraform)
        .env("INFRA_ONYX", onyx_binary())
        .env("INFRA_SMOKE_TIMEOUT", "5")
        .env("ONYX_WAREHOUSE_URL", &warehouse.url)
        .output()
        .expect("run .ci/smoke.sh");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("run {} is loaded", run.manifest.run_id)), "{stdout}");

    let payload = std::fs::read_to_string(&sent).expect("the invoke got a payload");
    let event: aws_lambda_events::event::eventbridge::EventBridgeEvent<serde_json::Value> =
        serde_json::from_str(&payload).unwrap_or_else(|e| panic!("not the extract's event type: {e}: {payload}"));
    assert_eq!(event.detail_type, "Scheduled Event", "{payload}");
    assert_eq!(event.source, "aws.events");
    assert_eq!(
        event.resources,
        Some(vec!["arn:aws:events:eu-west-2:123456789012:rule/onyx-extract-schedule".to_string()])
    );
    assert!(
        serde_json::from_str::<aws_lambda_events::event::eventbridge::EventBridgeEvent<serde_json::Value>>("{}")
            .is_err()
    );
}
