//! Source rows → star-schema rows: the remodelling rules of pipeline.md, the validation that
//! quarantines what cannot be trusted, and the dimension dependencies (a department change
//! re-emits its staff; an address change re-emits its location and counterparties).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::rows::{Rejection, SourceRow};
use super::state::ReferenceState;
use crate::frames;
use crate::tables::{self, SourceTable};
use crate::values::{Cell, parse_date};
use crate::warehouse::{self, WKind, WarehouseTable};

/// A row that failed validation, with everything an operator needs to find and fix it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quarantined {
    pub table: String,
    pub source_object: String,
    /// 1-based line in the source object (0 when the whole object is affected).
    pub line: usize,
    pub key: Option<i64>,
    pub column: Option<String>,
    pub reason: String,
    /// The row as it was read (or the raw text when it was not JSON).
    pub row: Value,
}

/// One line of an extracted object, parsed as JSON or not.
#[derive(Debug, Clone)]
pub struct InputLine {
    pub object: String,
    pub line: usize,
    /// The row's position among its table's rows in the run (0-based, across objects).
    pub position: u64,
    pub parsed: Result<Map<String, Value>, String>,
}

/// Everything one run produces.
#[derive(Debug, Default)]
pub struct RunOutput {
    /// Rows per warehouse table, in `data_columns` order, sorted deterministically.
    pub tables: BTreeMap<&'static str, Vec<Vec<Cell>>>,
    pub quarantine: Vec<Quarantined>,
}

#[derive(Default)]
struct Builder {
    /// The run being transformed, and the position of the row being applied: a fact's
    /// `version_order` is `<run id>:<position>`.
    run_id: String,
    position: u64,
    dims: BTreeMap<&'static str, BTreeMap<i32, Vec<Cell>>>,
    facts: BTreeMap<&'static str, BTreeMap<(i32, NaiveDateTime), Vec<Cell>>>,
    dates: BTreeSet<NaiveDate>,
    quarantine: Vec<Quarantined>,
    changed_departments: BTreeSet<i32>,
    changed_addresses: BTreeSet<i32>,
    changed_staff: BTreeSet<i32>,
    changed_counterparties: BTreeSet<i32>,
}

impl Builder {
    fn reject(&mut self, table: &SourceTable, input: &InputLine, raw: Value, rejection: Rejection) {
        let key = raw.get(table.key).and_then(Value::as_i64);
        self.quarantine.push(Quarantined {
            table: table.name.to_string(),
            source_object: input.object.clone(),
            line: input.line,
            key,
            column: rejection.column,
            reason: rejection.reason,
            row: raw,
        });
    }

    fn dim(&mut self, table: &'static WarehouseTable, id: i32, cells: Vec<Cell>) -> Result<(), Rejection> {
        fits(table, &cells)?;
        self.dims.entry(table.name).or_default().insert(id, cells);
        Ok(())
    }

    fn fact(
        &mut self,
        table: &'static WarehouseTable,
        version: (i32, NaiveDateTime),
        mut cells: Vec<Cell>,
    ) -> Result<(), Rejection> {
        cells.push(Cell::Text(format!("{}:{:010}", self.run_id, self.position)));
        fits(table, &cells)?;
        self.facts.entry(table.name).or_default().insert(version, cells);
        Ok(())
    }

    fn date(&mut self, date: NaiveDate) -> Cell {
        self.dates.insert(date);
        Cell::Date(date)
    }

    /// A `YYYY-MM-DD` source string as a DATE cell.
    fn date_text(&mut self, row: &SourceRow, column: &str) -> Result<Cell, Rejection> {
        let text = row.text(column)?;
        let date =
            parse_date(text).ok_or_else(|| Rejection::column(column, format!("{text:?} is not a YYYY-MM-DD date")))?;
        Ok(self.date(date))
    }

    /// The columns every fact starts with: its source id, then created and last updated, each
    /// split into DATE and TIME.
    fn fact_head(&mut self, row: &SourceRow, id: i32) -> Result<Vec<Cell>, Rejection> {
        let [created_date, created_time] = self.split(row, "created_at")?;
        let [updated_date, updated_time] = self.split(row, "last_updated")?;
        Ok(vec![Cell::Int(id), created_date, created_time, updated_date, updated_time])
    }

    /// A timestamp split into DATE and TIME (microseconds kept).
    fn split(&mut self, row: &SourceRow, column: &str) -> Result<[Cell; 2], Rejection> {
        let at = row.timestamp(column)?;
        Ok([self.date(at.date()), Cell::Time(at.time())])
    }
}

/// Checks a built row against its warehouse table: required values present, decimals within the
/// column's precision and scale (so one odd value cannot fail a whole run later). Decimals are
/// judged by value: trailing zeros are not precision, so a value is rejected only if storing it
/// would change it — a real digit beyond the column's scale (for an unconstrained NUMERIC, beyond
/// the 18 places of its Parquet carrier DECIMAL(38, 18)) or too many integer digits.
fn fits(table: &WarehouseTable, cells: &[Cell]) -> Result<(), Rejection> {
    for (column, cell) in table.data_columns().zip(cells) {
        match (frames::decimal_carrier(column.kind), cell) {
            (_, Cell::Null) if !column.nullable => return Err(Rejection::column(column.name, "is null but required")),
            (Some((precision, scale)), Cell::Decimal(d)) => {
                let integer_digits = u32::from(precision - scale);
                let limit = match column.kind {
                    WKind::Decimal { scale: Some(_), .. } => String::new(),
                    _ => format!(", as its Parquet carrier DECIMAL({precision}, {scale}) holds"),
                };
                if d.real_scale() > scale {
                    return Err(Rejection::column(
                        column.name,
                        format!(
                            "{} value {d} does not fit {}: it has {} real decimal places, at most {scale} are kept{limit}",
                            column.name,
                            column.kind.sql_type(),
                            d.real_scale()
                        ),
                    ));
                }
                if d.integer_digits() > integer_digits {
                    return Err(Rejection::column(
                        column.name,
                        format!(
                            "{} value {d} does not fit {}: it has {} integer digits, at most {integer_digits} are kept{limit}",
                            column.name,
                            column.kind.sql_type(),
                            d.integer_digits()
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn require(state: &ReferenceState, row: &SourceRow, column: &str, table: &str) -> Result<Cell, Rejection> {
    let id = row.int(column)?;
    if state.knows(table, id) {
        Ok(Cell::Int(id))
    } else {
        Err(Rejection::column(
            column,
            format!("unknown reference: {table} {id} is in neither this run nor an earlier one"),
        ))
    }
}

fn positive(column: &str, value_is_positive: bool) -> Result<(), Rejection> {
    if value_is_positive { Ok(()) } else { Err(Rejection::column(column, "must be positive")) }
}

/// One run's transform, fed object by object so that memory stays bounded: tables are fed in
/// dependency order (references first, so a reference introduced in the same run is known to
/// the rows that use it), and finished rows can be taken out between objects.
#[derive(Default)]
pub struct RunBuilder(Builder);

impl RunBuilder {
    /// A builder for run `run_id` (which names the versions of its facts).
    pub fn for_run(run_id: &str) -> RunBuilder {
        RunBuilder(Builder { run_id: run_id.to_string(), ..Builder::default() })
    }

    /// Validates and applies the lines of one source table (or one object of it).
    pub fn apply_lines(&mut self, state: &mut ReferenceState, table: &'static SourceTable, lines: Vec<InputLine>) {
        let b = &mut self.0;
        for input in lines {
            let raw = match input.parsed {
                Ok(ref raw) => raw,
                Err(ref error) => {
                    let rejection = Rejection::row(format!("not a JSON object: {error}"));
                    b.reject(table, &input, Value::Null, rejection);
                    continue;
                }
            };
            b.position = input.position;
            let result = SourceRow::parse(table, raw).and_then(|row| apply(b, state, &row, raw));
            if let Err(rejection) = result {
                let raw = Value::Object(raw.clone());
                b.reject(table, &input, raw, rejection);
            }
        }
    }

    /// Call once every reference table (up to staff) is applied: emits the staff and counterparty
    /// rows whose department or address changed.
    pub fn after_reference_tables(&mut self, state: &ReferenceState) {
        emit_dependent_dimensions(&mut self.0, state);
    }

    /// Takes the finished rows of every table but `dim_date` (which grows until the end), sorted.
    pub fn take_rows(&mut self) -> BTreeMap<&'static str, Vec<Vec<Cell>>> {
        let b = &mut self.0;
        let mut tables = BTreeMap::new();
        for (name, rows) in std::mem::take(&mut b.dims) {
            tables.insert(name, rows.into_values().collect::<Vec<_>>());
        }
        for (name, rows) in std::mem::take(&mut b.facts) {
            tables.insert(name, rows.into_values().collect());
        }
        tables.retain(|_, rows| !rows.is_empty());
        tables
    }

    /// The remaining rows (with `dim_date`) and every quarantined row.
    pub fn finish(self) -> RunOutput {
        finish(self.0)
    }
}

/// Applies one valid source row: records reference rows in the state and emits warehouse rows.
fn apply(
    b: &mut Builder,
    state: &mut ReferenceState,
    row: &SourceRow,
    raw: &Map<String, Value>,
) -> Result<(), Rejection> {
    let id = row.key()?;
    match row.table.name {
        "currency" => {
            let code = row.text("currency_code")?;
            let currency = iso_currency::Currency::from_code(code).ok_or_else(|| {
                Rejection::column("currency_code", format!("{code:?} is not an ISO 4217 currency code"))
            })?;
            let cells = vec![Cell::Int(id), Cell::text(code), Cell::text(currency.name())];
            b.dim(&warehouse::DIM_CURRENCY, id, cells)?;
        }
        "department" => {
            b.changed_departments.insert(id);
        }
        "address" => {
            b.dim(&warehouse::DIM_LOCATION, id, location_cells(id, row)?)?;
            b.changed_addresses.insert(id);
        }
        "counterparty" => {
            require(state, row, "legal_address_id", "address")?;
            b.changed_counterparties.insert(id);
        }
        "staff" => {
            require(state, row, "department_id", "department")?;
            b.changed_staff.insert(id);
        }
        "design" => {
            let cells = vec![
                Cell::Int(id),
                Cell::text(row.text("design_name")?),
                Cell::text(row.text("file_location")?),
                Cell::text(row.text("file_name")?),
            ];
            b.dim(&warehouse::DIM_DESIGN, id, cells)?;
        }
        "payment_type" => {
            let cells = vec![Cell::Int(id), Cell::text(row.text("payment_type_name")?)];
            b.dim(&warehouse::DIM_PAYMENT_TYPE, id, cells)?;
        }
        "transaction" => {
            let kind = row.text("transaction_type")?;
            let sales = row.opt_int("sales_order_id")?;
            let purchase = row.opt_int("purchase_order_id")?;
            match (kind, sales, purchase) {
                ("SALE", Some(_), None) | ("PURCHASE", None, Some(_)) => {}
                ("SALE" | "PURCHASE", _, _) => {
                    return Err(Rejection::row(format!(
                        "a {kind} transaction must have exactly its own order id (sales_order_id {sales:?}, purchase_order_id {purchase:?})"
                    )));
                }
                _ => {
                    return Err(Rejection::column(
                        "transaction_type",
                        format!("{kind:?} is neither SALE nor PURCHASE"),
                    ));
                }
            }
            let cells = vec![Cell::Int(id), Cell::text(kind), Cell::opt_int(sales), Cell::opt_int(purchase)];
            b.dim(&warehouse::DIM_TRANSACTION, id, cells)?;
            state.add_transaction(id);
        }
        "sales_order" => {
            let mut cells = b.fact_head(row, id)?;
            let units = row.int("units_sold")?;
            positive("units_sold", units > 0)?;
            let price = row.decimal("unit_price")?;
            positive("unit_price", price.is_positive())?;
            cells.extend([
                require(state, row, "staff_id", "staff")?,
                require(state, row, "counterparty_id", "counterparty")?,
                Cell::Int(units),
                Cell::Decimal(price),
                require(state, row, "currency_id", "currency")?,
                require(state, row, "design_id", "design")?,
                b.date_text(row, "agreed_payment_date")?,
                b.date_text(row, "agreed_delivery_date")?,
                require(state, row, "agreed_delivery_location_id", "address")?,
            ]);
            let version = (id, row.timestamp("last_updated")?);
            b.fact(&warehouse::FACT_SALES_ORDER, version, cells)?;
        }
        "purchase_order" => {
            let mut cells = b.fact_head(row, id)?;
            let quantity = row.int("item_quantity")?;
            positive("item_quantity", quantity > 0)?;
            let price = row.decimal("item_unit_price")?;
            positive("item_unit_price", price.is_positive())?;
            cells.extend([
                require(state, row, "staff_id", "staff")?,
                require(state, row, "counterparty_id", "counterparty")?,
                Cell::text(row.text("item_code")?),
                Cell::Int(quantity),
                Cell::Decimal(price),
                require(state, row, "currency_id", "currency")?,
                b.date_text(row, "agreed_delivery_date")?,
                b.date_text(row, "agreed_payment_date")?,
                require(state, row, "agreed_delivery_location_id", "address")?,
            ]);
            let version = (id, row.timestamp("last_updated")?);
            b.fact(&warehouse::FACT_PURCHASE_ORDER, version, cells)?;
        }
        "payment" => {
            let mut cells = b.fact_head(row, id)?;
            let transaction = row.int("transaction_id")?;
            if !state.knows_transaction(transaction) {
                return Err(Rejection::column(
                    "transaction_id",
                    format!("unknown reference: transaction {transaction} is in neither this run nor an earlier one"),
                ));
            }
            cells.extend([
                Cell::Int(transaction),
                require(state, row, "counterparty_id", "counterparty")?,
                Cell::Decimal(row.decimal("payment_amount")?),
                require(state, row, "currency_id", "currency")?,
                require(state, row, "payment_type_id", "payment_type")?,
                Cell::Bool(row.bool("paid")?),
                b.date_text(row, "payment_date")?,
            ]);
            let version = (id, row.timestamp("last_updated")?);
            b.fact(&warehouse::FACT_PAYMENT, version, cells)?;
        }
        other => return Err(Rejection::row(format!("no transform rule for table {other}"))),
    }
    if super::state::REFERENCE_TABLES.contains(&row.table.name) {
        state.set_row(row.table.name, id, raw.clone());
    }
    Ok(())
}

fn location_cells(id: i32, address: &SourceRow) -> Result<Vec<Cell>, Rejection> {
    Ok(vec![
        Cell::Int(id),
        Cell::text(address.text("address_line_1")?),
        Cell::opt_text(address.opt_text("address_line_2")?),
        Cell::opt_text(address.opt_text("district")?),
        Cell::text(address.text("city")?),
        Cell::text(address.text("postal_code")?),
        Cell::text(address.text("country")?),
        Cell::text(address.text("phone")?),
    ])
}

fn state_row(state: &ReferenceState, table: &'static SourceTable, id: i32) -> Result<SourceRow, Rejection> {
    let raw = state
        .row(table.name, id)
        .ok_or_else(|| Rejection::row(format!("unknown reference: {} {id} is not known", table.name)))?;
    SourceRow::parse(table, raw)
}

fn staff_cells(state: &ReferenceState, id: i32) -> Result<Vec<Cell>, Rejection> {
    let staff = state_row(state, &tables::STAFF, id)?;
    let department = state_row(state, &tables::DEPARTMENT, staff.int("department_id")?)?;
    Ok(vec![
        Cell::Int(id),
        Cell::text(staff.text("first_name")?),
        Cell::text(staff.text("last_name")?),
        Cell::text(department.text("department_name")?),
        Cell::opt_text(department.opt_text("location")?),
        Cell::text(staff.text("email_address")?),
    ])
}

fn counterparty_cells(state: &ReferenceState, id: i32) -> Result<Vec<Cell>, Rejection> {
    let counterparty = state_row(state, &tables::COUNTERPARTY, id)?;
    let address_id = counterparty.int("legal_address_id")?;
    let address = state_row(state, &tables::ADDRESS, address_id)?;
    let mut cells = vec![Cell::Int(id), Cell::text(counterparty.text("counterparty_legal_name")?)];
    // The legal address columns are dim_location's, without its id.
    cells.extend(location_cells(address_id, &address)?.into_iter().skip(1));
    Ok(cells)
}

/// dim_staff and dim_counterparty rows for every row that changed itself or through the
/// department or address it uses.
fn emit_dependent_dimensions(b: &mut Builder, state: &ReferenceState) {
    let int_field = |row: &Map<String, Value>, field: &str| row.get(field).and_then(Value::as_i64).map(|v| v as i32);
    let mut staff = std::mem::take(&mut b.changed_staff);
    for (id, row) in state.rows_of(tables::STAFF.name) {
        if int_field(row, "department_id").is_some_and(|d| b.changed_departments.contains(&d)) {
            staff.insert(*id);
        }
    }
    let mut counterparties = std::mem::take(&mut b.changed_counterparties);
    for (id, row) in state.rows_of(tables::COUNTERPARTY.name) {
        if int_field(row, "legal_address_id").is_some_and(|a| b.changed_addresses.contains(&a)) {
            counterparties.insert(*id);
        }
    }
    let rebuilt = staff
        .into_iter()
        .map(|id| (&tables::STAFF, &warehouse::DIM_STAFF, id, staff_cells(state, id)))
        .chain(
            counterparties
                .into_iter()
                .map(|id| (&tables::COUNTERPARTY, &warehouse::DIM_COUNTERPARTY, id, counterparty_cells(state, id))),
        )
        .collect::<Vec<_>>();
    for (source, table, id, cells) in rebuilt {
        if let Err(rejection) = cells.and_then(|cells| b.dim(table, id, cells)) {
            // Only reachable if the state itself is inconsistent: say so, with the row.
            b.quarantine.push(Quarantined {
                table: source.name.to_string(),
                source_object: "reference state".into(),
                line: 0,
                key: Some(i64::from(id)),
                column: rejection.column,
                reason: format!("{} could not be rebuilt: {}", table.name, rejection.reason),
                row: state.row(source.name, id).cloned().map(Value::Object).unwrap_or(Value::Null),
            });
        }
    }
}

fn date_cells(date: NaiveDate) -> Vec<Cell> {
    vec![
        Cell::Date(date),
        Cell::Int(date.year()),
        Cell::Int(date.month() as i32),
        Cell::Int(date.day() as i32),
        Cell::Int(date.weekday().number_from_monday() as i32),
        Cell::text(&date.format("%A").to_string()),
        Cell::text(&date.format("%B").to_string()),
        Cell::Int(date.month0() as i32 / 3 + 1),
    ]
}

fn finish(b: Builder) -> RunOutput {
    let mut tables: BTreeMap<&'static str, Vec<Vec<Cell>>> = BTreeMap::new();
    if !b.dates.is_empty() {
        tables.insert(warehouse::DIM_DATE.name, b.dates.iter().copied().map(date_cells).collect());
    }
    for (name, rows) in b.dims {
        tables.insert(name, rows.into_values().collect());
    }
    for (name, rows) in b.facts {
        tables.insert(name, rows.into_values().collect());
    }
    tables.retain(|_, rows| !rows.is_empty());
    debug_assert!(tables.keys().all(|name| WarehouseTable::named(name).is_some()));
    RunOutput { tables, quarantine: b.quarantine }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(table_row: Value) -> InputLine {
        InputLine {
            object: "t/x.jsonl".into(),
            line: 1,
            position: 0,
            parsed: Ok(table_row.as_object().cloned().expect("object")),
        }
    }

    const AT: &str = "2022-11-03T14:20:52.186";

    /// Transforms one run's lines (grouped per source table) against the state of earlier runs, and
    /// advances the state; all output at once, as `transform_one` feeds a [`RunBuilder`].
    fn transform(state: &mut ReferenceState, mut inputs: BTreeMap<&'static str, Vec<InputLine>>) -> RunOutput {
        let mut builder = RunBuilder::default();
        for table in tables::SOURCE_TABLES {
            builder.apply_lines(state, table, inputs.remove(table.name).unwrap_or_default());
            if table.name == tables::STAFF.name {
                builder.after_reference_tables(state);
            }
        }
        builder.finish()
    }

    /// `fits` judges a decimal by its value: trailing zeros are not precision, so only a real digit
    /// beyond the column's scale (or the carrier's 18 places for an unconstrained NUMERIC) or too
    /// many integer digits reject it, with a reason naming the column and the value.
    #[test]
    fn decimals_fit_by_value() {
        use crate::values::Decimal;
        let d = |text: &str| Cell::Decimal(Decimal::parse(text).expect(text));
        let date = Cell::Date(NaiveDate::from_ymd_opt(2026, 11, 28).expect("date"));
        let time = Cell::Time(chrono::NaiveTime::from_hms_opt(7, 0, 0).expect("time"));
        let payment = |amount: Cell| {
            let i = Cell::Int;
            vec![
                i(1),
                date.clone(),
                time.clone(),
                date.clone(),
                time.clone(),
                i(1),
                i(1),
                amount,
                i(1),
                i(1),
                Cell::Bool(true),
                date.clone(),
            ]
        };
        let order = |price: Cell| {
            let i = Cell::Int;
            vec![
                i(1),
                date.clone(),
                time.clone(),
                date.clone(),
                time.clone(),
                i(1),
                i(1),
                i(5),
                price,
                i(1),
                i(1),
                date.clone(),
                date.clone(),
                i(1),
            ]
        };
        for amount in ["1392.9300000000000000", "1.1234567890123", "0.000000000000000001", "99999999999999999999.5"] {
            assert_eq!(fits(&warehouse::FACT_PAYMENT, &payment(d(amount))), Ok(()), "{amount}");
        }
        assert_eq!(fits(&warehouse::FACT_SALES_ORDER, &order(d("3.000"))), Ok(()), "3.000 is 3.00");
        assert_eq!(fits(&warehouse::FACT_SALES_ORDER, &order(d("12345678.0000"))), Ok(()));
        for (table, row, column, value) in [
            (&warehouse::FACT_PAYMENT, payment(d("1.1234567890123456789")), "payment_amount", "1.1234567890123456789"),
            (&warehouse::FACT_PAYMENT, payment(d("123456789012345678901")), "payment_amount", "123456789012345678901"),
            (&warehouse::FACT_SALES_ORDER, order(d("2.505")), "unit_price", "2.505"),
            (&warehouse::FACT_SALES_ORDER, order(d("123456789.00")), "unit_price", "123456789.00"),
        ] {
            let rejection = fits(table, &row).expect_err(value);
            assert_eq!(rejection.column.as_deref(), Some(column), "{value}");
            assert!(rejection.reason.contains(column) && rejection.reason.contains(value), "{}", rejection.reason);
        }
    }

    #[test]
    fn dim_date_uses_iso_weekdays() {
        let monday = NaiveDate::from_ymd_opt(2022, 11, 7).expect("date");
        let cells = date_cells(monday);
        assert_eq!(cells[4], Cell::Int(1));
        assert_eq!(cells[5], Cell::text("Monday"));
        assert_eq!(cells[6], Cell::text("November"));
        assert_eq!(cells[7], Cell::Int(4));
        let sunday = NaiveDate::from_ymd_opt(2022, 11, 6).expect("date");
        assert_eq!(date_cells(sunday)[4], Cell::Int(7));
    }

    #[test]
    fn a_department_change_re_emits_its_staff() {
        let mut state = ReferenceState::default();
        let dept = |location: &str| {
            line(json!({"department_id": 1, "department_name": "Dispatch", "location": location, "manager": null,
                "created_at": AT, "last_updated": AT}))
        };
        let staff = line(json!({"staff_id": 5, "first_name": "A", "last_name": "O'B", "department_id": 1,
            "email_address": "a@b", "created_at": AT, "last_updated": AT}));
        let first = transform(&mut state, BTreeMap::from([("department", vec![dept("Leds")]), ("staff", vec![staff])]));
        assert_eq!(first.tables["dim_staff"][0][4], Cell::text("Leds"));
        let second = transform(&mut state, BTreeMap::from([("department", vec![dept("Leeds")])]));
        assert_eq!(second.tables["dim_staff"].len(), 1);
        assert_eq!(second.tables["dim_staff"][0][4], Cell::text("Leeds"));
        assert!(second.quarantine.is_empty());
    }
}
