#!/usr/bin/env bash
# The demo: fresh `onyx_demo_totesys` and `onyx_demo_warehouse` databases (names nobody's own
# database has, since the demo drops and recreates them), the real sample seeded, the pipeline run
# with local directories as buckets, then a report. Safe to re-run: it starts from scratch.
# Run through .ci/services.sh (make demo does), which exports ONYX_TEST_PG_URL.
set -euo pipefail
out=${1:-out/demo}
onyx=${ONYX_BIN:-target/debug/onyx}
base=${ONYX_TEST_PG_URL:?run me through .ci/services.sh}

source_db=onyx_demo_totesys
warehouse_db=onyx_demo_warehouse
for db in "$source_db" "$warehouse_db"; do
  psql "$base/postgres" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
done
rm -rf "$out"
mkdir -p "$out"
export ONYX_SOURCE_URL="$base/$source_db" ONYX_WAREHOUSE_URL="$base/$warehouse_db"
export ONYX_INGESTION="$out/ingestion" ONYX_PROCESSED="$out/processed"

echo "== 1. seeding ToteSys (database $source_db) with the real sample"
"$onyx" seed
echo
echo "== 2. first run: every row, extract → transform → load"
"$onyx" run
echo
echo "== 3. an hour of live-like activity in ToteSys, then the pipeline again: only the delta moves"
"$onyx" simulate --minutes 60 --seed 7 --with-reference-changes
"$onyx" run
echo
echo "== 4. where every run got to"
"$onyx" runs
echo
"$onyx" status
echo
echo "== 5. the report"
"$onyx" report --out "$out/report"
echo
echo "== 6. verification: the warehouse against ToteSys, as of the newest loaded snapshot"
"$onyx" verify
echo
echo "== 7. the lake: the Athena views of lake/views run by DuckDB over the processed Parquet"
python3 lake/duckdb_views.py --processed "$ONYX_PROCESSED" \
  --sql "SELECT year, month, currency_code, orders, sales_value FROM sales_by_month ORDER BY year DESC, month DESC LIMIT 6"
echo
echo "Done. Look at:"
printf '  %-56s %s\n' \
  "$out/report/index.html" "the report: open it in a browser" \
  "psql $base/$warehouse_db" "the warehouse: try SELECT * FROM sales_by_month" \
  "$ONYX_INGESTION/_runs/" "extract run manifests (rows: JSON Lines per table)" \
  "$ONYX_PROCESSED/<table>/YYYY/MM/DD/" "star-schema Parquet per run"
