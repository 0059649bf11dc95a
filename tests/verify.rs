//! `onyx verify` (issue #12): the warehouse against the source as of the newest loaded run's
//! snapshot. Clean after real runs; every kind of corruption found and named (table, id,
//! column); rows changed after the last load reported as in flight, not as differences; the
//! scheduled form in the load function writes its report and counts.

use onyx_core::handlers::{LoadEvent, LoadFunction, VerifySetup};
use onyx_core::verify::{self, VerifyOptions, VerifyReport};
use onyx_core::{db::DbTarget, keys};

use crate::support::{TestDb, local_dir, onyx_binary, run_pipeline, warehouse_db};

fn table<'a>(report: &'a VerifyReport, name: &str) -> &'a verify::TableReport {
    report.tables.iter().find(|t| t.table == name).unwrap_or_else(|| panic!("no {name} in the report"))
}

#[tokio::test]
async fn verify_is_clean_after_real_runs_and_names_every_corruption() {
    let source_db = TestDb::seeded("vf").await;
    let mut source = source_db.connect().await;
    let (ingestion_location, ingestion, _) = local_dir("vf-in");
    let (_, processed, _) = local_dir("vf-out");
    let (warehouse_db_, mut warehouse) = warehouse_db("vf_wh").await;
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    source
        .batch_execute(
            "UPDATE payment SET paid = NOT paid, last_updated = LOCALTIMESTAMP WHERE payment_id BETWEEN 30 AND 40;
             UPDATE department SET location = 'Leeds 2' WHERE department_id = 2;
             UPDATE sales_order SET unit_price = 3.000, last_updated = LOCALTIMESTAMP WHERE sales_order_id = 9;",
        )
        .await
        .expect("a round of changes");
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;

    let options = VerifyOptions { leaf_size: 64, examples: 10 };
    let clean = verify::verify(&mut source, &warehouse, ingestion.as_ref(), &options).await.expect("verify");
    assert!(clean.is_clean(), "{clean:#?}");
    assert_eq!(table(&clean, "fact_payment").checked, 15_836);
    assert_eq!(table(&clean, "dim_transaction").equal, 15_836);

    // Rows changed after the last load are in flight, not differences.
    source
        .batch_execute("UPDATE payment SET paid = NOT paid, last_updated = LOCALTIMESTAMP WHERE payment_id = 41")
        .await
        .expect("a change after the load");
    // Each kind of corruption, one per table.
    warehouse
        .batch_execute(
            "DELETE FROM fact_purchase_order WHERE purchase_order_id = 42;
             UPDATE dim_staff SET last_name = 'Wrong' WHERE staff_id = 3;
             INSERT INTO dim_design VALUES (99999, 'stray', '/x', 'y.json');
             UPDATE fact_sales_order SET created_time = created_time + interval '1 microsecond' WHERE sales_order_id = 500;
             UPDATE fact_payment SET payment_amount = payment_amount + 0.01 WHERE payment_id = 1000;
             DELETE FROM dim_date WHERE date_id = '2025-06-15';",
        )
        .await
        .expect("corrupt the warehouse");
    let report = verify::verify(&mut source, &warehouse, ingestion.as_ref(), &options).await.expect("verify");
    let expect = |name: &str, id: i64, kind: &str, column: Option<&str>| {
        let t = table(&report, name);
        let d = t.differences.iter().find(|d| d.id == id).unwrap_or_else(|| panic!("{name} {id} not found: {t:#?}"));
        assert_eq!(d.kind, kind, "{name} {id}");
        if let Some(column) = column {
            assert!(d.columns.iter().any(|(c, _, _)| c == column), "{name} {id} names {column}: {d:?}");
        }
        assert_eq!(t.difference_count(), 1, "only that difference in {name}: {t:#?}");
    };
    expect("fact_purchase_order", 42, "missing", None);
    expect("dim_staff", 3, "different", Some("last_name"));
    expect("dim_design", 99999, "extra", None);
    expect("fact_sales_order", 500, "different", Some("created_time"));
    expect("fact_payment", 1000, "different", Some("payment_amount"));
    // A day no fact refers to (the sample ends in 2024, the changes are today's): a gap in the calendar.
    expect("dim_date", 20_250_615, "missing", None);
    let payment = table(&report, "fact_payment");
    assert_eq!(payment.in_flight, 1, "payment 41 changed after the load");
    assert!(!payment.differences.iter().any(|d| d.id == 41), "in flight is not a difference");
    assert_eq!(report.differences(), 6);
    let shown = &table(&report, "fact_payment").differences[0].columns;
    assert_eq!(shown.len(), 1, "only the differing column: {shown:?}");
    assert_ne!(shown[0].1, shown[0].2);

    // The CLI: exit status 2 with differences, the table and ids in the output; JSON on request.
    let output = std::process::Command::new(onyx_binary())
        .args(["verify", "--source-url", &source_db.url, "--warehouse-url", &warehouse_db_.url])
        .args(["--ingestion", &ingestion_location.to_string()])
        .output()
        .expect("onyx verify");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("fact_payment:") && stdout.contains("id 1000 different"), "{stdout}");
    assert!(stdout.contains("verdict: 6 difference(s)"), "{stdout}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("ERROR"), "differences log at ERROR");

    // The scheduled form, in the load function: report object and counts. Issue #21: with its
    // own login that can only read (SELECT grants, read-only by default), as deployed.
    let reader = crate::support::unique("onyx_verify_ro_");
    source
        .batch_execute(&format!(
            "CREATE ROLE {reader} LOGIN; GRANT USAGE ON SCHEMA public TO {reader};
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader};
             ALTER ROLE {reader} SET default_transaction_read_only = on;"
        ))
        .await
        .expect("a read-only login");
    let parsed: tokio_postgres::Config = source_db.url.parse().expect("test URL");
    let host = match &parsed.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
    };
    let reader_url = format!("postgres://{reader}@{host}:{}/{}", parsed.get_ports()[0], source_db.name);
    let mut function = LoadFunction::new(DbTarget::Url(warehouse_db_.url.clone().into()), processed.clone());
    function.verify = Some(VerifySetup {
        source: DbTarget::Url(reader_url.into()),
        credentials: onyx_core::config::VerifyCredentials::OwnReadOnly,
        ingestion: ingestion.clone(),
    });
    let event: LoadEvent = serde_json::from_value(serde_json::json!({"onyx": "verify"})).expect("event");
    let result = function.handle_event(event).await.expect("scheduled verification");
    assert_eq!(result["differences"], 6);
    assert!(result["source_credentials"].as_str().is_some_and(|c| c.contains("its own source login")), "{result}");
    let key = result["report"].as_str().expect("report key");
    assert!(key.starts_with(keys::VERIFY_PREFIX), "{key}");
    let stored: serde_json::Value = serde_json::from_slice(&processed.get(key).await.expect("report")).expect("json");
    assert_eq!(stored["tables"].as_array().map(Vec::len), Some(11));
}
