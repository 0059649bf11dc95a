-- The warehouse's views, as the newest migration creates them: what BI users query. The
-- *_current views hold the latest version of every order and payment — the one the extract saw
-- last (`version_order`), which is the one committed last, not the largest `last_updated`
-- (rows from before migration 3 carry an empty `version_order` and fall back to `last_updated`).
-- The analysis views are where a Power BI report or a notebook starts. An order or payment
-- whose source row was deleted (its latest version carries `deleted_at`, schema version 6) is
-- not current: it leaves these views, and stays in the fact table, marked.

CREATE VIEW fact_sales_order_current AS
SELECT * FROM (
    SELECT DISTINCT ON (sales_order_id) *
    FROM fact_sales_order
    ORDER BY sales_order_id, version_order COLLATE "C" DESC, last_updated_date DESC, last_updated_time DESC, sales_record_id DESC
) latest
WHERE deleted_at IS NULL;

CREATE VIEW fact_purchase_order_current AS
SELECT * FROM (
    SELECT DISTINCT ON (purchase_order_id) *
    FROM fact_purchase_order
    ORDER BY purchase_order_id, version_order COLLATE "C" DESC, last_updated_date DESC, last_updated_time DESC, purchase_record_id DESC
) latest
WHERE deleted_at IS NULL;

CREATE VIEW fact_payment_current AS
SELECT * FROM (
    SELECT DISTINCT ON (payment_id) *
    FROM fact_payment
    ORDER BY payment_id, version_order COLLATE "C" DESC, last_updated_date DESC, last_updated_time DESC, payment_record_id DESC
) latest
WHERE deleted_at IS NULL;

-- Sales value (units × unit price) by month of the order and currency.
CREATE VIEW sales_by_month AS
SELECT d.year, d.month, d.month_name, c.currency_code,
       count(*) AS orders, sum(s.units_sold) AS units_sold,
       sum(s.units_sold * s.unit_price) AS sales_value
FROM fact_sales_order_current s
JOIN dim_date d ON d.date_id = s.created_date
JOIN dim_currency c ON c.currency_id = s.currency_id
GROUP BY d.year, d.month, d.month_name, c.currency_code;

-- Sales value by the country the order is delivered to.
CREATE VIEW sales_by_country AS
SELECT l.country, c.currency_code,
       count(*) AS orders, sum(s.units_sold) AS units_sold,
       sum(s.units_sold * s.unit_price) AS sales_value
FROM fact_sales_order_current s
JOIN dim_location l ON l.location_id = s.agreed_delivery_location_id
JOIN dim_currency c ON c.currency_id = s.currency_id
GROUP BY l.country, c.currency_code;

-- Sales value per design.
CREATE VIEW sales_by_design AS
SELECT g.design_id, g.design_name, c.currency_code,
       count(*) AS orders, sum(s.units_sold) AS units_sold,
       sum(s.units_sold * s.unit_price) AS sales_value
FROM fact_sales_order_current s
JOIN dim_design g ON g.design_id = s.design_id
JOIN dim_currency c ON c.currency_id = s.currency_id
GROUP BY g.design_id, g.design_name, c.currency_code;

-- Sales value per member of staff, with their department and location.
CREATE VIEW sales_by_staff AS
SELECT st.staff_id, st.first_name, st.last_name, st.department_name, st.location, c.currency_code,
       count(*) AS orders, sum(s.units_sold) AS units_sold,
       sum(s.units_sold * s.unit_price) AS sales_value
FROM fact_sales_order_current s
JOIN dim_staff st ON st.staff_id = s.sales_staff_id
JOIN dim_currency c ON c.currency_id = s.currency_id
GROUP BY st.staff_id, st.first_name, st.last_name, st.department_name, st.location, c.currency_code;

-- Payments paid and outstanding, by payment type and currency (latest version of each payment).
CREATE VIEW payments_status AS
SELECT t.payment_type_name, c.currency_code,
       count(*) FILTER (WHERE p.paid) AS paid_count,
       coalesce(sum(p.payment_amount) FILTER (WHERE p.paid), 0) AS paid_amount,
       count(*) FILTER (WHERE NOT p.paid) AS outstanding_count,
       coalesce(sum(p.payment_amount) FILTER (WHERE NOT p.paid), 0) AS outstanding_amount
FROM fact_payment_current p
JOIN dim_payment_type t ON t.payment_type_id = p.payment_type_id
JOIN dim_currency c ON c.currency_id = p.currency_id
GROUP BY t.payment_type_name, c.currency_code;
