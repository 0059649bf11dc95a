//! The warehouse's star schemas (sales, purchases, payments), described once. The transform's
//! output rows, the Parquet schema, the load's staging tables and COPY column lists, and the
//! warehouse DDL all derive from these descriptions. Names follow the published ToteSys warehouse
//! ERD: BI reports are written against them.

use std::fmt;

/// How a warehouse column is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WKind {
    /// A warehouse-generated surrogate key (`SERIAL`); not in the Parquet files.
    Serial,
    Int,
    Text,
    /// Exact decimal. `scale: None` is an unconstrained `NUMERIC`: the Parquet scale is then the
    /// largest scale in the run's values, so no digit is lost.
    Decimal {
        precision: u8,
        scale: Option<u8>,
    },
    Date,
    /// Time of day with microseconds (the source's precision; milliseconds before migration 3).
    Time,
    Bool,
    /// Date and time without time zone (the deletion marks).
    Timestamp,
}

/// The views BI users query (`*_current` and the analysis views), as the newest migration
/// creates them.
pub const VIEWS_SQL: &str = include_str!("warehouse_views.sql");

/// The views as migrations 3 and 5 created them (frozen: an applied migration never changes).
pub const VIEWS_SQL_V3: &str = include_str!("warehouse_views_v3.sql");

/// The schema version the descriptions are at: the newest migration that changed a table.
pub const SCHEMA_VERSION: u32 = 6;

/// The schema version from which a fact version is identified by `(id, version_order)`; before
/// it, by `(id, last_updated)`, which lost updates that kept the stamp.
pub const VERSION_KEY_SINCE: u32 = 5;

impl WKind {
    pub fn sql_type(self) -> String {
        self.sql_type_at(SCHEMA_VERSION)
    }

    /// The column type as schema version `version` had it (migrations are generated from the
    /// descriptions and must stay byte-identical once applied).
    pub fn sql_type_at(self, version: u32) -> String {
        match self {
            WKind::Serial => "SERIAL".into(),
            WKind::Int => "INTEGER".into(),
            WKind::Text => "TEXT".into(),
            WKind::Decimal { precision, scale: Some(scale) } => format!("NUMERIC({precision}, {scale})"),
            WKind::Decimal { scale: None, .. } => "NUMERIC".into(),
            WKind::Date => "DATE".into(),
            WKind::Time if version < 3 => "TIME(3)".into(),
            WKind::Time => "TIME(6)".into(),
            WKind::Bool => "BOOLEAN".into(),
            WKind::Timestamp => "TIMESTAMP".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WColumn {
    pub name: &'static str,
    pub kind: WKind,
    pub nullable: bool,
    /// The table this column references (its key column), if it is a foreign key.
    pub references: Option<&'static str>,
    /// The schema version (migration) that added the column.
    pub since: u32,
    /// What the column holds, for people: the warehouse's `COMMENT ON COLUMN` (psql `\d+`,
    /// Power BI, DBeaver) and the Glue column comment (Athena).
    pub description: &'static str,
}

const fn c(name: &'static str, kind: WKind, description: &'static str) -> WColumn {
    WColumn { name, kind, nullable: false, references: None, since: 1, description }
}
const fn n(name: &'static str, kind: WKind, description: &'static str) -> WColumn {
    WColumn { name, kind, nullable: true, references: None, since: 1, description }
}
const fn fk(name: &'static str, kind: WKind, table: &'static str, description: &'static str) -> WColumn {
    WColumn { name, kind, nullable: false, references: Some(table), since: 1, description }
}

/// The column every fact table carries since schema version 3: the order in which the extract
/// saw the version (`<run id>:<position>`), which is commit order for the versions of one row.
/// "Latest" means the greatest `version_order`, not the greatest `last_updated`.
pub const VERSION_ORDER: &str = "version_order";

const fn version_order() -> WColumn {
    WColumn {
        name: VERSION_ORDER,
        kind: Text,
        nullable: false,
        references: None,
        since: 3,
        description: "Commit order of this version among the versions of its row (<run id>:<position>); the latest version has the greatest.",
    }
}

/// The schema version from which a row whose source row was deleted is marked, never removed:
/// `deleted_at` (when the extract found it gone, on the source's clock) and `deleted_by_run` (that
/// extract run). Every table but `dim_date` has them; they are set by the load, not in Parquet.
pub const TOMBSTONES_SINCE: u32 = 6;
pub const DELETED_AT: &str = "deleted_at";
pub const DELETED_BY_RUN: &str = "deleted_by_run";

const DELETION_MARKS: [WColumn; 2] = [
    WColumn {
        name: DELETED_AT,
        kind: Timestamp,
        nullable: true,
        references: None,
        since: TOMBSTONES_SINCE,
        description: "When the row was found deleted from ToteSys (source clock); empty while it exists. Nothing is removed.",
    },
    WColumn {
        name: DELETED_BY_RUN,
        kind: Text,
        nullable: true,
        references: None,
        since: TOMBSTONES_SINCE,
        description: "The extract run that found the row deleted from ToteSys; empty while it exists.",
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Latest values only: upserted by `key`.
    Dimension,
    /// Every committed version kept: appended, unique on `(key, version_order)`.
    Fact { record_id: &'static str },
}

#[derive(Debug, PartialEq, Eq)]
pub struct WarehouseTable {
    pub name: &'static str,
    /// What the table holds, for people (`COMMENT ON TABLE`, like the columns' descriptions).
    pub description: &'static str,
    /// The dimension's primary key, or the fact's source id.
    pub key: &'static str,
    pub role: Role,
    pub columns: &'static [WColumn],
}

impl WarehouseTable {
    /// The columns carried in Parquet and loaded (all but the warehouse-generated record id).
    pub fn data_columns(&self) -> impl Iterator<Item = &WColumn> {
        self.columns.iter().filter(|c| c.kind != WKind::Serial)
    }

    /// Whether a delete of its source rows marks this table's rows (all but the generated
    /// `dim_date`).
    pub fn marks_deletes(&self) -> bool {
        self.name != DIM_DATE.name
    }

    /// Every column the table has in the warehouse: the described ones, then the deletion marks.
    pub fn all_columns(&self) -> impl Iterator<Item = &WColumn> {
        let marks: &[WColumn] = if self.marks_deletes() { &DELETION_MARKS } else { &[] };
        self.columns.iter().chain(marks.iter())
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.data_columns().position(|c| c.name == name)
    }

    pub fn named(name: &str) -> Option<&'static WarehouseTable> {
        WAREHOUSE_TABLES.iter().copied().find(|t| t.name == name)
    }

    pub fn is_fact(&self) -> bool {
        matches!(self.role, Role::Fact { .. })
    }

    /// A fact's warehouse-generated record id column.
    pub fn record_id(&self) -> Option<&'static str> {
        match self.role {
            Role::Fact { record_id } => Some(record_id),
            Role::Dimension => None,
        }
    }

    /// The columns that identify one version of a fact at schema version `version`.
    pub fn version_key_at(&self, version: u32) -> Vec<&'static str> {
        if version < VERSION_KEY_SINCE {
            vec![self.key, "last_updated_date", "last_updated_time"]
        } else {
            vec![self.key, VERSION_ORDER]
        }
    }

    /// `CREATE TABLE` for this table as schema version `version` had it, with its primary, unique
    /// and foreign keys.
    pub fn create_sql_at(&self, version: u32) -> String {
        let mut lines: Vec<String> = self
            .all_columns()
            .filter(|c| c.since <= version)
            .map(|c| {
                let null = if c.nullable || c.kind == WKind::Serial { "" } else { " NOT NULL" };
                // Compared byte-wise, so that its index serves "the version before this one".
                let collation =
                    if c.name == VERSION_ORDER && version >= VERSION_KEY_SINCE { " COLLATE \"C\"" } else { "" };
                format!("    {} {}{collation}{null}", c.name, c.kind.sql_type_at(version))
            })
            .collect();
        match self.role {
            Role::Dimension => lines.push(format!("    PRIMARY KEY ({})", self.key)),
            Role::Fact { record_id } => {
                lines.push(format!("    PRIMARY KEY ({record_id})"));
                let key = self.version_key_at(version).join(", ");
                if version < VERSION_KEY_SINCE {
                    lines.push(format!("    UNIQUE ({key})"));
                } else {
                    lines.push(format!("    CONSTRAINT {}_version_key UNIQUE ({key})", self.name));
                }
            }
        }
        for column in self.columns {
            if let Some(target) = column.references.and_then(WarehouseTable::named) {
                lines.push(format!("    FOREIGN KEY ({}) REFERENCES {} ({})", column.name, target.name, target.key));
            }
        }
        format!("CREATE TABLE {} (\n{}\n);\n", self.name, lines.join(",\n"))
    }
}

impl fmt::Display for WarehouseTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

use WKind::*;

const MONEY_10_2: WKind = Decimal { precision: 10, scale: Some(2) };
const MONEY: WKind = Decimal { precision: 38, scale: None };

pub const DIM_DATE: WarehouseTable = WarehouseTable {
    name: "dim_date",
    description: "One row per calendar day the facts refer to (created, updated, agreed and payment dates); generated, not from ToteSys.",
    key: "date_id",
    role: Role::Dimension,
    columns: &[
        c("date_id", Date, "The day (primary key); every *_date column of the facts refers to it."),
        c("year", Int, "Calendar year, e.g. 2024."),
        c("month", Int, "Month number, 1 (January) to 12."),
        c("day", Int, "Day of the month, 1 to 31."),
        c("day_of_week", Int, "ISO day of the week, 1 (Monday) to 7 (Sunday)."),
        c("day_name", Text, "Name of the weekday, e.g. Monday."),
        c("month_name", Text, "Name of the month, e.g. January; sort it by month."),
        c("quarter", Int, "Calendar quarter, 1 to 4."),
    ],
};

pub const DIM_STAFF: WarehouseTable = WarehouseTable {
    name: "dim_staff",
    description: "Terrific Totes staff, with their department; latest values (ToteSys staff and department).",
    key: "staff_id",
    role: Role::Dimension,
    columns: &[
        c("staff_id", Int, "ToteSys staff id (primary key)."),
        c("first_name", Text, "First name."),
        c("last_name", Text, "Last name."),
        c("department_name", Text, "Name of the staff member's department."),
        n("location", Text, "Where the department is based, when ToteSys records it."),
        c("email_address", Text, "Work e-mail address."),
    ],
};

pub const DIM_LOCATION: WarehouseTable = WarehouseTable {
    name: "dim_location",
    description: "Delivery addresses; latest values (ToteSys address).",
    key: "location_id",
    role: Role::Dimension,
    columns: &[
        c(
            "location_id",
            Int,
            "ToteSys address id (primary key); agreed_delivery_location_id of the facts refers to it.",
        ),
        c("address_line_1", Text, "First line of the address."),
        n("address_line_2", Text, "Second line of the address, if any."),
        n("district", Text, "District, if any."),
        c("city", Text, "City."),
        c("postal_code", Text, "Postal code."),
        c("country", Text, "Country."),
        c("phone", Text, "Contact telephone number."),
    ],
};

pub const DIM_DESIGN: WarehouseTable = WarehouseTable {
    name: "dim_design",
    description: "Tote bag designs; latest values (ToteSys design).",
    key: "design_id",
    role: Role::Dimension,
    columns: &[
        c("design_id", Int, "ToteSys design id (primary key)."),
        c("design_name", Text, "Name of the design."),
        c("file_location", Text, "Folder of the design's file."),
        c("file_name", Text, "File name of the design."),
    ],
};

pub const DIM_CURRENCY: WarehouseTable = WarehouseTable {
    name: "dim_currency",
    description: "Currencies of orders and payments; latest values (ToteSys currency).",
    key: "currency_id",
    role: Role::Dimension,
    columns: &[
        c("currency_id", Int, "ToteSys currency id (primary key)."),
        c("currency_code", Text, "ISO 4217 code, e.g. GBP; amounts are never added across currencies."),
        c("currency_name", Text, "Name of the currency, e.g. Pound sterling."),
    ],
};

pub const DIM_COUNTERPARTY: WarehouseTable = WarehouseTable {
    name: "dim_counterparty",
    description: "Customers and suppliers, with their legal address; latest values (ToteSys counterparty and address).",
    key: "counterparty_id",
    role: Role::Dimension,
    columns: &[
        c("counterparty_id", Int, "ToteSys counterparty id (primary key)."),
        c("counterparty_legal_name", Text, "Legal name of the customer or supplier."),
        c("counterparty_legal_address_line_1", Text, "First line of the legal address."),
        n("counterparty_legal_address_line_2", Text, "Second line of the legal address, if any."),
        n("counterparty_legal_district", Text, "District of the legal address, if any."),
        c("counterparty_legal_city", Text, "City of the legal address."),
        c("counterparty_legal_postal_code", Text, "Postal code of the legal address."),
        c("counterparty_legal_country", Text, "Country of the legal address."),
        c("counterparty_legal_phone_number", Text, "Telephone number of the legal address."),
    ],
};

pub const DIM_PAYMENT_TYPE: WarehouseTable = WarehouseTable {
    name: "dim_payment_type",
    description: "Kinds of payment (sales receipt, sales refund, purchase payment, purchase refund); latest values.",
    key: "payment_type_id",
    role: Role::Dimension,
    columns: &[
        c("payment_type_id", Int, "ToteSys payment type id (primary key)."),
        c("payment_type_name", Text, "Name of the payment type, e.g. SALES_RECEIPT."),
    ],
};

pub const DIM_TRANSACTION: WarehouseTable = WarehouseTable {
    name: "dim_transaction",
    description: "Transactions: each links a payment to its sales or purchase order; latest values.",
    key: "transaction_id",
    role: Role::Dimension,
    columns: &[
        c("transaction_id", Int, "ToteSys transaction id (primary key)."),
        c("transaction_type", Text, "SALE or PURCHASE."),
        n("sales_order_id", Int, "The sales order of a SALE transaction."),
        n("purchase_order_id", Int, "The purchase order of a PURCHASE transaction."),
    ],
};

pub const FACT_SALES_ORDER: WarehouseTable = WarehouseTable {
    name: "fact_sales_order",
    description: "Sales orders: one row per committed version of each order (every change kept); fact_sales_order_current holds the latest.",
    key: "sales_order_id",
    role: Role::Fact { record_id: "sales_record_id" },
    columns: &[
        c("sales_record_id", Serial, "Warehouse row id (one per version)."),
        c("sales_order_id", Int, "ToteSys sales order id; several rows are versions of one order."),
        fk("created_date", Date, "dim_date", "Day the order was created."),
        c("created_time", Time, "Time of day the order was created."),
        fk("last_updated_date", Date, "dim_date", "Day of this version's change in ToteSys."),
        c("last_updated_time", Time, "Time of day of this version's change."),
        fk("sales_staff_id", Int, "dim_staff", "The staff member who made the sale."),
        fk("counterparty_id", Int, "dim_counterparty", "The customer."),
        c("units_sold", Int, "Number of totes ordered."),
        c("unit_price", MONEY_10_2, "Price of one tote, in the order's currency."),
        fk("currency_id", Int, "dim_currency", "Currency of unit_price."),
        fk("design_id", Int, "dim_design", "Design of the totes."),
        fk("agreed_payment_date", Date, "dim_date", "Day payment is due."),
        fk("agreed_delivery_date", Date, "dim_date", "Day delivery is agreed."),
        fk("agreed_delivery_location_id", Int, "dim_location", "Where the totes are delivered."),
        version_order(),
    ],
};

pub const FACT_PURCHASE_ORDER: WarehouseTable = WarehouseTable {
    name: "fact_purchase_order",
    description: "Purchase orders: one row per committed version of each order (every change kept); fact_purchase_order_current holds the latest.",
    key: "purchase_order_id",
    role: Role::Fact { record_id: "purchase_record_id" },
    columns: &[
        c("purchase_record_id", Serial, "Warehouse row id (one per version)."),
        c("purchase_order_id", Int, "ToteSys purchase order id; several rows are versions of one order."),
        fk("created_date", Date, "dim_date", "Day the order was created."),
        c("created_time", Time, "Time of day the order was created."),
        fk("last_updated_date", Date, "dim_date", "Day of this version's change in ToteSys."),
        c("last_updated_time", Time, "Time of day of this version's change."),
        fk("staff_id", Int, "dim_staff", "The staff member who placed the order."),
        fk("counterparty_id", Int, "dim_counterparty", "The supplier."),
        c("item_code", Text, "Supplier's code of the item bought."),
        c("item_quantity", Int, "Number of items ordered."),
        c("item_unit_price", MONEY, "Price of one item, in the order's currency."),
        fk("currency_id", Int, "dim_currency", "Currency of item_unit_price."),
        fk("agreed_delivery_date", Date, "dim_date", "Day delivery is agreed."),
        fk("agreed_payment_date", Date, "dim_date", "Day payment is due."),
        fk("agreed_delivery_location_id", Int, "dim_location", "Where the items are delivered."),
        version_order(),
    ],
};

pub const FACT_PAYMENT: WarehouseTable = WarehouseTable {
    name: "fact_payment",
    description: "Payments: one row per committed version of each payment (every change kept); fact_payment_current holds the latest.",
    key: "payment_id",
    role: Role::Fact { record_id: "payment_record_id" },
    columns: &[
        c("payment_record_id", Serial, "Warehouse row id (one per version)."),
        c("payment_id", Int, "ToteSys payment id; several rows are versions of one payment."),
        fk("created_date", Date, "dim_date", "Day the payment was created."),
        c("created_time", Time, "Time of day the payment was created."),
        fk("last_updated_date", Date, "dim_date", "Day of this version's change in ToteSys."),
        c("last_updated_time", Time, "Time of day of this version's change."),
        fk(
            "transaction_id",
            Int,
            "dim_transaction",
            "The transaction (and through it the sales or purchase order) the payment settles.",
        ),
        fk("counterparty_id", Int, "dim_counterparty", "The customer or supplier."),
        c("payment_amount", MONEY, "Amount, in the payment's currency."),
        fk("currency_id", Int, "dim_currency", "Currency of payment_amount."),
        fk("payment_type_id", Int, "dim_payment_type", "Kind of payment."),
        c("paid", Bool, "Whether the payment has been made."),
        fk("payment_date", Date, "dim_date", "Day the payment is (or was) due."),
        version_order(),
    ],
};

/// Every warehouse table, dimensions first (the order they are loaded in).
pub const WAREHOUSE_TABLES: [&WarehouseTable; 11] = [
    &DIM_DATE,
    &DIM_STAFF,
    &DIM_LOCATION,
    &DIM_DESIGN,
    &DIM_CURRENCY,
    &DIM_COUNTERPARTY,
    &DIM_PAYMENT_TYPE,
    &DIM_TRANSACTION,
    &FACT_SALES_ORDER,
    &FACT_PURCHASE_ORDER,
    &FACT_PAYMENT,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_keys_point_at_dimensions_listed_earlier() {
        for (i, table) in WAREHOUSE_TABLES.iter().enumerate() {
            for column in table.columns {
                if let Some(target) = column.references {
                    let at = WAREHOUSE_TABLES.iter().position(|t| t.name == target).expect("target exists");
                    assert!(at < i, "{table}.{} → {target}", column.name);
                    assert_eq!(WAREHOUSE_TABLES[at].role, Role::Dimension);
                }
            }
        }
    }

    #[test]
    fn ddl_has_keys() {
        let sql = FACT_PAYMENT.create_sql_at(SCHEMA_VERSION);
        assert!(sql.contains("payment_record_id SERIAL,"), "{sql}");
        assert!(sql.contains("CONSTRAINT fact_payment_version_key UNIQUE (payment_id, version_order)"), "{sql}");
        assert!(sql.contains("version_order TEXT COLLATE \"C\" NOT NULL"), "{sql}");
        assert!(FACT_PAYMENT.create_sql_at(1).contains("UNIQUE (payment_id, last_updated_date, last_updated_time)"));
        assert!(sql.contains("FOREIGN KEY (payment_type_id) REFERENCES dim_payment_type (payment_type_id)"), "{sql}");
        assert!(DIM_STAFF.create_sql_at(1).contains("PRIMARY KEY (staff_id)"));
        assert!(sql.contains("created_time TIME(6) NOT NULL"), "{sql}");
        let v1 = FACT_PAYMENT.create_sql_at(1);
        assert!(v1.contains("created_time TIME(3) NOT NULL") && !v1.contains("version_order"), "{v1}");
    }
}
