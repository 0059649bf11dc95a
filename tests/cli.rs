//! `onyx` as an operator's product (issue #24): what the CLI does with what it is given, run as
//! the built binary.

use std::process::Command;

use crate::support::{TestDb, local_dir, onyx_binary, run_pipeline, s3_bucket, unique, warehouse_db};

/// Runs `onyx` with `args`: its exit code, stdout and stderr.
fn onyx(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(onyx_binary()).args(args).output().expect("run onyx");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Issue #24 item 2. Mechanism: `Location::open_existing` for every bucket a command reads. A
/// mistyped directory or a bucket that does not exist is an error that names it, never an empty
/// bucket: before, `onyx transform --ingestion /tmp/typo` printed "nothing to transform: every run
/// is already transformed" and `onyx quarantine --processed <missing>` "nothing held, quarantined
/// or flagged", both exiting 0 — a false all-clear. A bucket a command may be the first to write
/// (the processed side of `transform`) is still created, and an existing empty one still reads
/// as empty.
#[tokio::test]
async fn a_bucket_a_command_reads_must_exist() {
    let (_, _, dir) = local_dir("typo");
    let typo = dir.join("ingestion-typo").display().to_string();
    let out = dir.join("processed").display().to_string();
    let missing_bucket = format!("s3://{}", unique("onyx-missing-"));
    let cases: [(&str, Vec<&str>); 5] = [
        (typo.as_str(), vec!["transform", "--ingestion", &typo, "--processed", &out]),
        (typo.as_str(), vec!["quarantine", "--processed", &typo]),
        (typo.as_str(), vec!["park", "20261203T000000000-0000", "--reason", "typo", "--processed", &typo]),
        (missing_bucket.as_str(), vec!["quarantine", "--processed", &missing_bucket]),
        (missing_bucket.as_str(), vec!["transform", "--ingestion", &missing_bucket, "--processed", &out]),
    ];
    for (named, args) in cases {
        let (code, stdout, stderr) = onyx(&args);
        assert_ne!(code, Some(0), "onyx {args:?} must fail: {stdout}");
        assert!(stderr.contains(named) && stderr.contains("does not exist"), "onyx {args:?} names {named}: {stderr}");
        assert!(!stdout.contains("nothing"), "no all-clear: {stdout}");
    }
    assert!(!dir.exists(), "reading wrote nothing");

    // Existing and empty: read as empty, and the processed side is created by the first write.
    let (_, _, ingestion_dir) = local_dir("empty-in");
    std::fs::create_dir_all(&ingestion_dir).expect("an empty ingestion directory");
    let (code, stdout, stderr) =
        onyx(&["transform", "--ingestion", &ingestion_dir.display().to_string(), "--processed", &out]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("nothing to transform"), "{stdout}");
    let (location, _) = s3_bucket("empty-processed").await;
    let (code, stdout, stderr) = onyx(&["quarantine", "--processed", &location.to_string()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("nothing held"), "{stdout}");
}

/// Issue #24 item 1. Mechanism: `load::open_for_reading` behind `runs`, `status`, `report` and
/// `verify`: a read-only session (`default_transaction_read_only`), never migrated, that checks
/// the migration history and names `onyx migrate` when it is not there. On main,
/// `onyx runs --warehouse-url <the ToteSys URL>` exited 0 and created the warehouse's tables and
/// refinery's history inside the source, and with read-only credentials `runs` and `report` failed
/// ("error asserting migrations table").
#[tokio::test]
async fn reading_commands_never_change_a_database_and_work_with_read_only_credentials() {
    let source = TestDb::seeded("cli_ro_src").await;
    let mut source_client = source.connect().await;
    let (_, ingestion, ingestion_dir) = local_dir("cli-ro-in");
    let (_, processed, processed_dir) = local_dir("cli-ro-out");
    let (warehouse, mut warehouse_client) = warehouse_db("cli_ro_wh").await;
    run_pipeline(&mut source_client, ingestion.as_ref(), processed.as_ref(), &mut warehouse_client).await;
    let (ingestion_arg, processed_arg) = (ingestion_dir.display().to_string(), processed_dir.display().to_string());
    let report_dir = std::env::temp_dir().join(unique("onyx-cli-ro-report-"));
    let report_arg = report_dir.display().to_string();
    let tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'";
    let source_tables: i64 = source_client.query_one(tables, &[]).await.expect("tables").get(0);

    // Pointed at the source by mistake: an error that says what it found, and nothing created.
    let reading = |url: &str| -> Vec<Vec<String>> {
        vec![
            vec![
                "runs".into(),
                "--ingestion".into(),
                ingestion_arg.clone(),
                "--processed".into(),
                processed_arg.clone(),
                "--warehouse-url".into(),
                url.into(),
            ],
            vec![
                "status".into(),
                "--ingestion".into(),
                ingestion_arg.clone(),
                "--processed".into(),
                processed_arg.clone(),
                "--warehouse-url".into(),
                url.into(),
            ],
            vec!["report".into(), "--warehouse-url".into(), url.into(), "--out".into(), report_arg.clone()],
            vec![
                "verify".into(),
                "--source-url".into(),
                source.url.clone(),
                "--warehouse-url".into(),
                url.into(),
                "--ingestion".into(),
                ingestion_arg.clone(),
            ],
        ]
    };
    for args in reading(&source.url) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = onyx(&args);
        assert_ne!(code, Some(0), "onyx {} against the source must fail: {stdout}", args[0]);
        assert!(
            stderr.contains(&source.name) && stderr.contains("onyx migrate") && stderr.contains("no migration history"),
            "onyx {} says what it found and which command changes it: {stderr}",
            args[0]
        );
    }
    let after: i64 = source_client.query_one(tables, &[]).await.expect("tables").get(0);
    assert_eq!(after, source_tables, "no table created in the source");

    // A login that may only read: every reading command works.
    let reader = unique("onyx_ro_");
    warehouse_client
        .batch_execute(&format!(
            "CREATE ROLE {reader} LOGIN; GRANT USAGE ON SCHEMA public TO {reader};
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader};"
        ))
        .await
        .expect("a read-only role");
    let reader_url = warehouse.url.replacen("://root@", &format!("://{reader}@"), 1);
    assert_ne!(reader_url, warehouse.url, "the test's URL names its user");
    for args in reading(&reader_url) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = onyx(&args);
        assert_eq!(code, Some(0), "onyx {} as a read-only login: {stdout}\n{stderr}", args[0]);
    }
    assert!(report_dir.join("index.html").exists(), "the report was written");
}

/// Issue #24 item 5 (`park` accepts a run that does not exist). Mechanism: `run_exists` in
/// `onyx park`: a run is known by its manifest in the processed bucket (or the ingestion bucket,
/// given `--ingestion`) or by a failure a stage recorded. On main, parking a mistyped id printed
/// "parked …" and wrote a park record for a run that never existed.
#[tokio::test]
async fn park_refuses_a_run_that_does_not_exist() {
    let source = TestDb::seeded("cli_park_src").await;
    let mut source_client = source.connect().await;
    let (_, ingestion, ingestion_dir) = local_dir("cli-park-in");
    let (_, processed, processed_dir) = local_dir("cli-park-out");
    let (_warehouse, mut warehouse_client) = warehouse_db("cli_park_wh").await;
    run_pipeline(&mut source_client, ingestion.as_ref(), processed.as_ref(), &mut warehouse_client).await;
    let (ingestion_arg, processed_arg) = (ingestion_dir.display().to_string(), processed_dir.display().to_string());

    let typo = "20261203T000000000-dead";
    let (code, stdout, stderr) = onyx(&["park", typo, "--reason", "typo", "--processed", &processed_arg]);
    assert_ne!(code, Some(0), "{stdout}");
    assert!(stderr.contains(typo) && stderr.contains("does not exist"), "{stderr}");
    assert!(!processed_dir.join(onyx_core::runs::PARKED_PREFIX).exists(), "no park record written");

    // Extracted, not transformed yet: known to the ingestion bucket only.
    source_client.batch_execute("UPDATE payment SET paid = NOT paid WHERE payment_id = 1").await.expect("change");
    let pending = onyx_core::extract::run(&mut source_client, ingestion.as_ref(), &Default::default())
        .await
        .expect("extract")
        .manifest
        .run_id;
    let (code, _, stderr) = onyx(&["park", &pending, "--reason", "known bad", "--processed", &processed_arg]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("--ingestion"), "says how to name it: {stderr}");
    let (code, stdout, stderr) = onyx(&[
        "park",
        &pending,
        "--reason",
        "known bad",
        "--processed",
        &processed_arg,
        "--ingestion",
        &ingestion_arg,
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(&format!("parked {pending}")), "{stdout}");
}
