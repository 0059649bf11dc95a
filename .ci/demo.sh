#!/usr/bin/env bash
# The demo: fresh `totesys` and `warehouse` databases, the real sample seeded, the pipeline run
# with local directories as buckets. Safe to re-run: it starts from scratch each time.
# Run through .ci/services.sh (make demo does), which exports ONYX_TEST_PG_URL.
set -euo pipefail
out=${1:-out/demo}
onyx=${ONYX_BIN:-target/debug/onyx}
base=${ONYX_TEST_PG_URL:?run me through .ci/services.sh}

for db in totesys warehouse; do
  psql "$base/postgres" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
done
rm -rf "$out"
mkdir -p "$out"
export ONYX_SOURCE_URL="$base/totesys" ONYX_WAREHOUSE_URL="$base/warehouse"
export ONYX_INGESTION="$out/ingestion" ONYX_PROCESSED="$out/processed"

echo "== seeding ToteSys with the real sample"
"$onyx" seed
echo "== extract (first run: every row)"
"$onyx" extract | tee "$out/extract-1.json"
echo
echo "Done. Look at:"
echo "  $ONYX_INGESTION/_runs/…            run manifests (what each run wrote)"
echo "  $ONYX_INGESTION/<table>/YYYY/MM/DD  the extracted rows, JSON Lines"
