//! `onyx` as an operator's product (issue #24): what the CLI does with what it is given, run as
//! the built binary.

use std::process::Command;

use crate::support::{TestDb, local_dir, onyx_binary, run_pipeline, s3_bucket, unique, warehouse_db};

/// Runs `onyx` with `args`: its exit code, stdout and stderr.
fn onyx(args: &[&str]) -> (Option<i32>, String, String) {
    onyx_with(args, &[])
}

/// Runs `onyx` with `args` and the environment `vars` set: its exit code, stdout and stderr.
fn onyx_with(args: &[&str], vars: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new(onyx_binary()).args(args).envs(vars.iter().copied()).output().expect("run onyx");
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

/// Issue #24 item 3. Mechanism: `crates/cli/build.rs` stamps the version with the commit (git, or
/// `ONYX_BUILD_COMMIT` for a build without `.git`). Before, `onyx --version` printed only `onyx
/// 0.1.0`, the same for every build, so an operator could not tell which one runs.
#[test]
fn onyx_version_names_the_commit_it_was_built_from() {
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git rev-parse");
    assert!(head.status.success(), "the tests run in a git checkout");
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    let (code, stdout, stderr) = onyx(&["--version"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.starts_with(&format!("onyx {} ({head}", env!("CARGO_PKG_VERSION"))),
        "onyx --version does not name the commit {head}: {stdout}"
    );
}

/// Issue #24 item 5. Mechanism: the shared `--json` flag (`summary::StatusReport` gathered once
/// for text and JSON) and `stack_ingestion`/`stack_processed` for every command that reads the
/// buckets. Before, `--json` existed only on `verify` (`onyx runs --json`: "unexpected argument"),
/// and `runs`, `quarantine` and `park` ignored `ONYX_STACK` ("the ingestion bucket (--ingestion)
/// is not set"), and a park's audit named `$USER@host` rather than the AWS principal
/// (`operator`: sts:GetCallerIdentity for a bucket in S3). Now the stack's buckets are used when none is given, the JSON is one document a
/// script can read, and `dlq`/`logs` both take `--stage`.
#[tokio::test]
async fn runs_status_and_quarantine_speak_json_and_follow_the_stack() {
    use onyx_core::stack::{
        OUTPUT_ALARM_TOPIC, OUTPUT_DEAD_LETTER_QUEUES, OUTPUT_FUNCTION_NAMES, OUTPUT_INGESTION_BUCKET,
        OUTPUT_LOG_GROUPS, OUTPUT_PROCESSED_BUCKET, STAGES,
    };

    let source = TestDb::seeded("cli_json_src").await;
    let mut source_client = source.connect().await;
    // A stack's buckets are whole buckets (no prefix).
    let bucket = |location: &onyx_core::storage::Location| crate::support::bucket_of(location).0;
    let whole = |location: &onyx_core::storage::Location| {
        onyx_core::storage::Location::parse(&format!("s3://{}", bucket(location))).expect("location")
    };
    let (ingestion_location, processed_location) = (s3_bucket("json-in").await.0, s3_bucket("json-out").await.0);
    let ingestion = whole(&ingestion_location).open().await.expect("ingestion");
    let processed = whole(&processed_location).open().await.expect("processed");
    let (warehouse, mut warehouse_client) = warehouse_db("cli_json_wh").await;
    let run = run_pipeline(&mut source_client, ingestion.as_ref(), processed.as_ref(), &mut warehouse_client).await;
    let per_stage = |suffix: &str| serde_json::json!({"value": STAGES.iter().map(|s| (s.to_string(), serde_json::json!(format!("onyx-json-{s}{suffix}")))).collect::<serde_json::Map<_, _>>()});
    let outputs = serde_json::json!({
        OUTPUT_FUNCTION_NAMES: per_stage(""),
        OUTPUT_LOG_GROUPS: per_stage("-logs"),
        OUTPUT_DEAD_LETTER_QUEUES: per_stage("-dlq"),
        OUTPUT_ALARM_TOPIC: {"value": "arn:aws:sns:eu-west-2:123456789012:onyx-json-alarms"},
        OUTPUT_INGESTION_BUCKET: {"value": bucket(&ingestion_location)},
        OUTPUT_PROCESSED_BUCKET: {"value": bucket(&processed_location)},
    });
    let stack_file = std::env::temp_dir().join(unique("onyx-json-stack-") + ".json");
    std::fs::write(&stack_file, serde_json::to_vec(&outputs).expect("json")).expect("stack file");
    let stack = stack_file.display().to_string();
    let env = [("ONYX_STACK", stack.as_str()), ("ONYX_WAREHOUSE_URL", warehouse.url.as_str())];
    let json = |args: &[&str]| -> serde_json::Value {
        let (code, stdout, stderr) = onyx_with(args, &env);
        assert_eq!(code, Some(0), "onyx {args:?}: {stderr}");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("onyx {args:?} printed no JSON ({e}): {stdout}"))
    };

    let runs = json(&["runs", "--json"]);
    assert_eq!(runs["runs"][0]["run_id"], run.as_str(), "{runs}");
    assert_eq!(runs["runs"][0]["stage"], "loaded", "{runs}");
    // status with a stack also asks the deployment (tests/operate.rs); here, the buckets by flag.
    let buckets = [
        "--ingestion".to_string(),
        format!("s3://{}", bucket(&ingestion_location)),
        "--processed".to_string(),
        format!("s3://{}", bucket(&processed_location)),
        "--warehouse-url".to_string(),
        warehouse.url.clone(),
    ];
    let status_args: Vec<&str> = ["status", "--json"].into_iter().chain(buckets.iter().map(String::as_str)).collect();
    let (code, stdout, stderr) = onyx(&status_args);
    assert_eq!(code, Some(0), "{stderr}");
    let status: serde_json::Value = serde_json::from_str(&stdout).expect("status --json prints JSON");
    assert_eq!(status["pipeline"]["last_extract"]["run_id"], run.as_str(), "{status}");
    assert_eq!(status["pipeline"]["last_load"]["run_id"], run.as_str(), "{status}");
    assert_eq!(status["pipeline"]["source_tables"].as_array().map(Vec::len), Some(11), "{status}");
    let quarantine = json(&["quarantine", "--json"]);
    assert!(quarantine["rows"].is_array(), "{quarantine}");

    // The text is the same report.
    let (code, text, stderr) = onyx(&status_args[..1].iter().chain(&status_args[2..]).copied().collect::<Vec<_>>());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(text.contains(&format!("last load        {run}")), "{text}");

    // park and unpark find the run in the stack's processed bucket.
    let (code, stdout, stderr) = onyx_with(&["park", &run, "--reason", "json test"], &env);
    assert_eq!(code, Some(0), "park follows ONYX_STACK: {stdout}{stderr}");
    let (_, stdout, _) = onyx(&status_args);
    let status: serde_json::Value = serde_json::from_str(&stdout).expect("status --json prints JSON");
    assert_eq!(status["pipeline"]["parked"][0]["run_id"], run.as_str(), "{status}");
    // The audit's "who" for a bucket in S3 is the AWS principal (with the local user), not only
    // `$USER@host` (issue #24 item 5): moto answers GetCallerIdentity with its test user.
    let by = status["pipeline"]["parked"][0]["by"].as_str().unwrap_or_default();
    assert!(by.starts_with("arn:aws:") && by.contains(" ("), "parked by {by:?}");
    let (code, _, stderr) = onyx_with(&["unpark", &run], &env);
    assert_eq!(code, Some(0), "unpark follows ONYX_STACK: {stderr}");

    // The commands grouped by use, each with an example.
    let (_, help, _) = onyx(&["--help"]);
    assert!(help.contains("Operate a pipeline:\n  doctor "), "onyx --help is not grouped: {help}");
    let (_, help, _) = onyx(&["status", "--help"]);
    assert!(help.contains("Example:\n  onyx status"), "{help}");

    // One flag name for one thing: dlq and logs both take --stage (--function stays an alias).
    for command in ["dlq", "logs"] {
        let (_, help, _) = onyx(&[command, "--help"]);
        assert!(help.contains("--stage <STAGE>") && help.contains("alias: --function"), "{command}: {help}");
    }
    std::fs::remove_file(&stack_file).ok();
}

/// Issue #24 item 7. Mechanism: this test. Every `ONYX_*` variable the code reads has its own row
/// in docs/reference.md's configuration table. Before, `ONYX_LOADER_PASSWORD[_SECRET]`,
/// `ONYX_READER_PASSWORD[_SECRET]` and `ONYX_OPERATOR` were read but documented nowhere there.
#[test]
fn every_onyx_variable_the_code_reads_is_in_the_configuration_reference() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let reference = std::fs::read_to_string(repo.join("docs/reference.md")).expect("docs/reference.md");
    let table: Vec<&str> = reference
        .split("## Configuration")
        .nth(1)
        .expect("a Configuration section")
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .collect();
    let documented = |name: &str| table.iter().any(|row| row.starts_with(&format!("| `{name}`")));
    let mut read = std::collections::BTreeSet::new();
    let mut pending = vec![repo.join("crates")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").map(|e| e.expect("entry").path()) {
            if entry.is_dir() {
                pending.push(entry);
            } else if entry.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&entry).expect("source");
                for (at, _) in text.match_indices("\"ONYX_") {
                    let name: String =
                        text[at + 1..].chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
                    read.insert(name);
                }
            }
        }
    }
    assert!(read.len() > 10, "found the variables: {read:?}");
    let missing: Vec<_> = read.iter().filter(|name| !documented(name)).collect();
    assert!(missing.is_empty(), "read by the code but not in docs/reference.md's configuration table: {missing:?}");
}

/// Issue #24 item 4. Mechanism: `deployed::checked_config` before the first AWS call (region,
/// then credentials resolved), and the CLI's log filter and colours (`telemetry::init`). Before,
/// missing credentials came back from the first request as `DispatchFailure(CredentialsNotLoaded)`
/// labelled a network problem, with debug structs; without a region, the IMDS probes printed
/// multi-line warnings with colour codes even into a pipe; bucket commands gave the raw SDK error.
#[test]
fn missing_aws_credentials_or_region_is_one_clear_line() {
    let dir = std::env::temp_dir().join(unique("onyx-no-aws-"));
    std::fs::create_dir_all(&dir).expect("dir");
    let empty = dir.join("empty");
    std::fs::write(&empty, "").expect("an empty AWS config");
    let empty = empty.display().to_string();
    let stack = dir.join("stack.json");
    let outputs = serde_json::json!({
        "function_names": {"value": {"extract": "x-extract", "transform": "x-transform", "load": "x-load"}},
        "log_groups": {"value": {"extract": "/aws/lambda/x-extract", "transform": "/aws/lambda/x-transform", "load": "/aws/lambda/x-load"}},
        "dead_letter_queues": {"value": {"extract": "x-extract-dlq", "transform": "x-transform-dlq", "load": "x-load-dlq"}},
        "alarm_topic_arn": {"value": "arn:aws:sns:eu-west-2:123456789012:x-alarms"},
        "ingestion_bucket": {"value": "x-ingestion"},
        "processed_bucket": {"value": "x-processed"},
    });
    std::fs::write(&stack, outputs.to_string()).expect("stack");
    let stack = stack.display().to_string();
    // A laptop with no AWS set up: no keys, no profile, empty config files.
    let run = |args: &[&str], region: Option<&str>| {
        let mut command = Command::new(onyx_binary());
        command.args(args).env("AWS_CONFIG_FILE", &empty).env("AWS_SHARED_CREDENTIALS_FILE", &empty);
        for var in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL",
            "RUST_LOG",
        ] {
            command.env_remove(var);
        }
        if let Some(region) = region {
            command.env("AWS_REGION", region);
        }
        let out = command.output().expect("run onyx");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for args in [vec!["runs", "--ingestion", "s3://onyx-some-bucket"], vec!["dlq", "--stack", &stack]] {
        let (code, stderr) = run(&args, Some("eu-west-2"));
        assert_eq!(code, Some(1), "onyx {args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains("no usable AWS credentials") && stderr.contains("aws sso login"), "{stderr}");
        assert!(!stderr.contains("DispatchFailure") && !stderr.contains("{ "), "no debug structs: {stderr}");
        assert!(!stderr.contains("network"), "not a network problem: {stderr}");

        let (code, stderr) = run(&args, None);
        assert_eq!(code, Some(1), "onyx {args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line, no IMDS warnings: {stderr}");
        assert!(stderr.contains("no AWS region: set AWS_REGION"), "{stderr}");
        assert!(!stderr.contains('\u{1b}'), "no colour codes into a pipe: {stderr:?}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue #24 item 6. Mechanism: `pgpass::fill_password` behind every URL (`DbTarget::config`):
/// a URL without a password takes `PGPASSWORD`, else the password file (`PGPASSFILE`,
/// `~/.pgpass`), as psql does. Before, only a server that trusts local logins worked: on a
/// password-authenticated PostgreSQL (a laptop's, a managed one) `onyx seed` failed with
/// "password missing" whatever PGPASSWORD or ~/.pgpass said. Against a real private cluster with
/// scram-sha-256 on TCP.
#[tokio::test]
async fn a_password_authenticated_postgresql_is_reached_with_pgpassword_or_a_password_file() {
    let password = "pw-Ony:x";
    let cluster = crate::support::cluster::PrivateCluster::start_with_password("pw", password);
    let admin_url = cluster.url("postgres").replacen(
        &format!("{}@", cluster.user()),
        &format!("{}:{}@", cluster.user(), password.replace(':', "%3A")),
        1,
    );
    let admin = crate::support::pg_connect(&admin_url).await.expect("the password in the URL");
    for database in ["totesys", "warehouse"] {
        admin.batch_execute(&format!("CREATE DATABASE {database}")).await.expect("database");
    }
    let (source, warehouse) = (cluster.url("totesys"), cluster.url("warehouse"));
    assert!(!source.contains(password), "the URLs name no password");
    let (_, _, dir) = local_dir("pw");
    std::fs::create_dir_all(&dir).expect("dir");
    let home = dir.display().to_string();
    let (ingestion, processed) = (dir.join("in").display().to_string(), dir.join("out").display().to_string());
    let onyx_env = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(onyx_binary());
        command.args(args).env("HOME", &home).env_remove("PGPASSWORD").env_remove("PGPASSFILE");
        command.env("ONYX_SOURCE_URL", &source).env("ONYX_WAREHOUSE_URL", &warehouse);
        command.env("ONYX_INGESTION", &ingestion).env("ONYX_PROCESSED", &processed);
        let out = command.envs(env.iter().copied()).output().expect("run onyx");
        (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    };

    // Nothing gives the password: a clear failure naming the source.
    let (code, out) = onyx_env(&["seed"], &[]);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("source") && out.contains("password"), "{out}");

    let (code, out) = onyx_env(&["seed"], &[("PGPASSWORD", password)]);
    assert_eq!(code, Some(0), "PGPASSWORD is honoured: {out}");

    // ~/.pgpass (here under HOME), with libpq's escapes and permissions.
    let pgpass = dir.join(".pgpass");
    std::fs::write(
        &pgpass,
        format!("127.0.0.1:{}:*:{}:{}\n", cluster.port, cluster.user(), password.replace(':', "\\:")),
    )
    .expect("pgpass");
    std::fs::set_permissions(&pgpass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    let (code, out) = onyx_env(&["run"], &[]);
    assert_eq!(code, Some(0), "~/.pgpass is honoured: {out}");
    let (code, out) = onyx_env(&["verify", "--ingestion", &ingestion], &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("equal"), "{out}");
}

/// Issue #24 item 5. Mechanism: `require_settings` before a command uses any setting. Before,
/// `onyx run` on a fresh machine named one missing setting per attempt (the source; set it, run
/// again: the ingestion bucket; …). Now every missing or invalid one is in one error.
#[test]
fn every_missing_setting_is_reported_at_once() {
    let mut command = Command::new(onyx_binary());
    command.args(["run", "--max-run-rows", "0"]);
    for var in ["ONYX_SOURCE_URL", "ONYX_SOURCE_SECRET", "ONYX_WAREHOUSE_URL", "ONYX_WAREHOUSE_SECRET"] {
        command.env_remove(var);
    }
    for var in ["ONYX_INGESTION", "ONYX_PROCESSED", "ONYX_MAX_RUN_ROWS", "ONYX_RECONCILE_EVERY"] {
        command.env_remove(var);
    }
    let out = command.output().expect("run onyx");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("5 settings are missing or invalid"), "{stderr}");
    for named in ["ONYX_SOURCE_URL", "ONYX_INGESTION", "ONYX_PROCESSED", "ONYX_WAREHOUSE_URL", "ONYX_MAX_RUN_ROWS"] {
        assert!(stderr.contains(named), "{named} is not named: {stderr}");
    }
}

/// Issue #24 item 5 ("no `onyx doctor`"). Mechanism: `doctor::diagnose` runs every check whatever
/// an earlier one found. Several problems at once — the warehouse URL naming the source (not a
/// migrated warehouse), a source time zone PostgreSQL does not know, a mistyped ingestion
/// directory, and a source database without the ToteSys tables — are all reported in one run,
/// exit 1; the same checks on a good setup pass (TLS without a verified certificate is a
/// warning), as text and as JSON. On main there was no such command.
#[tokio::test]
async fn doctor_reports_every_problem_at_once_and_passes_a_good_setup() {
    let source = TestDb::seeded("doctor_src").await;
    let empty = TestDb::create("doctor_empty").await;
    let (warehouse, _client) = warehouse_db("doctor_wh").await;
    let (_, _, dir) = local_dir("doctor");
    let (ingestion, processed) = (dir.join("in"), dir.join("out"));
    std::fs::create_dir_all(&ingestion).expect("ingestion dir");
    let (ingestion, processed) = (ingestion.display().to_string(), processed.display().to_string());
    let typo = dir.join("in-typo").display().to_string();

    let args = |source: &str, warehouse: &str, ingestion: &str| {
        vec![
            "doctor".to_string(),
            "--source-url".into(),
            source.into(),
            "--warehouse-url".into(),
            warehouse.into(),
            "--ingestion".into(),
            ingestion.into(),
            "--processed".into(),
            processed.clone(),
        ]
    };
    let bad = args(&empty.url, &source.url, &typo);
    let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = onyx_with(&bad, &[("ONYX_SOURCE_TIMEZONE", "Mars/Olympus_Mons")]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    for (check, says) in [
        ("warehouse schema", "onyx migrate"),
        ("source time zone", "Mars/Olympus_Mons"),
        ("ingestion bucket", "does not exist"),
        ("source schema", "missing: table"),
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with("FAIL") && l.contains(check) && l.contains(says)),
            "{check} fails saying {says:?}: {stdout}"
        );
    }
    assert!(stdout.contains("4 problem(s)"), "{stdout}");

    let good = args(&source.url, &warehouse.url, &ingestion);
    let mut good: Vec<&str> = good.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = onyx(&good);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("all checks passed"), "{stdout}");
    good.push("--json");
    let (code, stdout, _) = onyx(&good);
    assert_eq!(code, Some(0));
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("doctor --json prints JSON");
    let checks = report["checks"].as_array().expect("checks");
    assert!(checks.iter().all(|c| c["outcome"] != "fail"), "{report}");
    assert!(checks.iter().any(|c| c["name"] == "warehouse schema" && c["outcome"] == "ok"), "{report}");
}

/// Issue #24 item 8. Mechanism: clap's `env` on every flag that has a variable (help, precedence)
/// and humantime for durations. Before, each flag's variable was hand-written into its help text
/// ("[env: ONYX_SOURCE_URL, or ONYX_SOURCE_SECRET]") and the fallback hand-coded per command. Now
/// clap shows `[env: …]` (hiding a URL's value, which may hold a password), a flag wins over its
/// variable, and `--since` takes humantime's durations.
#[test]
fn flags_show_their_variables_and_win_over_them() {
    let secret_url = "postgres://onyx:hunter2@db.example/totesys";
    let (_, help, _) = onyx_with(&["extract", "--help"], &[("ONYX_SOURCE_URL", secret_url)]);
    assert!(help.contains("[env: ONYX_SOURCE_URL]"), "{help}");
    assert!(!help.contains("hunter2"), "a URL's value is never shown: {help}");
    for variable in ["ONYX_INGESTION", "ONYX_MAX_RUN_ROWS", "ONYX_RECONCILE_EVERY", "ONYX_SOURCE_TIMEZONE"] {
        assert!(help.contains(&format!("[env: {variable}")), "{variable}: {help}");
    }
    let dir = std::env::temp_dir().join(unique("onyx-flag-wins-"));
    let (from_env, from_flag) = (dir.join("from-env"), dir.join("from-flag"));
    let (from_env, from_flag) = (from_env.display().to_string(), from_flag.display().to_string());
    let (code, _, stderr) = onyx_with(&["quarantine", "--processed", &from_flag], &[("ONYX_PROCESSED", &from_env)]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains(&from_flag) && !stderr.contains(&from_env), "the flag wins: {stderr}");
    let (code, _, stderr) = onyx(&["logs", "--since", "1h30x"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("is not a duration"), "{stderr}");
}
