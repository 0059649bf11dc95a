-- Sales value (units × unit price) by month of the order and currency (as the warehouse view).
CREATE OR REPLACE VIEW sales_by_month AS
SELECT d.year, d.month, d.month_name, c.currency_code,
       count(*) AS orders, sum(s.units_sold) AS units_sold,
       sum(s.units_sold * s.unit_price) AS sales_value
FROM fact_sales_order_current s
JOIN dim_date d ON d.date_id = s.created_date
JOIN dim_currency c ON c.currency_id = s.currency_id
GROUP BY d.year, d.month, d.month_name, c.currency_code
