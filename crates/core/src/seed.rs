//! The real ToteSys sample (a 2024-11-15 snapshot, 48k rows), vendored compressed in
//! `crates/core/sample/`, and the loader that puts it into an empty source database.

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_postgres::Client;

use crate::db::error_text;
use crate::tables::{SOURCE_TABLES, SourceTable};

/// The ToteSys OLTP schema, as published.
pub const SCHEMA_SQL: &str = include_str!("../sample/schema.sql");

/// The compressed CSV of a source table (header row, empty unquoted field = NULL).
pub fn sample_csv(table: &str) -> Option<&'static [u8]> {
    Some(match table {
        "currency" => include_bytes!("../sample/currency.csv.zst"),
        "department" => include_bytes!("../sample/department.csv.zst"),
        "address" => include_bytes!("../sample/address.csv.zst"),
        "counterparty" => include_bytes!("../sample/counterparty.csv.zst"),
        "staff" => include_bytes!("../sample/staff.csv.zst"),
        "design" => include_bytes!("../sample/design.csv.zst"),
        "payment_type" => include_bytes!("../sample/payment_type.csv.zst"),
        "sales_order" => include_bytes!("../sample/sales_order.csv.zst"),
        "purchase_order" => include_bytes!("../sample/purchase_order.csv.zst"),
        "transaction" => include_bytes!("../sample/transaction.csv.zst"),
        "payment" => include_bytes!("../sample/payment.csv.zst"),
        _ => return None,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("the source database is not empty: table {table} already exists (seed needs an empty database)")]
    NotEmpty { table: String },
    #[error("the vendored sample of {table} is damaged: {reason}")]
    Sample { table: &'static str, reason: String },
    #[error("seeding {table} failed: {reason}")]
    Database { table: &'static str, reason: String },
}

/// Rows loaded per table.
pub type SeedCounts = Vec<(&'static str, u64)>;

/// Creates the ToteSys schema in an empty database and loads the real sample, then moves every
/// id sequence past the loaded ids.
pub async fn seed_sample(client: &mut Client) -> Result<SeedCounts, SeedError> {
    let tx = create_schema(client).await?;
    let mut counts = Vec::new();
    for table in SOURCE_TABLES {
        counts.push((table.name, copy_sample(&tx, table).await?));
    }
    finish(tx).await?;
    Ok(counts)
}

/// Checks the database holds none of the ToteSys tables, then creates them in a transaction.
async fn create_schema(client: &mut Client) -> Result<tokio_postgres::Transaction<'_>, SeedError> {
    let existing = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ANY($1)",
            &[&SOURCE_TABLES.iter().map(|t| t.name).collect::<Vec<_>>()],
        )
        .await
        .map_err(|e| SeedError::Database { table: "information_schema", reason: error_text(&e) })?;
    if let Some(row) = existing.first() {
        return Err(SeedError::NotEmpty { table: row.get(0) });
    }
    let tx = client.transaction().await.map_err(|e| SeedError::Database { table: "schema", reason: error_text(&e) })?;
    tx.batch_execute(SCHEMA_SQL).await.map_err(|e| SeedError::Database { table: "schema", reason: error_text(&e) })?;
    Ok(tx)
}

/// Loads a table's rows from the vendored sample.
async fn copy_sample(tx: &tokio_postgres::Transaction<'_>, table: &'static SourceTable) -> Result<u64, SeedError> {
    let compressed = sample_csv(table.name).ok_or(SeedError::Sample { table: table.name, reason: "missing".into() })?;
    let csv =
        zstd::decode_all(compressed).map_err(|e| SeedError::Sample { table: table.name, reason: e.to_string() })?;
    copy_csv(tx, table, csv).await
}

/// Moves the sequences past the loaded ids and commits.
async fn finish(tx: tokio_postgres::Transaction<'_>) -> Result<(), SeedError> {
    reset_sequences(&tx).await?;
    tx.commit().await.map_err(|e| SeedError::Database { table: "commit", reason: error_text(&e) })
}

/// Streams CSV (with a header naming exactly the described columns) into a table with COPY.
pub async fn copy_csv(
    tx: &tokio_postgres::Transaction<'_>,
    table: &'static SourceTable,
    csv: Vec<u8>,
) -> Result<u64, SeedError> {
    let header = csv.split(|b| *b == b'\n').next().unwrap_or_default();
    let header = String::from_utf8_lossy(header);
    let expected: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
    if header.trim_end().split(',').collect::<Vec<_>>() != expected {
        return Err(SeedError::Sample {
            table: table.name,
            reason: format!("CSV header {:?} does not match the columns {:?}", header.trim_end(), expected.join(",")),
        });
    }
    let sql = format!(
        "COPY \"{}\" ({}) FROM STDIN WITH (FORMAT csv, HEADER true)",
        table.name,
        expected.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
    );
    let db = |e: tokio_postgres::Error| SeedError::Database { table: table.name, reason: error_text(&e) };
    let sink = tx.copy_in::<_, Bytes>(sql.as_str()).await.map_err(db)?;
    futures_util::pin_mut!(sink);
    sink.send(Bytes::from(csv)).await.map_err(db)?;
    sink.finish().await.map_err(db)
}

/// Moves each table's id sequence past its largest id, so new rows get fresh ids.
pub async fn reset_sequences(tx: &tokio_postgres::Transaction<'_>) -> Result<(), SeedError> {
    for table in SOURCE_TABLES {
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence('\"{name}\"', '{key}'), GREATEST(COALESCE(MAX(\"{key}\"), 0), 1), MAX(\"{key}\") IS NOT NULL) FROM \"{name}\"",
            name = table.name,
            key = table.key
        );
        tx.execute(sql.as_str(), &[])
            .await
            .map_err(|e| SeedError::Database { table: table.name, reason: error_text(&e) })?;
    }
    Ok(())
}

/// Rows per real-sample row for the scaled tables, and the sample's sizes.
const SAMPLE_DESIGNS: u64 = 473;
const SAMPLE_SALES: u64 = 11_187;
const SAMPLE_PURCHASES: u64 = 4_649;

/// The statements that generate `scale`× the sample's designs, orders, transactions and
/// payments, in order. Values follow the sample's shapes: units 1,000–100,000, prices 2.00–4.00,
/// agreed dates 0–7 days after creation, ~60% of payments later marked paid at the 07:55 batch
/// (with `last_updated` bumped), names with quotes and commas, three rows per millisecond.
/// Every random value is a hash of (row number, seed, purpose): deterministic, whatever the plan.
pub fn synthetic_sql(scale: u64, seed: u64) -> Vec<(&'static str, String)> {
    let designs = SAMPLE_DESIGNS * scale;
    let sales = SAMPLE_SALES * scale;
    let purchases = SAMPLE_PURCHASES * scale;
    // A uniform [0, 1) draw for row g and purpose k.
    let r =
        |k: u64| format!("((hashint8extended(g, {}) & 9007199254740991)::float8 / 9007199254740992.0)", seed * 64 + k);
    // Creation times from the sample's first to its last day, three rows per millisecond.
    let created = |n: u64| {
        format!(
            "date_trunc('milliseconds', timestamp '2022-11-03 14:20:52.186' + ((g - 1) / 3) * (interval '743 days' / {}))",
            n.div_ceil(3).max(1)
        )
    };
    vec![
        (
            "design",
            format!(
                "INSERT INTO design (design_id, created_at, design_name, file_location, file_name, last_updated)
                 SELECT g, c, n, (ARRAY['/usr','/private','/opt/\"quoted\"','/Users, shared','/home'])[1 + floor({r1} * 5)::int],
                        lower(replace(n, ' ', '-')) || '-' || to_char(c, 'YYYYMMDD') || '.json', c
                 FROM generate_series(1, {designs}) g,
                      LATERAL (SELECT {c} AS c,
                        (ARRAY['Wooden','Steel','Bronze','Granite','Soft','Cotton','Frozen','O''Reilly','Fresh, Organic','Rubber','Plastic','Concrete'])[1 + floor({r0} * 12)::int] AS n) x",
                r0 = r(0),
                r1 = r(1),
                c = created(designs),
            ),
        ),
        (
            "sales_order",
            format!(
                "INSERT INTO sales_order (sales_order_id, created_at, last_updated, design_id, staff_id, counterparty_id,
                    units_sold, unit_price, currency_id, agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id)
                 SELECT g, c, c, 1 + floor({r0} * {designs})::int, 1 + floor({r1} * 20)::int, 1 + floor({r2} * 20)::int,
                    1000 + floor({r3} * 99001)::int, round((2 + {r4} * 2)::numeric, 2), 1 + floor({r5} * 3)::int,
                    to_char(c + floor({r6} * 8)::int * interval '1 day', 'YYYY-MM-DD'),
                    to_char(c + floor({r7} * 8)::int * interval '1 day', 'YYYY-MM-DD'), 1 + floor({r8} * 30)::int
                 FROM generate_series(1, {sales}) g, LATERAL (SELECT {c} AS c) x",
                r0 = r(10),
                r1 = r(11),
                r2 = r(12),
                r3 = r(13),
                r4 = r(14),
                r5 = r(15),
                r6 = r(16),
                r7 = r(17),
                r8 = r(18),
                c = created(sales),
            ),
        ),
        (
            "purchase_order",
            format!(
                "INSERT INTO purchase_order (purchase_order_id, created_at, last_updated, staff_id, counterparty_id, item_code,
                    item_quantity, item_unit_price, currency_id, agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id)
                 SELECT g, c, c, 1 + floor({r1} * 20)::int, 1 + floor({r2} * 20)::int, upper(substr(md5(g::text || '{seed}'), 1, 7)),
                    1 + floor({r3} * 1000)::int, round((1 + {r4} * 999)::numeric, 2), 1 + floor({r5} * 3)::int,
                    to_char(c + floor({r6} * 8)::int * interval '1 day', 'YYYY-MM-DD'),
                    to_char(c + floor({r7} * 8)::int * interval '1 day', 'YYYY-MM-DD'), 1 + floor({r8} * 30)::int
                 FROM generate_series(1, {purchases}) g, LATERAL (SELECT {c} AS c) x",
                r1 = r(21),
                r2 = r(22),
                r3 = r(23),
                r4 = r(24),
                r5 = r(25),
                r6 = r(26),
                r7 = r(27),
                r8 = r(28),
                c = created(purchases),
            ),
        ),
        (
            "transaction",
            format!(
                "INSERT INTO transaction (transaction_id, transaction_type, sales_order_id, purchase_order_id, created_at, last_updated)
                 SELECT sales_order_id, 'SALE', sales_order_id, NULL, created_at, created_at FROM sales_order
                 UNION ALL
                 SELECT {sales} + purchase_order_id, 'PURCHASE', NULL, purchase_order_id, created_at, created_at FROM purchase_order"
            ),
        ),
        (
            "payment",
            format!(
                "INSERT INTO payment (payment_id, created_at, last_updated, transaction_id, counterparty_id, payment_amount,
                    currency_id, payment_type_id, paid, payment_date, company_ac_number, counterparty_ac_number)
                 SELECT g, o.created_at,
                    CASE WHEN {r0} < 0.6 THEN (o.created_at::date + 1 + floor({r1} * 4)::int) + time '07:55:11' + floor({r2} * 1000) * interval '1 millisecond'
                         ELSE o.created_at END,
                    g, o.counterparty_id, o.amount, o.currency_id,
                    CASE WHEN o.sale THEN (CASE WHEN {r3} < 0.05 THEN 2 ELSE 1 END) ELSE (CASE WHEN {r3} < 0.05 THEN 4 ELSE 3 END) END,
                    {r0} < 0.6, to_char(o.created_at + floor({r4} * 8)::int * interval '1 day', 'YYYY-MM-DD'),
                    10000000 + floor({r5} * 89999999)::int, 10000000 + floor({r6} * 89999999)::int
                 FROM (SELECT sales_order_id::bigint AS g, created_at, counterparty_id, units_sold * unit_price AS amount, currency_id, true AS sale
                       FROM sales_order
                       UNION ALL
                       SELECT {sales} + purchase_order_id, created_at, counterparty_id, item_quantity * item_unit_price, currency_id, false
                       FROM purchase_order) o",
                r0 = r(30),
                r1 = r(31),
                r2 = r(32),
                r3 = r(33),
                r4 = r(34),
                r5 = r(35),
                r6 = r(36),
            ),
        ),
    ]
}

/// Creates the ToteSys schema in an empty database and fills it with synthetic data at `scale`×
/// the real sample: the reference tables at their real size (the real rows), the rest generated
/// by [`synthetic_sql`]. `progress` is told each table as it starts.
pub async fn seed_synthetic(
    client: &mut Client,
    scale: u64,
    seed: u64,
    mut progress: impl FnMut(&str),
) -> Result<SeedCounts, SeedError> {
    let tx = create_schema(client).await?;
    let mut counts = Vec::new();
    for table in SOURCE_TABLES {
        if ["currency", "department", "address", "counterparty", "staff", "payment_type"].contains(&table.name) {
            progress(table.name);
            counts.push((table.name, copy_sample(&tx, table).await?));
        }
    }
    for (name, sql) in synthetic_sql(scale, seed) {
        progress(name);
        let table = SOURCE_TABLES.iter().find(|t| t.name == name).map(|t| t.name).unwrap_or("synthetic");
        let rows =
            tx.execute(sql.as_str(), &[]).await.map_err(|e| SeedError::Database { table, reason: error_text(&e) })?;
        counts.push((table, rows));
    }
    finish(tx).await?;
    Ok(counts)
}
