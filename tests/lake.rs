//! Issue #16: the warehouse is a Power BI-ready model, and the lake (the processed bucket, read
//! through the Athena views in `lake/views/`) says the same as the warehouse.
//!
//! - `dim_date` is one contiguous calendar from the earliest to the latest date any fact refers to
//!   (Power BI's "mark as date table"), with ISO weekdays, after the first run on the real sample
//!   and after change rounds that bring earlier and later dates, and a rebuild gives the same;
//!   every fact date and every foreign key finds its dimension row (the model's relationships).
//! - Every lake view, run by DuckDB (`lake/duckdb_views.py`) over the local processed directory,
//!   equals the warehouse view of the same name row for row, values compared exactly (`*_time`
//!   as the nanoseconds the lake's bigint holds).
//! - `terraform/generated/lake_tables.json` is what `onyx lake-schema` prints now.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use onyx_core::tokio_postgres::Client;
use onyx_core::warehouse::{DIM_DATE, WAREHOUSE_TABLES, WKind};
use onyx_core::{ops, simulate};

use crate::support::{TestDb, local_dir, run_pipeline, warehouse_db, warehouse_dump};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

async fn texts(client: &Client, sql: &str) -> Vec<String> {
    client.query(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).iter().map(|r| r.get(0)).collect()
}

/// Every `(fact, column)` that refers to `dim_date`, from the descriptions.
fn date_references() -> Vec<(&'static str, &'static str)> {
    WAREHOUSE_TABLES
        .iter()
        .flat_map(|t| t.columns.iter().filter(|c| c.references == Some(DIM_DATE.name)).map(move |c| (t.name, c.name)))
        .collect()
}

/// The calendar has every day from the earliest to the latest fact date, no more, no gap, with
/// the right attributes; every foreign key of every table finds its dimension row.
async fn assert_power_bi_model(warehouse: &Client, when: &str) {
    let fact_dates = date_references()
        .iter()
        .map(|(table, column)| format!("SELECT {column} AS d FROM {table}"))
        .collect::<Vec<_>>()
        .join(" UNION ");
    let bounds = texts(
        warehouse,
        &format!(
            "SELECT concat_ws(' ', (SELECT min(date_id) FROM dim_date), (SELECT max(date_id) FROM dim_date),
                    (SELECT count(*) FROM dim_date), (SELECT min(d) FROM ({fact_dates}) f), (SELECT max(d) FROM ({fact_dates}) f))"
        ),
    )
    .await;
    let parts: Vec<&str> = bounds[0].split(' ').collect();
    assert_eq!(parts.len(), 5, "{when}: dim_date or the facts are empty: {bounds:?}");
    assert_eq!((parts[0], parts[1]), (parts[3], parts[4]), "{when}: dim_date spans exactly the facts' dates");
    let gaps = texts(
        warehouse,
        "SELECT g::date::text FROM generate_series((SELECT min(date_id) FROM dim_date), (SELECT max(date_id) FROM dim_date),
                interval '1 day') g
         WHERE NOT EXISTS (SELECT 1 FROM dim_date WHERE date_id = g::date) ORDER BY 1 LIMIT 5",
    )
    .await;
    assert!(gaps.is_empty(), "{when}: dim_date has gaps, first missing days: {gaps:?} (bounds {bounds:?})");
    let wrong = texts(
        warehouse,
        "SELECT date_id::text FROM dim_date
         WHERE year <> extract(year FROM date_id) OR month <> extract(month FROM date_id)
            OR day <> extract(day FROM date_id) OR day_of_week <> extract(isodow FROM date_id)
            OR quarter <> extract(quarter FROM date_id) OR day_name <> to_char(date_id, 'FMDay')
            OR month_name <> to_char(date_id, 'FMMonth')
         ORDER BY 1 LIMIT 5",
    )
    .await;
    assert!(wrong.is_empty(), "{when}: dim_date rows with wrong attributes (ISO weekday, names, quarter): {wrong:?}");
    for table in WAREHOUSE_TABLES {
        for column in table.columns {
            let Some(target) = column.references.and_then(onyx_core::warehouse::WarehouseTable::named) else {
                continue;
            };
            let orphans = texts(
                warehouse,
                &format!(
                    "SELECT DISTINCT f.{col}::text FROM {table} f
                     WHERE NOT EXISTS (SELECT 1 FROM {dim} d WHERE d.{key} = f.{col}) ORDER BY 1 LIMIT 5",
                    col = column.name,
                    table = table.name,
                    dim = target.name,
                    key = target.key
                ),
            )
            .await;
            assert!(
                orphans.is_empty(),
                "{when}: {}.{} values with no {} row: {orphans:?}",
                table.name,
                column.name,
                target.name
            );
        }
    }
}

/// The warehouse's rows of `view` in the lake's text form, for the given columns.
async fn warehouse_view(warehouse: &Client, view: &str, columns: &[String]) -> Vec<Vec<Option<String>>> {
    let types: BTreeMap<String, String> = warehouse
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns WHERE table_name = $1",
            &[&view],
        )
        .await
        .unwrap_or_else(|e| panic!("columns of {view}: {e}"))
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let exprs: Vec<String> = columns
        .iter()
        .map(|c| match types.get(c).map(String::as_str) {
            // The lake holds times as nanoseconds since midnight (Glue has no TIME type).
            Some("time without time zone") => {
                format!("((extract(epoch FROM {c}) * 1000000)::bigint * 1000)::text")
            }
            Some("numeric") => format!("trim_scale({c})::text"),
            // The lake keeps deletion times as text, to the microsecond.
            Some("timestamp without time zone") => format!("to_char({c}, 'YYYY-MM-DD HH24:MI:SS.US')"),
            Some(_) => format!("{c}::text"),
            None => panic!("warehouse view {view} has no column {c} (its columns: {types:?})"),
        })
        .collect();
    let sql = format!("SELECT ARRAY[{}] FROM {view}", exprs.join(", "));
    let mut rows: Vec<Vec<Option<String>>> =
        warehouse.query(&sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).iter().map(|r| r.get(0)).collect();
    rows.sort();
    rows
}

/// Runs every lake view with DuckDB over `processed` and compares it with the warehouse's view of
/// the same name, on the warehouse view's columns (record ids aside: the lake has none).
async fn assert_lake_equals_warehouse(processed: &Path, warehouse: &Client, when: &str) {
    let output = Command::new("python3")
        .arg(repo().join("lake/duckdb_views.py"))
        .arg("--processed")
        .arg(processed)
        .output()
        .expect("python3 runs lake/duckdb_views.py");
    assert!(
        output.status.success(),
        "{when}: lake/duckdb_views.py failed (make test installs duckdb through .ci/services.sh): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lake: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&output.stdout).expect("views as JSON");
    let expected_views = [
        "dim_date",
        "dim_staff",
        "dim_location",
        "dim_design",
        "dim_currency",
        "dim_counterparty",
        "dim_payment_type",
        "dim_transaction",
        "fact_sales_order_current",
        "fact_purchase_order_current",
        "fact_payment_current",
        "sales_by_month",
        "sales_by_country",
        "sales_by_design",
        "sales_by_staff",
        "payments_status",
    ];
    let mut names: Vec<&str> = lake.keys().map(String::as_str).collect();
    names.sort();
    let mut wanted = expected_views.to_vec();
    wanted.sort();
    assert_eq!(names, wanted, "{when}: the lake has every warehouse view");
    let record_ids: Vec<&str> = WAREHOUSE_TABLES
        .iter()
        .flat_map(|t| t.columns.iter().filter(|c| c.kind == WKind::Serial).map(|c| c.name))
        .collect();
    for view in expected_views {
        let lake_view = &lake[view];
        let lake_columns: Vec<String> =
            serde_json::from_value(lake_view["columns"].clone()).expect("columns of a lake view");
        let warehouse_columns = texts(
            warehouse,
            &format!(
                "SELECT column_name::text FROM information_schema.columns WHERE table_name = '{view}' ORDER BY ordinal_position"
            ),
        )
        .await;
        let columns: Vec<String> =
            warehouse_columns.into_iter().filter(|c| !record_ids.contains(&c.as_str())).collect();
        let at: Vec<usize> = columns
            .iter()
            .map(|c| {
                lake_columns.iter().position(|l| l == c).unwrap_or_else(|| {
                    panic!("{when}: lake view {view} lacks the warehouse column {c} (it has {lake_columns:?})")
                })
            })
            .collect();
        let lake_rows: Vec<Vec<Option<String>>> =
            serde_json::from_value(lake_view["rows"].clone()).expect("rows of a lake view");
        let mut lake_rows: Vec<Vec<Option<String>>> =
            lake_rows.into_iter().map(|row| at.iter().map(|&i| row[i].clone()).collect()).collect();
        lake_rows.sort();
        let warehouse_rows = warehouse_view(warehouse, view, &columns).await;
        if lake_rows != warehouse_rows {
            // Both are sorted: a binary search names the first rows only one side has.
            let only_lake: Vec<_> =
                lake_rows.iter().filter(|r| warehouse_rows.binary_search(r).is_err()).take(3).collect();
            let only_warehouse: Vec<_> =
                warehouse_rows.iter().filter(|r| lake_rows.binary_search(r).is_err()).take(3).collect();
            panic!(
                "{when}: lake view {view} ({} rows) differs from the warehouse's ({} rows) on columns {columns:?}: \
                 only in the lake {only_lake:?}, only in the warehouse {only_warehouse:?}",
                lake_rows.len(),
                warehouse_rows.len()
            );
        }
        assert!(!lake_rows.is_empty(), "{when}: {view} is empty: nothing was compared");
    }
}

/// Changes that move the calendar's ends: an order created before the sample's first day and one
/// agreed for delivery after every date so far, and a payment due later still.
async fn stretch_the_calendar(source: &Client, round: i32) {
    let sql = format!(
        "INSERT INTO sales_order (created_at, last_updated, design_id, staff_id, counterparty_id, units_sold, unit_price,
             currency_id, agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id)
         VALUES ('2022-10-{day:02} 09:15:00.123456', now(), 1, 1, 1, 7, 2.50, 1,
                 '2027-0{round}-15', '2027-0{round}-20', 1);
         UPDATE payment SET payment_date = '2028-0{round}-01', last_updated = now()
          WHERE payment_id = (SELECT min(payment_id) FROM payment);",
        day = 20 - round
    );
    source.batch_execute(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn dim_date_is_a_contiguous_calendar_and_the_lake_views_equal_the_warehouse_views() {
    let source_db = TestDb::seeded("lake_src").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("lake-in");
    let (_, processed, processed_dir) = local_dir("lake-out");
    let (_, mut warehouse) = warehouse_db("lake_wh").await;

    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    assert_power_bi_model(&warehouse, "after the real sample").await;
    assert_lake_equals_warehouse(&processed_dir, &warehouse, "after the real sample").await;

    for round in 1..=3 {
        let options = simulate::SimulateOptions { minutes: 20, seed: round as u64, with_reference_changes: round == 2 };
        simulate::simulate(&mut source, &options).await.expect("simulate");
        if round != 3 {
            stretch_the_calendar(&source, round).await;
        }
        run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
        let when = format!("after change round {round}");
        assert_power_bi_model(&warehouse, &when).await;
        assert_lake_equals_warehouse(&processed_dir, &warehouse, &when).await;
    }
    // Deletes (issue #22): the lake's views leave out and mark what the warehouse does. (Old rows:
    // deleting the newest row a run saw is a discontinuity, read in full — see continuity.rs.)
    source
        .batch_execute(
            "BEGIN;
             DELETE FROM payment WHERE transaction_id IN (SELECT transaction_id FROM transaction WHERE sales_order_id = 2);
             DELETE FROM transaction WHERE sales_order_id = 2;
             DELETE FROM sales_order WHERE sales_order_id = 2;
             DELETE FROM payment WHERE payment_id = 3;
             COMMIT;",
        )
        .await
        .expect("deletes");
    let every_run =
        onyx_core::extract::ExtractOptions { reconcile_every: std::time::Duration::ZERO, ..Default::default() };
    let reconciled = onyx_core::extract::run(&mut source, ingestion.as_ref(), &every_run).await.expect("extract");
    assert_eq!(reconciled.manifest.full_read, None);
    assert!(reconciled.manifest.deleted_rows() >= 3, "order, transaction, payments");
    onyx_core::transform::transform_pending(ingestion.as_ref(), processed.as_ref(), None).await.expect("transform");
    onyx_core::load::load_pending(&mut warehouse, processed.as_ref(), None, &Default::default()).await.expect("load");
    let marked = texts(&warehouse, "SELECT count(*)::text FROM dim_transaction WHERE deleted_at IS NOT NULL").await;
    assert_eq!(marked, ["1"]);
    assert_lake_equals_warehouse(&processed_dir, &warehouse, "after deletes").await;

    let first_day = texts(&warehouse, "SELECT min(date_id)::text FROM dim_date").await;
    assert_eq!(first_day, ["2022-10-18"], "the calendar reached back to the backdated order");

    // A rebuild from the ingestion bucket alone gives the same calendar (and everything else).
    let (_, rebuilt_processed, _) = local_dir("lake-out-b");
    let (_, mut rebuilt) = warehouse_db("lake_wh_b").await;
    ops::backfill(ingestion.as_ref(), rebuilt_processed.as_ref(), &mut rebuilt, |_, _, _| {}).await.expect("backfill");
    assert_eq!(
        warehouse_dump(&rebuilt).await,
        warehouse_dump(&warehouse).await,
        "rebuild equals the incremental history"
    );
}

/// Terraform reads the lake's Glue schemas from a committed file; it must be what the warehouse
/// descriptions give now.
#[test]
fn the_committed_lake_schema_is_generated_from_the_warehouse_descriptions() {
    let path = repo().join("terraform/generated/lake_tables.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        committed == onyx_core::lake::schema_json(),
        "{} is out of date with crates/core/src/warehouse.rs: run `cargo run -p onyx-cli -- lake-schema > terraform/generated/lake_tables.json`",
        path.display()
    );
}

/// A processed bucket written before the calendar was kept in the transform's state (state
/// format 2, no `calendar`): the next run reads the extent of the `dim_date` rows already written
/// and closes the gap between them and its own dates (here: the sample ends in November 2024, the
/// new order's dates are today's and later).
#[tokio::test]
async fn the_first_run_after_an_upgrade_closes_the_calendar() {
    let source_db = TestDb::seeded("lake_up_src").await;
    let mut source = source_db.connect().await;
    let (_, ingestion, _) = local_dir("lake-up-in");
    let (_, processed, processed_dir) = local_dir("lake-up-out");
    let (_, mut warehouse) = warehouse_db("lake_up_wh").await;
    let first_run = run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;

    // The state as a build from before issue #16 wrote it.
    let state_path = processed_dir.join(onyx_core::keys::state(&first_run));
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).expect("state object")).expect("state JSON");
    let object = state.as_object_mut().expect("state is an object");
    assert!(object.remove("calendar").is_some(), "this build keeps the calendar in the state");
    object.insert("format".into(), serde_json::json!(2));
    std::fs::write(&state_path, serde_json::to_vec_pretty(&state).expect("json")).expect("rewrite the state");

    // One new order, all of whose dates are after the sample's last day (2024-11-22).
    source
        .batch_execute(
            "INSERT INTO sales_order (design_id, staff_id, counterparty_id, units_sold, unit_price, currency_id,
                 agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id)
             VALUES (1, 1, 1, 3, 4.50, 1, '2026-12-24', '2026-12-31', 1)",
        )
        .await
        .expect("a new order");
    run_pipeline(&mut source, ingestion.as_ref(), processed.as_ref(), &mut warehouse).await;
    assert_power_bi_model(&warehouse, "after the first run on an old state").await;
}
