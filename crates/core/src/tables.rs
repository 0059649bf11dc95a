//! The ToteSys source tables, described once. The extract query, the JSON field names, the seed
//! loader and the transform's row readers all derive from these descriptions.

use std::fmt;

/// How a source column is typed, and therefore how it is read, written as JSON and validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `INT` / `SERIAL`: a JSON number.
    Int,
    /// `VARCHAR`: a JSON string, byte for byte.
    Text,
    /// `NUMERIC`: a JSON string holding the exact decimal digits (never a float).
    Numeric,
    /// `TIMESTAMP` without time zone: a JSON string `YYYY-MM-DDTHH:MM:SS.mmm`.
    Timestamp,
    /// `BOOLEAN`: a JSON boolean.
    Bool,
}

impl Kind {
    /// PostgreSQL type name, as `information_schema.columns.data_type` reports it.
    pub fn pg_data_type(self) -> &'static str {
        match self {
            Kind::Int => "integer",
            Kind::Text => "character varying",
            Kind::Numeric => "numeric",
            Kind::Timestamp => "timestamp without time zone",
            Kind::Bool => "boolean",
        }
    }
}

/// One column of a source table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub nullable: bool,
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column { name, kind, nullable: false }
}

const fn opt(name: &'static str, kind: Kind) -> Column {
    Column { name, kind, nullable: true }
}

/// One ToteSys table: its name, columns (in source order) and primary key.
#[derive(Debug, PartialEq, Eq)]
pub struct SourceTable {
    pub name: &'static str,
    /// The single-column integer primary key.
    pub key: &'static str,
    pub columns: &'static [Column],
}

impl SourceTable {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Looks a table up by name.
    pub fn named(name: &str) -> Option<&'static SourceTable> {
        SOURCE_TABLES.iter().copied().find(|t| t.name == name)
    }
}

impl fmt::Display for SourceTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

use Kind::*;

pub const CURRENCY: SourceTable = SourceTable {
    name: "currency",
    key: "currency_id",
    columns: &[
        col("currency_id", Int),
        col("currency_code", Text),
        col("created_at", Timestamp),
        col("last_updated", Timestamp),
    ],
};

pub const DEPARTMENT: SourceTable = SourceTable {
    name: "department",
    key: "department_id",
    columns: &[
        col("department_id", Int),
        col("department_name", Text),
        opt("location", Text),
        opt("manager", Text),
        col("created_at", Timestamp),
        col("last_updated", Timestamp),
    ],
};

pub const ADDRESS: SourceTable = SourceTable {
    name: "address",
    key: "address_id",
    columns: &[
        col("address_id", Int),
        col("address_line_1", Text),
        opt("address_line_2", Text),
        opt("district", Text),
        col("city", Text),
        col("postal_code", Text),
        col("country", Text),
        col("phone", Text),
        col("created_at", Timestamp),
        col("last_updated", Timestamp),
    ],
};

pub const COUNTERPARTY: SourceTable = SourceTable {
    name: "counterparty",
    key: "counterparty_id",
    columns: &[
        col("counterparty_id", Int),
        col("counterparty_legal_name", Text),
        col("legal_address_id", Int),
        opt("commercial_contact", Text),
        opt("delivery_contact", Text),
        col("created_at", Timestamp),
        col("last_updated", Timestamp),
    ],
};

pub const STAFF: SourceTable = SourceTable {
    name: "staff",
    key: "staff_id",
    columns: &[
        col("staff_id", Int),
        col("first_name", Text),
        col("last_name", Text),
        col("department_id", Int),
        col("email_address", Text),
        col("created_at", Timestamp),
        col("last_updated", Timestamp),
    ],
};

pub const DESIGN: SourceTable = SourceTable {
    name: "design",
    key: "design_id",
    columns: &[
        col("design_id", Int),
        col("created_at", Timestamp),
        col("design_name", Text),
        col("file_location", Text),
        col("file_name", Text),
        col("last_updated", Timestamp),
    ],
};

pub const PAYMENT_TYPE: SourceTable = SourceTable {
    name: "payment_type",
    key: "payment_type_id",
    columns: &[
        col("payment_type_id", Int),
        col("payment_type_name", Text),
        col("created_at", Timestamp),
        col("last_updated", Timestamp),
    ],
};

pub const SALES_ORDER: SourceTable = SourceTable {
    name: "sales_order",
    key: "sales_order_id",
    columns: &[
        col("sales_order_id", Int),
        col("created_at", Timestamp),
        col("last_updated", Timestamp),
        col("design_id", Int),
        col("staff_id", Int),
        col("counterparty_id", Int),
        col("units_sold", Int),
        col("unit_price", Numeric),
        col("currency_id", Int),
        col("agreed_delivery_date", Text),
        col("agreed_payment_date", Text),
        col("agreed_delivery_location_id", Int),
    ],
};

pub const PURCHASE_ORDER: SourceTable = SourceTable {
    name: "purchase_order",
    key: "purchase_order_id",
    columns: &[
        col("purchase_order_id", Int),
        col("created_at", Timestamp),
        col("last_updated", Timestamp),
        col("staff_id", Int),
        col("counterparty_id", Int),
        col("item_code", Text),
        col("item_quantity", Int),
        col("item_unit_price", Numeric),
        col("currency_id", Int),
        col("agreed_delivery_date", Text),
        col("agreed_payment_date", Text),
        col("agreed_delivery_location_id", Int),
    ],
};

pub const TRANSACTION: SourceTable = SourceTable {
    name: "transaction",
    key: "transaction_id",
    columns: &[
        col("transaction_id", Int),
        col("transaction_type", Text),
        opt("sales_order_id", Int),
        opt("purchase_order_id", Int),
        col("created_at", Timestamp),
        col("last_updated", Timestamp),
    ],
};

pub const PAYMENT: SourceTable = SourceTable {
    name: "payment",
    key: "payment_id",
    columns: &[
        col("payment_id", Int),
        col("created_at", Timestamp),
        col("last_updated", Timestamp),
        col("transaction_id", Int),
        col("counterparty_id", Int),
        col("payment_amount", Numeric),
        col("currency_id", Int),
        col("payment_type_id", Int),
        col("paid", Bool),
        col("payment_date", Text),
        col("company_ac_number", Int),
        col("counterparty_ac_number", Int),
    ],
};

/// All source tables, in dependency order (referenced tables first): the order the seed loads
/// them and the order the transform applies them.
pub const SOURCE_TABLES: [&SourceTable; 11] = [
    &CURRENCY,
    &DEPARTMENT,
    &ADDRESS,
    &COUNTERPARTY,
    &STAFF,
    &DESIGN,
    &PAYMENT_TYPE,
    &SALES_ORDER,
    &PURCHASE_ORDER,
    &TRANSACTION,
    &PAYMENT,
];

/// Every source table carries this column; extraction windows are defined on it.
pub const LAST_UPDATED: &str = "last_updated";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_its_key_and_last_updated() {
        for table in SOURCE_TABLES {
            let key = table.column(table.key).expect("key column is described");
            assert_eq!(key.kind, Kind::Int, "{table}");
            assert!(!key.nullable, "{table}");
            let lu = table.column(LAST_UPDATED).expect("last_updated is described");
            assert_eq!(lu.kind, Kind::Timestamp, "{table}");
        }
    }
}
