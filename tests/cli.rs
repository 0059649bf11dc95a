//! `onyx` as an operator's product (issue #24): what the CLI does with what it is given, run as
//! the built binary.

use std::process::Command;

use crate::support::{local_dir, onyx_binary, s3_bucket, unique};

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
