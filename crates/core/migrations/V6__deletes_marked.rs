//! Schema version 6 (issue #22): a row whose source row was deleted is marked, never removed.
//! Every table but `dim_date` gets `deleted_at` and `deleted_by_run` (NULL on every existing row),
//! and a partial index on its key over the marked rows, so that the load finds the marks of a
//! run's keys without scanning. The views are created again: the `*_current` views (and the
//! analysis views on them) leave out an order or payment whose latest version is marked.

use crate::warehouse::{DELETED_AT, DELETED_BY_RUN, WAREHOUSE_TABLES};

pub fn migration() -> String {
    let mut sql = String::from(
        "DROP VIEW sales_by_month, sales_by_country, sales_by_design, sales_by_staff, payments_status;\n\
         DROP VIEW fact_sales_order_current, fact_purchase_order_current, fact_payment_current;\n",
    );
    for table in WAREHOUSE_TABLES.iter().filter(|t| t.marks_deletes()) {
        let (name, key) = (table.name, table.key);
        sql.push_str(&format!(
            "ALTER TABLE {name} ADD COLUMN {DELETED_AT} TIMESTAMP, ADD COLUMN {DELETED_BY_RUN} TEXT;\n\
             CREATE INDEX {name}_deleted ON {name} ({key}) WHERE {DELETED_AT} IS NOT NULL;\n"
        ));
    }
    sql.push_str(crate::warehouse::VIEWS_SQL);
    sql
}
