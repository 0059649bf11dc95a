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
    let mut counts = Vec::new();
    for table in SOURCE_TABLES {
        let compressed =
            sample_csv(table.name).ok_or(SeedError::Sample { table: table.name, reason: "missing".into() })?;
        let csv =
            zstd::decode_all(compressed).map_err(|e| SeedError::Sample { table: table.name, reason: e.to_string() })?;
        let rows = copy_csv(&tx, table, csv).await?;
        counts.push((table.name, rows));
    }
    reset_sequences(&tx).await?;
    tx.commit().await.map_err(|e| SeedError::Database { table: "commit", reason: error_text(&e) })?;
    Ok(counts)
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
