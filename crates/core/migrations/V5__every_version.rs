//! Schema version 5 (issue #22): every committed version of a fact is kept, also when an update
//! kept `last_updated`. A fact version is identified by its source id and `version_order` (the
//! order the extract saw it in), no longer by `(id, last_updated)`. Rows from before migration 3
//! carry an empty `version_order`: they are numbered per id in the order the `*_current` views
//! used for them (`last_updated`, then record id), below every run id (`0:` sorts before `2…`).
//! `version_order` is compared byte-wise (`COLLATE "C"`), so the unique key's index also serves
//! the load's "version before this one" lookup. The views depend on the column: dropped and
//! created again, unchanged.

use crate::warehouse::{VERSION_ORDER, WAREHOUSE_TABLES};

pub fn migration() -> String {
    let mut sql = String::from(
        "DROP VIEW sales_by_month, sales_by_country, sales_by_design, sales_by_staff, payments_status;\n\
         DROP VIEW fact_sales_order_current, fact_purchase_order_current, fact_payment_current;\n",
    );
    for table in WAREHOUSE_TABLES.iter().filter(|t| t.is_fact()) {
        let (name, key) = (table.name, table.key);
        let record_id = table.record_id().unwrap_or(key);
        sql.push_str(&format!(
            "UPDATE {name} AS t SET {VERSION_ORDER} = '0:' || lpad(o.n::text, 10, '0')
FROM (SELECT {record_id}, row_number() OVER (PARTITION BY {key} ORDER BY last_updated_date, last_updated_time, {record_id}) AS n
      FROM {name} WHERE {VERSION_ORDER} = '') AS o
WHERE t.{record_id} = o.{record_id};
ALTER TABLE {name} ALTER COLUMN {VERSION_ORDER} TYPE TEXT COLLATE \"C\";
DO $$
DECLARE stamp_key text;
BEGIN
    SELECT conname INTO stamp_key FROM pg_constraint WHERE conrelid = '{name}'::regclass AND contype = 'u';
    EXECUTE format('ALTER TABLE {name} DROP CONSTRAINT %I', stamp_key);
END $$;
ALTER TABLE {name} ADD CONSTRAINT {name}_version_key UNIQUE ({key}, {VERSION_ORDER});
"
        ));
    }
    sql.push_str(crate::warehouse::VIEWS_SQL_V3);
    sql
}
