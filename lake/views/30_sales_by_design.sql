-- Sales value per design (as the warehouse view).
CREATE OR REPLACE VIEW sales_by_design AS
SELECT g.design_id, g.design_name, c.currency_code,
       count(*) AS orders, sum(s.units_sold) AS units_sold,
       sum(s.units_sold * s.unit_price) AS sales_value
FROM fact_sales_order_current s
JOIN dim_design g ON g.design_id = s.design_id
JOIN dim_currency c ON c.currency_id = s.currency_id
GROUP BY g.design_id, g.design_name, c.currency_code
