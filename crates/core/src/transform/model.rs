//! Source rows → star-schema rows: the remodelling rules of pipeline.md, the validation that
//! quarantines what cannot be trusted, and the dimension dependencies (a department change
//! re-emits its staff; an address change re-emits its location and counterparties).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::rows::{Rejection, SourceRow};
use super::state::{Held, ReferenceState};
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
    /// `error`: the row was held back. `warning`: the row loaded, with the flagged attribute
    /// (e.g. a currency code ISO 4217 does not know) — listed so that operators see it.
    #[serde(default)]
    pub level: Level,
    /// The row is held in the reference state for a reference no run has brought yet, and is
    /// released automatically by the first run that has it.
    #[serde(default)]
    pub held: bool,
    /// The row's `version_order` (`<run id>:<position>`) in the run that first read it: a fact
    /// released or requeued later is emitted with it, so commit order is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_order: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Error,
    Warning,
}

/// The tables whose rows are held for an unknown reference instead of being dropped: the facts,
/// and the reference rows that name another (a staff member before their department, a
/// counterparty before its address), whose facts would otherwise wait for them forever.
pub const HELD_TABLES: [&str; 5] = ["counterparty", "staff", "sales_order", "purchase_order", "payment"];

/// Whether the state already has this version of a reference row or one committed later: an
/// older version applied again would overwrite it. Decided by `version_order` (the order the
/// extract saw the versions in, which is commit order) where the state recorded it; by
/// `last_updated` only for rows a state from before that holds.
fn superseded(
    state: &ReferenceState,
    table: &SourceTable,
    raw: &Map<String, Value>,
    version_order: Option<&str>,
) -> bool {
    let id = raw.get(table.key).and_then(Value::as_i64).and_then(|k| i32::try_from(k).ok());
    let Some(id) = id else { return false };
    if let (Some(known), Some(this)) = (state.row_order(table.name, id), version_order) {
        return known >= this;
    }
    let updated = |row: &Map<String, Value>| row.get(tables::LAST_UPDATED).and_then(Value::as_str).map(str::to_string);
    match (state.row(table.name, id).and_then(updated), updated(raw)) {
        (Some(known), Some(this)) => known >= this,
        _ => false,
    }
}

/// A quarantined line brought back by an operator's requeue request.
#[derive(Debug, Clone)]
pub struct Requeued {
    /// The request object (`_requeue/<id>.json`) and the run whose quarantine held the line.
    pub request: String,
    pub run_id: String,
    pub entry: Quarantined,
}

/// Where a row that is applied again comes from.
struct Replay {
    source_object: String,
    line: usize,
    version_order: Option<String>,
    /// Prefix of any reason it is quarantined for now.
    origin: String,
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
    /// The `version_order` of a held or requeued row being applied again (its original one).
    version_override: Option<String>,
    /// Unknown references of the fact being applied, reported only if its content is valid.
    missing: Vec<Rejection>,
    /// Attributes flagged (loaded, but wrong) on the row being applied: `(column, value, reason)`.
    flags: Vec<(String, String, String)>,
    dims: BTreeMap<&'static str, BTreeMap<i32, Vec<Cell>>>,
    /// Fact rows by `(id, version_order)`: every version is its own row, also two with the same
    /// `last_updated`.
    facts: BTreeMap<&'static str, BTreeMap<(i32, String), Vec<Cell>>>,
    /// Days the emitted facts refer to (they decide how far `dim_date` reaches).
    dates: BTreeSet<NaiveDate>,
    /// Days of the fact being applied: they count only if the fact is emitted, so a quarantined
    /// row's odd date (year 1900, 9999) never stretches the calendar.
    fact_dates: Vec<NaiveDate>,
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
            level: Level::Error,
            held: false,
            version_order: Some(self.version_order_at(input.position)),
        });
    }

    fn version_order_at(&self, position: u64) -> String {
        format!("{}:{position:010}", self.run_id)
    }

    /// The `version_order` of the row being applied.
    fn version_order(&self) -> String {
        self.version_override.clone().unwrap_or_else(|| self.version_order_at(self.position))
    }

    /// Records an attribute that is wrong but does not stop its row: an ERROR naming table, key,
    /// column and value, and a `warning` line in the run's quarantine object.
    fn warn_flags(&mut self, table: &SourceTable, object: &str, line: usize, raw: &Map<String, Value>) {
        let key = raw.get(table.key).and_then(Value::as_i64);
        for (column, value, reason) in std::mem::take(&mut self.flags) {
            tracing::error!(
                stage = "transform",
                data_quality = true,
                run_id = %self.run_id,
                table = table.name,
                key,
                column = %column,
                value = %value,
                object,
                line,
                "{}.{column} of {} {} is flagged, the row loads: {reason}",
                table.name,
                table.key,
                key.map_or("?".to_string(), |k| k.to_string())
            );
            self.quarantine.push(Quarantined {
                table: table.name.to_string(),
                source_object: object.to_string(),
                line,
                key,
                column: Some(column),
                reason,
                row: Value::Object(raw.clone()),
                level: Level::Warning,
                held: false,
                version_order: None,
            });
        }
    }

    fn dim(&mut self, table: &'static WarehouseTable, id: i32, cells: Vec<Cell>) -> Result<(), Rejection> {
        fits(table, &cells)?;
        self.dims.entry(table.name).or_default().insert(id, cells);
        Ok(())
    }

    fn fact(&mut self, table: &'static WarehouseTable, id: i32, mut cells: Vec<Cell>) -> Result<(), Rejection> {
        let version_order = self.version_order();
        cells.push(Cell::Text(version_order.clone()));
        fits(table, &cells)?;
        // Content first: only a fact whose content is valid is held for a missing reference.
        self.held_for()?;
        self.facts.entry(table.name).or_default().insert((id, version_order), cells);
        self.dates.extend(self.fact_dates.drain(..));
        Ok(())
    }

    fn date(&mut self, date: NaiveDate) -> Cell {
        self.fact_dates.push(date);
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

/// A reference of a dimension row: unknown, the row is rejected.
fn require(state: &ReferenceState, row: &SourceRow, column: &str, table: &str) -> Result<Cell, Rejection> {
    let id = row.int(column)?;
    if state.knows(table, id) { Ok(Cell::Int(id)) } else { Err(Rejection::unknown_reference(column, table, id)) }
}

/// A reference of a fact: unknown, it is noted and the rest of the row is still checked, so that
/// a fact is held for a missing reference only if its content is valid (see [`Builder::held_for`]).
fn refer(
    b: &mut Builder,
    state: &ReferenceState,
    row: &SourceRow,
    column: &str,
    table: &str,
) -> Result<Cell, Rejection> {
    require(state, row, column, table).or_else(|rejection| {
        b.missing.push(rejection);
        row.int(column).map(Cell::Int)
    })
}

impl Builder {
    /// Fails with the fact's unknown references (all of them, the first column named).
    fn held_for(&mut self) -> Result<(), Rejection> {
        let missing = std::mem::take(&mut self.missing);
        let Some(first) = missing.first() else { return Ok(()) };
        Err(Rejection {
            column: first.column.clone(),
            reason: missing.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>().join("; "),
            unknown_reference: true,
        })
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
            match result {
                Ok(()) => b.warn_flags(table, &input.object, input.line, raw),
                Err(rejection) if rejection.unknown_reference && HELD_TABLES.contains(&table.name) => {
                    let version_order = b.version_order();
                    state.held.push(Held {
                        table: table.name.to_string(),
                        key: raw.get(table.key).and_then(Value::as_i64),
                        column: rejection.column.clone(),
                        reason: rejection.reason.clone(),
                        run_id: b.run_id.clone(),
                        source_object: input.object.clone(),
                        line: input.line,
                        version_order,
                        row: raw.clone(),
                    });
                    b.reject(table, &input, Value::Object(raw.clone()), rejection);
                    if let Some(entry) = b.quarantine.last_mut() {
                        entry.held = true;
                        entry.reason = format!("{}; held until a later run has it", entry.reason);
                    }
                }
                Err(rejection) => {
                    let raw = Value::Object(raw.clone());
                    b.reject(table, &input, raw, rejection);
                }
            }
        }
    }

    /// Applies again the facts of `table` held for an unknown reference (call before the run's
    /// own lines of the table, once every reference table is applied). A fact whose references
    /// all exist now is emitted with its original `version_order` and logged at INFO; one still
    /// missing a reference stays held; one that the current rules reject for its content (a rule
    /// changed) is quarantined in this run.
    pub fn release_held(&mut self, state: &mut ReferenceState, table: &'static SourceTable) {
        if !state.held.iter().any(|h| h.table == table.name) {
            return;
        }
        let (mine, rest): (Vec<Held>, Vec<Held>) =
            std::mem::take(&mut state.held).into_iter().partition(|h| h.table == table.name);
        state.held = rest;
        for mut held in mine {
            if super::state::REFERENCE_TABLES.contains(&table.name)
                && superseded(state, table, &held.row, Some(&held.version_order))
            {
                tracing::info!(
                    stage = "transform",
                    run_id = %self.0.run_id,
                    table = table.name,
                    key = held.key,
                    held_since = %held.run_id,
                    "held {} {} {} dropped: a newer version of it has loaded",
                    table.name,
                    table.key,
                    held.key.map_or("?".to_string(), |k| k.to_string())
                );
                continue;
            }
            let replay = Replay {
                source_object: held.source_object.clone(),
                line: held.line,
                version_order: Some(held.version_order.clone()),
                origin: format!("held since run {}", held.run_id),
            };
            match self.replay(state, table, &held.row, &replay) {
                Ok(()) => tracing::info!(
                    stage = "transform",
                    run_id = %self.0.run_id,
                    table = table.name,
                    key = held.key,
                    held_since = %held.run_id,
                    version_order = %held.version_order,
                    "held {} {} {} released: its references exist now (a fact keeps its original version order)",
                    table.name,
                    table.key,
                    held.key.map_or("?".to_string(), |k| k.to_string())
                ),
                Err(rejection) if rejection.unknown_reference => {
                    held.column = rejection.column;
                    held.reason = rejection.reason;
                    state.held.push(held);
                }
                Err(rejection) => self.0.quarantine.push(Quarantined {
                    table: table.name.to_string(),
                    source_object: held.source_object,
                    line: held.line,
                    key: held.key,
                    column: rejection.column,
                    reason: format!("{}: {}", replay.origin, rejection.reason),
                    row: Value::Object(held.row),
                    level: Level::Error,
                    held: false,
                    version_order: Some(held.version_order),
                }),
            }
        }
    }

    /// Applies again quarantined lines of `table` that an operator requeued (call where
    /// [`RunBuilder::release_held`] is called): each goes through the current rules with its
    /// original `version_order`; what fails again is quarantined in this run, naming the request
    /// and the run it came from (a fact missing a reference is held). A reference row older than
    /// the one the state has is skipped: a newer version already won.
    pub fn apply_requeued(&mut self, state: &mut ReferenceState, table: &'static SourceTable, lines: Vec<Requeued>) {
        for (i, requeued) in lines.into_iter().enumerate() {
            let entry = requeued.entry;
            let Value::Object(raw) = entry.row else { continue };
            let key = raw.get(table.key).and_then(Value::as_i64);
            // Lines written before `version_order` was recorded are placed at the end of the run
            // that read them: never after a version a later run read.
            let version_order = entry
                .version_order
                .clone()
                .unwrap_or_else(|| format!("{}:{:010}", requeued.run_id, 9_000_000_000 + i as u64));
            if super::state::REFERENCE_TABLES.contains(&table.name)
                && superseded(state, table, &raw, Some(&version_order))
            {
                tracing::info!(stage = "transform", run_id = %self.0.run_id, table = table.name, key,
                    request = %requeued.request, from_run = %requeued.run_id,
                    "requeued reference row skipped: the state has a newer version of it");
                continue;
            }
            let replay = Replay {
                source_object: entry.source_object.clone(),
                line: entry.line,
                version_order: Some(version_order.clone()),
                origin: format!("requeued from run {} by {}", requeued.run_id, requeued.request),
            };
            match self.replay(state, table, &raw, &replay) {
                Ok(()) => tracing::info!(stage = "transform", run_id = %self.0.run_id, table = table.name, key,
                    request = %requeued.request, from_run = %requeued.run_id, version_order = %version_order,
                    "requeued row applied"),
                Err(rejection) => {
                    let held = rejection.unknown_reference && HELD_TABLES.contains(&table.name);
                    if held {
                        state.held.push(Held {
                            table: table.name.to_string(),
                            key,
                            column: rejection.column.clone(),
                            reason: rejection.reason.clone(),
                            run_id: requeued.run_id.clone(),
                            source_object: entry.source_object.clone(),
                            line: entry.line,
                            version_order: version_order.clone(),
                            row: raw.clone(),
                        });
                    }
                    self.0.quarantine.push(Quarantined {
                        table: table.name.to_string(),
                        source_object: entry.source_object,
                        line: entry.line,
                        key,
                        column: rejection.column,
                        reason: format!("{}: {}", replay.origin, rejection.reason),
                        row: Value::Object(raw),
                        level: Level::Error,
                        held,
                        version_order: Some(version_order),
                    });
                }
            }
        }
    }

    /// Applies a row again with its original `version_order`.
    fn replay(
        &mut self,
        state: &mut ReferenceState,
        table: &'static SourceTable,
        raw: &Map<String, Value>,
        replay: &Replay,
    ) -> Result<(), Rejection> {
        let b = &mut self.0;
        b.version_override = replay.version_order.clone();
        let result = SourceRow::parse(table, raw).and_then(|row| apply(b, state, &row, raw));
        b.version_override = None;
        if result.is_ok() {
            b.warn_flags(table, &replay.source_object, replay.line, raw);
        }
        result
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

    /// The remaining rows (with the days that extend `dim_date`) and every quarantined row;
    /// records the calendar's new extent in `state`.
    pub fn finish(self, state: &mut ReferenceState) -> RunOutput {
        finish(self.0, state)
    }
}

/// Applies one valid source row: records reference rows in the state and emits warehouse rows.
fn apply(
    b: &mut Builder,
    state: &mut ReferenceState,
    row: &SourceRow,
    raw: &Map<String, Value>,
) -> Result<(), Rejection> {
    b.missing.clear();
    b.flags.clear();
    b.fact_dates.clear();
    let id = row.key()?;
    match row.table.name {
        "currency" => {
            let code = row.text("currency_code")?;
            // A code ISO 4217 does not know (`gbp`, `CNH`) is an attribute problem, not a reason
            // to lose the currency and every fact in it: the row loads with the code as the
            // source has it and a flagged name (dim_currency.currency_name is NOT NULL).
            let name = match iso_currency::Currency::from_code(code) {
                Some(currency) => currency.name().to_string(),
                None => {
                    let flagged = format!("unknown currency code {code:?} (not ISO 4217)");
                    b.flags.push((
                        "currency_code".into(),
                        code.to_string(),
                        format!("{code:?} is not an ISO 4217 currency code; loaded with currency_name {flagged:?}"),
                    ));
                    flagged
                }
            };
            let cells = vec![Cell::Int(id), Cell::text(code), Cell::text(&name)];
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
                refer(b, state, row, "staff_id", "staff")?,
                refer(b, state, row, "counterparty_id", "counterparty")?,
                Cell::Int(units),
                Cell::Decimal(price),
                refer(b, state, row, "currency_id", "currency")?,
                refer(b, state, row, "design_id", "design")?,
                b.date_text(row, "agreed_payment_date")?,
                b.date_text(row, "agreed_delivery_date")?,
                refer(b, state, row, "agreed_delivery_location_id", "address")?,
            ]);
            b.fact(&warehouse::FACT_SALES_ORDER, id, cells)?;
        }
        "purchase_order" => {
            let mut cells = b.fact_head(row, id)?;
            let quantity = row.int("item_quantity")?;
            positive("item_quantity", quantity > 0)?;
            let price = row.decimal("item_unit_price")?;
            positive("item_unit_price", price.is_positive())?;
            cells.extend([
                refer(b, state, row, "staff_id", "staff")?,
                refer(b, state, row, "counterparty_id", "counterparty")?,
                Cell::text(row.text("item_code")?),
                Cell::Int(quantity),
                Cell::Decimal(price),
                refer(b, state, row, "currency_id", "currency")?,
                b.date_text(row, "agreed_delivery_date")?,
                b.date_text(row, "agreed_payment_date")?,
                refer(b, state, row, "agreed_delivery_location_id", "address")?,
            ]);
            b.fact(&warehouse::FACT_PURCHASE_ORDER, id, cells)?;
        }
        "payment" => {
            let mut cells = b.fact_head(row, id)?;
            let transaction = row.int("transaction_id")?;
            if !state.knows_transaction(transaction) {
                b.missing.push(Rejection::unknown_reference("transaction_id", "transaction", transaction));
            }
            cells.extend([
                Cell::Int(transaction),
                refer(b, state, row, "counterparty_id", "counterparty")?,
                Cell::Decimal(row.decimal("payment_amount")?),
                refer(b, state, row, "currency_id", "currency")?,
                refer(b, state, row, "payment_type_id", "payment_type")?,
                Cell::Bool(row.bool("paid")?),
                b.date_text(row, "payment_date")?,
            ]);
            b.fact(&warehouse::FACT_PAYMENT, id, cells)?;
        }
        other => return Err(Rejection::row(format!("no transform rule for table {other}"))),
    }
    if super::state::REFERENCE_TABLES.contains(&row.table.name) {
        state.set_row(row.table.name, id, raw.clone());
        state.set_row_order(row.table.name, id, b.version_order());
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
                level: Level::Error,
                held: false,
                version_order: None,
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

/// The days `dim_date` lacks once it reaches `dates`: it is one contiguous calendar (Power BI's
/// "mark as date table" needs every day between the first and the last), so a run emits the days
/// between the old extent and its own earliest and latest date, and nothing inside the old extent
/// (those rows loaded with earlier runs). Returns the days and the new extent.
fn extend_calendar(
    calendar: Option<(NaiveDate, NaiveDate)>,
    dates: &BTreeSet<NaiveDate>,
) -> (Vec<NaiveDate>, Option<(NaiveDate, NaiveDate)>) {
    let (Some(&first), Some(&last)) = (dates.first(), dates.last()) else { return (Vec::new(), calendar) };
    let days = |from: NaiveDate, to: NaiveDate| from.iter_days().take_while(move |d| *d <= to);
    let Some((start, end)) = calendar else { return (days(first, last).collect(), Some((first, last))) };
    let (start_now, end_now) = (start.min(first), end.max(last));
    let new_days = days(start_now, end_now).filter(|d| *d < start || *d > end).collect();
    (new_days, Some((start_now, end_now)))
}

fn finish(mut b: Builder, state: &mut ReferenceState) -> RunOutput {
    let mut tables: BTreeMap<&'static str, Vec<Vec<Cell>>> = BTreeMap::new();
    if let Some((first, last)) = state.calendar_to_fill.take() {
        b.dates.extend([first, last]);
    }
    let (new_days, calendar) = extend_calendar(state.calendar, &b.dates);
    state.calendar = calendar;
    if !new_days.is_empty() {
        tables.insert(warehouse::DIM_DATE.name, new_days.into_iter().map(date_cells).collect());
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
    fn transform(state: &mut ReferenceState, inputs: BTreeMap<&'static str, Vec<InputLine>>) -> RunOutput {
        transform_as("20261128T070000000-test", state, inputs)
    }

    /// [`transform`] as run `run_id`.
    fn transform_as(
        run_id: &str,
        state: &mut ReferenceState,
        mut inputs: BTreeMap<&'static str, Vec<InputLine>>,
    ) -> RunOutput {
        let mut builder = RunBuilder::for_run(run_id);
        for table in tables::SOURCE_TABLES {
            builder.release_held(state, table);
            builder.apply_lines(state, table, inputs.remove(table.name).unwrap_or_default());
            if table.name == tables::STAFF.name {
                builder.after_reference_tables(state);
            }
        }
        builder.finish(state)
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

    /// dim_date is one gap-free calendar from the earliest to the latest day an emitted fact
    /// refers to: the first run emits every day of its extent, a later run only the days that
    /// extend it (before and after), a run inside it none; a quarantined fact's dates (here year
    /// 1900) stretch nothing.
    #[test]
    fn dim_date_is_a_contiguous_calendar_extended_by_later_runs() {
        let payment = |id: i64, created: &str, paid_on: &str, payment_type: i64| {
            line(json!({"payment_id": id, "created_at": created, "last_updated": created, "transaction_id": 1,
                "counterparty_id": 1, "payment_amount": "1.00", "currency_id": 1, "payment_type_id": payment_type,
                "paid": false, "payment_date": paid_on, "company_ac_number": 1, "counterparty_ac_number": 2}))
        };
        let mut state = ReferenceState::default();
        for (table, row) in [
            ("counterparty", json!({"counterparty_id": 1, "legal_address_id": 1})),
            ("currency", json!({"currency_id": 1})),
            ("payment_type", json!({"payment_type_id": 1})),
        ] {
            state.set_row(table, 1, row.as_object().cloned().expect("object"));
        }
        state.add_transaction(1);
        let day = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").expect(text);
        let days_of = |output: &RunOutput| -> Vec<NaiveDate> {
            let rows = output.tables.get("dim_date").cloned().unwrap_or_default();
            rows.iter()
                .map(|row| match row[0] {
                    Cell::Date(d) => d,
                    ref other => panic!("date_id {other:?}"),
                })
                .collect()
        };
        let span = |from: &str, to: &str| day(from).iter_days().take_while(|d| *d <= day(to)).collect::<Vec<_>>();

        let first = transform(
            &mut state,
            BTreeMap::from([(
                "payment",
                vec![
                    payment(1, "2022-11-03T10:00:00", "2022-11-10", 1),
                    // Held for an unknown payment type: its 1900 dates must not reach dim_date.
                    payment(2, "1900-01-01T00:00:00", "1900-01-02", 99),
                ],
            )]),
        );
        assert!(first.quarantine.len() == 1 && first.quarantine[0].held, "{:?}", first.quarantine);
        assert_eq!(days_of(&first), span("2022-11-03", "2022-11-10"), "every day, none twice, no 1900");
        assert_eq!(state.calendar, Some((day("2022-11-03"), day("2022-11-10"))));
        for row in &first.tables["dim_date"] {
            assert_eq!(
                row,
                &date_cells(match row[0] {
                    Cell::Date(d) => d,
                    _ => unreachable!(),
                })
            );
        }

        let inside = transform(
            &mut state,
            BTreeMap::from([("payment", vec![payment(3, "2022-11-05T10:00:00", "2022-11-06", 1)])]),
        );
        assert!(days_of(&inside).is_empty(), "days already in the calendar are not emitted again");

        let wider = transform(
            &mut state,
            BTreeMap::from([("payment", vec![payment(4, "2022-10-30T10:00:00", "2022-11-14", 1)])]),
        );
        let mut expected = span("2022-10-30", "2022-11-02");
        expected.extend(span("2022-11-11", "2022-11-14"));
        assert_eq!(days_of(&wider), expected, "only the days that extend it, before and after");
        assert_eq!(state.calendar, Some((day("2022-10-30"), day("2022-11-14"))));
    }

    /// `refer` notes a fact's unknown references and `Builder::fact` reports them only after
    /// `fits` and every content check passed: a payment with an unknown transaction and a bad
    /// date is quarantined for its content (not held); with a good date it is held, and released
    /// by the run that brings the transaction, with the version order of the run that read it.
    #[test]
    fn a_fact_is_held_only_if_its_content_is_valid() {
        let payment = |date: &str| {
            line(json!({"payment_id": 7, "created_at": AT, "last_updated": AT, "transaction_id": 99,
                "counterparty_id": 1, "payment_amount": "1.00", "currency_id": 1, "payment_type_id": 1,
                "paid": false, "payment_date": date, "company_ac_number": 1, "counterparty_ac_number": 2}))
        };
        let mut state = ReferenceState::default();
        for (table, row) in [
            ("counterparty", json!({"counterparty_id": 1, "legal_address_id": 1})),
            ("currency", json!({"currency_id": 1})),
            ("payment_type", json!({"payment_type_id": 1})),
        ] {
            state.set_row(table, 1, row.as_object().cloned().expect("object"));
        }
        let bad = transform(&mut state, BTreeMap::from([("payment", vec![payment("soon")])]));
        assert_eq!(bad.quarantine.len(), 1);
        assert_eq!(bad.quarantine[0].column.as_deref(), Some("payment_date"));
        assert!(!bad.quarantine[0].held && state.held.is_empty(), "{:?}", bad.quarantine);

        let good = transform(&mut state, BTreeMap::from([("payment", vec![payment("2026-12-01")])]));
        assert!(good.quarantine[0].held && good.quarantine[0].reason.contains("transaction 99"));
        assert_eq!(state.held.len(), 1);
        let transaction = line(json!({"transaction_id": 99, "transaction_type": "SALE", "sales_order_id": 1,
            "purchase_order_id": null, "created_at": AT, "last_updated": AT}));
        let released = transform(&mut state, BTreeMap::from([("transaction", vec![transaction])]));
        assert!(released.quarantine.is_empty() && state.held.is_empty(), "{:?}", released.quarantine);
        let facts = &released.tables["fact_payment"];
        assert_eq!(facts.len(), 1);
        assert_eq!(facts[0].last(), Some(&Cell::text("20261128T070000000-test:0000000000")));
    }

    /// A reference row naming a reference not known yet (staff before its department) is held
    /// like a fact and released by the run that brings the department, emitting dim_staff; an
    /// older held version is dropped once a newer one has loaded (`superseded`).
    #[test]
    fn staff_before_their_department_are_held_and_released() {
        let mut state = ReferenceState::default();
        let staff = |name: &str, at: &str| {
            line(json!({"staff_id": 5, "first_name": name, "last_name": "O", "department_id": 3,
                "email_address": "a@b", "created_at": AT, "last_updated": at}))
        };
        let first = transform(&mut state, BTreeMap::from([("staff", vec![staff("Held", AT)])]));
        assert!(first.quarantine[0].held, "{:?}", first.quarantine);
        let dept = line(json!({"department_id": 3, "department_name": "Dispatch", "location": "Leeds",
            "manager": null, "created_at": AT, "last_updated": AT}));
        let second = transform(&mut state, BTreeMap::from([("department", vec![dept])]));
        assert!(second.quarantine.is_empty() && state.held.is_empty(), "{:?}", second.quarantine);
        assert_eq!(second.tables["dim_staff"][0][1], Cell::text("Held"));

        // Held again (department gone from the state), then a newer version loads first.
        state.rows.remove("department");
        transform(&mut state, BTreeMap::from([("staff", vec![staff("Old", "2022-11-04T00:00:00.000")])]));
        assert_eq!(state.held.len(), 1);
        let mut newer = staff("New", "2022-11-05T00:00:00.000");
        newer.parsed.as_mut().expect("row").insert("department_id".into(), json!(null));
        state.set_row("staff", 5, newer.parsed.clone().expect("row"));
        transform(&mut state, BTreeMap::new());
        assert!(state.held.is_empty(), "the older held version is dropped: {:?}", state.held);
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

    /// Issue #22 item 5, mechanism: `superseded` by `version_order`. A staff row held in run A
    /// (stamp 10:00) and a version committed later but stamped earlier (09:00, a transaction
    /// that started first) applied in run B: when run C releases the held row, it is older by
    /// commit order and is dropped. Before, `last_updated` decided and the older commit won.
    #[test]
    fn a_held_reference_row_older_by_commit_order_is_dropped_whatever_its_stamp() {
        let mut state = ReferenceState::default();
        let staff = |name: &str, department: i64, at: &str| {
            line(json!({"staff_id": 5, "first_name": name, "last_name": "O", "department_id": department,
                "email_address": "a@b", "created_at": AT, "last_updated": at}))
        };
        let dept = |id: i64| {
            line(json!({"department_id": id, "department_name": "D", "location": "Leeds", "manager": null,
                "created_at": AT, "last_updated": AT}))
        };
        let run_a = transform_as(
            "20261128T070000000-aaaa",
            &mut state,
            BTreeMap::from([("staff", vec![staff("Held", 3, "2022-11-04T10:00:00.000")])]),
        );
        assert!(run_a.quarantine[0].held);
        transform_as(
            "20261128T080000000-bbbb",
            &mut state,
            BTreeMap::from([
                ("department", vec![dept(1)]),
                ("staff", vec![staff("Later", 1, "2022-11-04T09:00:00.000")]),
            ]),
        );
        let run_c =
            transform_as("20261128T090000000-cccc", &mut state, BTreeMap::from([("department", vec![dept(3)])]));
        assert!(state.held.is_empty(), "{:?}", state.held);
        assert_eq!(state.row("staff", 5).and_then(|r| r["first_name"].as_str()), Some("Later"));
        let names: Vec<&Cell> = run_c.tables.get("dim_staff").into_iter().flatten().map(|r| &r[1]).collect();
        assert!(!names.contains(&&Cell::text("Held")), "the older commit must not come back: {names:?}");
    }

    /// Issue #22 item 5, mechanism: `apply_requeued`'s `version_order` for a line written before
    /// it was recorded: the end of the run that read it, not the requeuing run's (which made an
    /// old version `*_current` over versions later runs loaded).
    #[test]
    fn a_requeued_line_without_a_version_order_keeps_its_own_runs_place() {
        let mut state = ReferenceState::default();
        for (table, row) in [
            ("counterparty", json!({"counterparty_id": 1, "legal_address_id": 1})),
            ("currency", json!({"currency_id": 1})),
            ("payment_type", json!({"payment_type_id": 1})),
        ] {
            state.set_row(table, 1, row.as_object().cloned().expect("object"));
        }
        state.add_transaction(99);
        let row = json!({"payment_id": 7, "created_at": AT, "last_updated": AT, "transaction_id": 99,
            "counterparty_id": 1, "payment_amount": "1.00", "currency_id": 1, "payment_type_id": 1,
            "paid": false, "payment_date": "2022-11-04", "company_ac_number": 1, "counterparty_ac_number": 2});
        let entry = Quarantined {
            table: "payment".into(),
            source_object: "payment/x.jsonl".into(),
            line: 1,
            key: Some(7),
            column: None,
            reason: "old rule".into(),
            row,
            level: Level::Error,
            held: false,
            version_order: None,
        };
        let requeued = Requeued { request: "_requeue/r.json".into(), run_id: "20261101T000000000-orig".into(), entry };
        let mut builder = RunBuilder::for_run("20261130T000000000-late");
        builder.apply_requeued(&mut state, &tables::PAYMENT, vec![requeued]);
        let output = builder.finish(&mut state);
        let Some(Cell::Text(order)) = output.tables["fact_payment"][0].last() else { panic!("{output:?}") };
        assert!(order.starts_with("20261101T000000000-orig:"), "{order}");
    }
}
