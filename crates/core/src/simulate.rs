//! Makes a ToteSys source behave like the live system for a while: new sales and purchase orders
//! with their transactions and payments, payments marked paid, a new design now and then, and
//! optionally a reference-table change. Deterministic for a given seed (ids aside). Rows are
//! stamped with the database's clock, as the live system stamps them.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_postgres::Client;

use crate::db::error_text;

#[derive(Debug, Clone)]
pub struct SimulateOptions {
    /// Simulated minutes of activity (rates are accelerated so a demo shows a visible delta).
    pub minutes: u32,
    pub seed: u64,
    /// Also move a department and change an address.
    pub with_reference_changes: bool,
}

/// What a simulation changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimulateSummary {
    pub sales_orders: u32,
    pub purchase_orders: u32,
    pub payments_marked_paid: u64,
    pub designs: u32,
    pub reference_changes: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("simulating activity failed: {0}")]
pub struct SimulateError(String);

fn db(e: tokio_postgres::Error) -> SimulateError {
    SimulateError(error_text(&e))
}

async fn ids(tx: &tokio_postgres::Transaction<'_>, table: &str, key: &str) -> Result<Vec<i32>, SimulateError> {
    let rows = tx.query(format!("SELECT {key} FROM {table} ORDER BY 1").as_str(), &[]).await.map_err(db)?;
    let ids: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    if ids.is_empty() {
        return Err(SimulateError(format!("the source has no {table} rows: seed it first (onyx seed)")));
    }
    Ok(ids)
}

fn pick(rng: &mut StdRng, ids: &[i32]) -> i32 {
    ids[rng.random_range(0..ids.len())]
}

/// Two decimal places, as text (bound as NUMERIC through a cast).
fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Applies the simulated activity in one source transaction.
pub async fn simulate(client: &mut Client, options: &SimulateOptions) -> Result<SimulateSummary, SimulateError> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let tx = client.transaction().await.map_err(db)?;
    let staff = ids(&tx, "staff", "staff_id").await?;
    let counterparties = ids(&tx, "counterparty", "counterparty_id").await?;
    let currencies = ids(&tx, "currency", "currency_id").await?;
    let addresses = ids(&tx, "address", "address_id").await?;
    let mut designs = ids(&tx, "design", "design_id").await?;
    let mut summary = SimulateSummary::default();

    for minute in 0..options.minutes {
        if minute % 30 == 29 {
            let name = ["Bronze", "Granite", "Soft", "Cotton", "Frozen"][rng.random_range(0..5)];
            let row = tx
                .query_one(
                    "INSERT INTO design (design_name, file_location, file_name) VALUES ($1, '/private', $2) RETURNING design_id",
                    &[&name, &format!("{}-{}.json", name.to_lowercase(), rng.random_range(1000..9999))],
                )
                .await
                .map_err(db)?;
            designs.push(row.get(0));
            summary.designs += 1;
        }
        // About one sale a minute and a purchase every other minute.
        let sale = rng.random_bool(0.9);
        let purchase = rng.random_bool(0.5);
        let currency = pick(&mut rng, &currencies);
        let counterparty = pick(&mut rng, &counterparties);
        let delivery = rng.random_range(0..=7);
        let payment_days = rng.random_range(0..=7);
        if sale {
            let units: i32 = rng.random_range(1_000..=100_000);
            let price_cents: i64 = rng.random_range(200..=400);
            let row = tx
                .query_one(
                    "INSERT INTO sales_order (design_id, staff_id, counterparty_id, units_sold, unit_price, currency_id,
                        agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id)
                     VALUES ($1, $2, $3, $4, $5::text::numeric, $6, to_char(now() + make_interval(days => $7), 'YYYY-MM-DD'),
                        to_char(now() + make_interval(days => $8), 'YYYY-MM-DD'), $9) RETURNING sales_order_id",
                    &[
                        &pick(&mut rng, &designs),
                        &pick(&mut rng, &staff),
                        &counterparty,
                        &units,
                        &money(price_cents),
                        &currency,
                        &delivery,
                        &payment_days,
                        &pick(&mut rng, &addresses),
                    ],
                )
                .await
                .map_err(db)?;
            let order: i32 = row.get(0);
            let amount = money(i64::from(units) * price_cents);
            insert_transaction_and_payment(
                &tx,
                "SALE",
                order,
                counterparty,
                &amount,
                currency,
                1,
                payment_days,
                &mut rng,
            )
            .await?;
            summary.sales_orders += 1;
        }
        if purchase {
            let quantity: i32 = rng.random_range(1..=1_000);
            let price_cents: i64 = rng.random_range(100..=100_000);
            let code: String = (0..7).map(|_| char::from(b'A' + rng.random_range(0..26u8))).collect();
            let row = tx
                .query_one(
                    "INSERT INTO purchase_order (staff_id, counterparty_id, item_code, item_quantity, item_unit_price,
                        currency_id, agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id)
                     VALUES ($1, $2, $3, $4, $5::text::numeric, $6, to_char(now() + make_interval(days => $7), 'YYYY-MM-DD'),
                        to_char(now() + make_interval(days => $8), 'YYYY-MM-DD'), $9) RETURNING purchase_order_id",
                    &[
                        &pick(&mut rng, &staff),
                        &counterparty,
                        &code,
                        &quantity,
                        &money(price_cents),
                        &currency,
                        &delivery,
                        &payment_days,
                        &pick(&mut rng, &addresses),
                    ],
                )
                .await
                .map_err(db)?;
            let order: i32 = row.get(0);
            let amount = money(i64::from(quantity) * price_cents);
            insert_transaction_and_payment(
                &tx,
                "PURCHASE",
                order,
                counterparty,
                &amount,
                currency,
                3,
                payment_days,
                &mut rng,
            )
            .await?;
            summary.purchase_orders += 1;
        }
    }
    // The daily batch: some unpaid payments are marked paid (about one per simulated minute).
    let paid = tx
        .execute(
            "UPDATE payment SET paid = true, last_updated = now()
             WHERE payment_id IN (SELECT payment_id FROM payment WHERE NOT paid ORDER BY payment_id LIMIT $1)",
            &[&i64::from(options.minutes)],
        )
        .await
        .map_err(db)?;
    summary.payments_marked_paid = paid;
    if options.with_reference_changes {
        // A department with staff and an address a counterparty uses, so the change shows.
        let staffed = ids(&tx, "(SELECT DISTINCT department_id FROM staff) AS d", "department_id").await?;
        let legal = ids(&tx, "(SELECT DISTINCT legal_address_id FROM counterparty) AS a", "legal_address_id").await?;
        let department = pick(&mut rng, &staffed);
        tx.execute(
            "UPDATE department SET location = location || ' (moved)', last_updated = now() WHERE department_id = $1",
            &[&department],
        )
        .await
        .map_err(db)?;
        tx.execute(
            "UPDATE address SET phone = $2, last_updated = now() WHERE address_id = $1",
            &[
                &pick(&mut rng, &legal),
                &format!("{} {}", rng.random_range(1000..9999), rng.random_range(100000..999999)),
            ],
        )
        .await
        .map_err(db)?;
        summary.reference_changes = 2;
    }
    tx.commit().await.map_err(db)?;
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
async fn insert_transaction_and_payment(
    tx: &tokio_postgres::Transaction<'_>,
    kind: &str,
    order: i32,
    counterparty: i32,
    amount: &str,
    currency: i32,
    payment_type: i32,
    payment_days: i32,
    rng: &mut StdRng,
) -> Result<(), SimulateError> {
    let (sales, purchase) = if kind == "SALE" { (Some(order), None) } else { (None, Some(order)) };
    let row = tx
        .query_one(
            "INSERT INTO transaction (transaction_type, sales_order_id, purchase_order_id) VALUES ($1, $2, $3)
             RETURNING transaction_id",
            &[&kind, &sales, &purchase],
        )
        .await
        .map_err(db)?;
    let transaction: i32 = row.get(0);
    tx.execute(
        "INSERT INTO payment (transaction_id, counterparty_id, payment_amount, currency_id, payment_type_id, paid,
            payment_date, company_ac_number, counterparty_ac_number)
         VALUES ($1, $2, $3::text::numeric, $4, $5, false, to_char(now() + make_interval(days => $6), 'YYYY-MM-DD'), $7, $8)",
        &[
            &transaction,
            &counterparty,
            &amount,
            &currency,
            &payment_type,
            &payment_days,
            &rng.random_range(10_000_000..99_999_999),
            &rng.random_range(10_000_000..99_999_999),
        ],
    )
    .await
    .map_err(db)?;
    Ok(())
}
