//! Schema version 3 (issue #10): fact times keep the source's microseconds (`TIME(6)`), and
//! every fact row carries `version_order`, the order the extract saw it in, so that the
//! `*_current` views pick the version committed last. Existing rows get an empty
//! `version_order` (older than any new one). The views depend on the retyped columns, so they are
//! dropped and created again from `warehouse_views.sql`.

use crate::warehouse::{WAREHOUSE_TABLES, WKind};

pub fn migration() -> String {
    let mut sql = String::from(
        "DROP VIEW sales_by_month, sales_by_country, sales_by_design, sales_by_staff, payments_status;\n\
         DROP VIEW fact_sales_order_current, fact_purchase_order_current, fact_payment_current;\n",
    );
    for table in WAREHOUSE_TABLES.iter().filter(|t| t.is_fact()) {
        let mut changes: Vec<String> = table
            .columns
            .iter()
            .filter(|c| c.kind == WKind::Time && c.since < 3)
            .map(|c| format!("ALTER COLUMN {} TYPE {}", c.name, c.kind.sql_type_at(3)))
            .collect();
        let added: Vec<_> = table.columns.iter().filter(|c| c.since == 3).collect();
        changes.extend(added.iter().map(|c| format!("ADD COLUMN {} {} NOT NULL DEFAULT ''", c.name, c.kind.sql_type_at(3))));
        sql.push_str(&format!("ALTER TABLE {} {};\n", table.name, changes.join(", ")));
        for column in added {
            sql.push_str(&format!("ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT;\n", table.name, column.name));
        }
    }
    sql.push_str(crate::warehouse::VIEWS_SQL_V3);
    sql
}
