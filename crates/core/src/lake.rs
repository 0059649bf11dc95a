//! The processed bucket as a lake that Athena (Trino) reads through the Glue Data Catalog: one
//! Glue table per star table over its prefix, typed from the warehouse descriptions (never a
//! second column list). `onyx lake-schema` writes this as `terraform/generated/lake_tables.json`,
//! which Terraform decodes; a test fails when the committed file is out of date.
//!
//! Where Glue/Hive and the warehouse differ:
//! - Glue has no TIME type. The Parquet files hold `*_time` as `TIME(NANOS)` (an INT64 of
//!   nanoseconds since midnight); the lake declares them `bigint` and a reader sees those
//!   nanoseconds (Trino reads a TIME-annotated INT64 as BIGINT). The views keep the number; the
//!   analyst guide shows how to display it.
//! - A dimension's prefix holds every version a run emitted (history), so its Glue table is
//!   `<dimension>_history` and the view named like the warehouse table (`dim_staff`) keeps the
//!   row of the newest run, as the warehouse's upsert does.
//! - Every table is partitioned by the run's day in the key (`<table>/YYYY/MM/DD/…`, see
//!   [`crate::keys::processed_part`]) through partition projection: no crawler, no `MSCK REPAIR`.

use serde::Serialize;

use crate::frames::decimal_carrier;
use crate::warehouse::{Role, WAREHOUSE_TABLES, WColumn, WKind, WarehouseTable};

/// The partition column every lake table has: the `YYYY/MM/DD` of the run in the object key.
pub const PARTITION_COLUMN: &str = "run_date";
/// The Java date format of that path segment (Athena's `projection.<column>.format`).
pub const PARTITION_FORMAT: &str = "yyyy/MM/dd";
/// The first day the projection enumerates (no Onyx run is older).
pub const PARTITION_FIRST_DAY: &str = "2022/01/01";

/// The keys each run found deleted from the source (its tombstones, see
/// `transform::Tombstones`), one Parquet object per run under `tombstones/`: the lake's views
/// leave out what the warehouse marks. `deleted_at` is text (`YYYY-MM-DD HH:MM:SS.ffffff`, the
/// source's clock), exact where Trino's timestamp would keep milliseconds.
pub const TOMBSTONES: WarehouseTable = WarehouseTable {
    name: "tombstones",
    description: "Source keys found deleted from ToteSys, as key ranges per table; the lake's views leave them out.",
    key: "key_from",
    role: Role::Dimension,
    columns: &[
        lake_column("table_name", WKind::Text, "The warehouse table whose rows were deleted at the source."),
        lake_column("key_from", WKind::Int, "First key of the deleted range."),
        lake_column("key_to", WKind::Int, "Last key of the deleted range (inclusive)."),
        lake_column("deleted_by_run", WKind::Text, "The extract run that found the keys deleted."),
        lake_column("deleted_at", WKind::Text, "When the keys were found deleted (source clock)."),
    ],
};

const fn lake_column(name: &'static str, kind: WKind, description: &'static str) -> WColumn {
    WColumn { name, kind, nullable: false, references: None, since: 6, description }
}

/// The Glue (Hive) type of a warehouse column in the Parquet files.
pub fn glue_type(kind: WKind) -> String {
    match kind {
        WKind::Serial | WKind::Int => "int".into(),
        WKind::Text => "string".into(),
        WKind::Decimal { .. } => {
            let (precision, scale) = decimal_carrier(kind).unwrap_or((38, 18));
            format!("decimal({precision},{scale})")
        }
        WKind::Date => "date".into(),
        WKind::Time => "bigint".into(),
        WKind::Bool => "boolean".into(),
        WKind::Timestamp => "timestamp".into(),
    }
}

/// The Glue table over a star table's prefix: facts keep their name (every version, as in the
/// warehouse); dimensions are `<name>_history` (the view `<name>` has the latest row per id).
pub fn glue_table_name(table: &WarehouseTable) -> String {
    if table.is_fact() || table.name == TOMBSTONES.name {
        table.name.to_string()
    } else {
        format!("{}_history", table.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LakeColumn {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub glue_type: String,
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LakeTable {
    /// The Glue table.
    pub name: String,
    /// The warehouse table it mirrors, which is also its prefix in the processed bucket.
    pub warehouse_table: &'static str,
    pub prefix: String,
    pub kind: &'static str,
    pub key: &'static str,
    pub columns: Vec<LakeColumn>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LakeSchema {
    pub generated_by: &'static str,
    pub partition_column: &'static str,
    pub partition_format: &'static str,
    pub partition_first_day: &'static str,
    pub tables: Vec<LakeTable>,
}

fn column_comment(kind: WKind, nullable: bool) -> String {
    let what = match kind {
        WKind::Time => "time of day in nanoseconds since midnight (Parquet TIME(NANOS); Glue has no TIME type)".into(),
        WKind::Decimal { scale: None, .. } => {
            "unconstrained NUMERIC in the warehouse, carried as DECIMAL(38,18) in Parquet".to_string()
        }
        other => other.sql_type().to_lowercase(),
    };
    if nullable { format!("{what}, nullable") } else { what }
}

/// The lake's tables, in the warehouse's order, then the tombstones.
pub fn schema() -> LakeSchema {
    let tables = WAREHOUSE_TABLES
        .iter()
        .chain([&&TOMBSTONES])
        .map(|table| LakeTable {
            name: glue_table_name(table),
            warehouse_table: table.name,
            prefix: format!("{}/", table.name),
            kind: if table.is_fact() {
                "fact"
            } else if table.name == TOMBSTONES.name {
                "deletes"
            } else {
                "dimension"
            },
            key: table.key,
            columns: table
                .data_columns()
                .map(|c| LakeColumn {
                    name: c.name,
                    glue_type: glue_type(c.kind),
                    comment: format!("{} ({})", c.description, column_comment(c.kind, c.nullable)),
                })
                .collect(),
        })
        .collect();
    LakeSchema {
        generated_by: "onyx lake-schema (from crates/core/src/warehouse.rs); do not edit",
        partition_column: PARTITION_COLUMN,
        partition_format: PARTITION_FORMAT,
        partition_first_day: PARTITION_FIRST_DAY,
        tables,
    }
}

/// [`schema`] as the pretty JSON committed at `terraform/generated/lake_tables.json`.
pub fn schema_json() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse;

    #[test]
    fn lake_types_follow_the_parquet_files() {
        let schema = schema();
        let payment = schema.tables.iter().find(|t| t.name == "fact_payment").expect("fact_payment");
        let types: Vec<(&str, &str)> = payment.columns.iter().map(|c| (c.name, c.glue_type.as_str())).collect();
        assert_eq!(types[0], ("payment_id", "int"), "no warehouse record id in the lake");
        assert!(types.contains(&("created_time", "bigint")) && types.contains(&("payment_amount", "decimal(38,18)")));
        assert!(types.contains(&("paid", "boolean")) && types.contains(&("payment_date", "date")));
        let order = schema.tables.iter().find(|t| t.name == "fact_sales_order").expect("sales");
        assert!(order.columns.iter().any(|c| c.name == "unit_price" && c.glue_type == "decimal(10,2)"));
        let staff = schema.tables.iter().find(|t| t.warehouse_table == "dim_staff").expect("staff");
        assert_eq!((staff.name.as_str(), staff.prefix.as_str()), ("dim_staff_history", "dim_staff/"));
        assert_eq!(schema.tables.len(), warehouse::WAREHOUSE_TABLES.len() + 1, "and the tombstones");
        // The partition path is the day segment of the processed keys.
        let key = crate::keys::processed_part("dim_staff", "20261128T064012123-00af", 0);
        assert!(key.starts_with("dim_staff/2026/11/28/"), "{key}");
    }
}
