-- Sales value by the country the order is delivered to (as the warehouse view).
CREATE OR REPLACE VIEW sales_by_country AS
SELECT l.country, c.currency_code,
       count(*) AS orders, sum(s.units_sold) AS units_sold,
       sum(s.units_sold * s.unit_price) AS sales_value
FROM fact_sales_order_current s
JOIN dim_location l ON l.location_id = s.agreed_delivery_location_id
JOIN dim_currency c ON c.currency_id = s.currency_id
GROUP BY l.country, c.currency_code
