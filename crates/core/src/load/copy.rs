//! Binary `COPY … FROM STDIN` of warehouse rows into a temporary staging table.

use bytes::BytesMut;
use futures_util::pin_mut;
use tokio_postgres::Transaction;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::values::Cell;
use crate::warehouse::{WKind, WarehouseTable};

/// The staging type of a column: the warehouse type, except exact decimals travel as text.
fn staging_type(kind: WKind) -> (Type, &'static str) {
    match kind {
        WKind::Int | WKind::Serial => (Type::INT4, "INTEGER"),
        WKind::Text | WKind::Decimal { .. } => (Type::TEXT, "TEXT"),
        WKind::Date => (Type::DATE, "DATE"),
        WKind::Time => (Type::TIME, "TIME"),
        WKind::Bool => (Type::BOOL, "BOOLEAN"),
        WKind::Timestamp => (Type::TIMESTAMP, "TIMESTAMP"),
    }
}

impl ToSql for Cell {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Cell::Null => Ok(IsNull::Yes),
            Cell::Int(v) => v.to_sql(ty, out),
            Cell::Text(v) => v.to_sql(ty, out),
            Cell::Decimal(v) => v.to_string().to_sql(ty, out),
            Cell::Date(v) => v.to_sql(ty, out),
            Cell::Time(v) => v.to_sql(ty, out),
            Cell::Bool(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        [Type::INT4, Type::TEXT, Type::DATE, Type::TIME, Type::BOOL].contains(ty)
    }

    to_sql_checked!();
}

/// Creates `stage_<table>` (dropped at commit); returns its name.
pub async fn create_stage(tx: &Transaction<'_>, table: &WarehouseTable) -> Result<String, tokio_postgres::Error> {
    let stage = format!("stage_{}", table.name);
    let columns: Vec<String> = table.data_columns().map(|c| format!("{} {}", c.name, staging_type(c.kind).1)).collect();
    tx.batch_execute(&format!("CREATE TEMP TABLE {stage} ({}) ON COMMIT DROP", columns.join(", "))).await?;
    Ok(stage)
}

/// Streams rows into the staging table with binary COPY.
pub async fn copy_rows(
    tx: &Transaction<'_>,
    table: &WarehouseTable,
    stage: &str,
    rows: &[Vec<Cell>],
) -> Result<u64, tokio_postgres::Error> {
    let names: Vec<&str> = table.data_columns().map(|c| c.name).collect();
    let types: Vec<Type> = table.data_columns().map(|c| staging_type(c.kind).0).collect();
    let sink = tx.copy_in(&format!("COPY {stage} ({}) FROM STDIN (FORMAT binary)", names.join(", "))).await?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    for row in rows {
        let values: Vec<&(dyn ToSql + Sync)> = row.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&values).await?;
    }
    writer.finish().await
}
