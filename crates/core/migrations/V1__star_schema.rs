//! The three star schemas and the load ledger, generated from the warehouse descriptions
//! (`crate::warehouse`) as schema version 1 had them. Later schema changes are new migrations,
//! never edits of this one: a test checks the migrated schema against the descriptions.

pub fn migration() -> String {
    let mut sql = String::new();
    for table in crate::warehouse::WAREHOUSE_TABLES {
        sql.push_str(&table.create_sql_at(1));
    }
    sql.push_str(crate::load::LEDGER_DDL);
    sql
}
