-- Sales value per member of staff, with their department and location (as the warehouse view).
CREATE OR REPLACE VIEW sales_by_staff AS
SELECT st.staff_id, st.first_name, st.last_name, st.department_name, st.location, c.currency_code,
       count(*) AS orders, sum(s.units_sold) AS units_sold,
       sum(s.units_sold * s.unit_price) AS sales_value
FROM fact_sales_order_current s
JOIN dim_staff st ON st.staff_id = s.sales_staff_id
JOIN dim_currency c ON c.currency_id = s.currency_id
GROUP BY st.staff_id, st.first_name, st.last_name, st.department_name, st.location, c.currency_code
