#!/usr/bin/env bash
# Creates or replaces the lake's Athena views: runs lake/views/*.sql in file-name order
# (dimensions, *_current, then the analysis views that use them) in the workgroup and Glue
# database Terraform made (`terraform output lake`). `make deploy` runs it after apply; `make
# lake-views` runs it alone. Stops at the first file Athena rejects, naming it and the reason.
set -euo pipefail
cd "$(dirname "$0")/.."

aws=${INFRA_AWS:-aws}
tf=${INFRA_TF:-terraform -chdir=terraform}

lake=$($tf output -json lake)
if [[ "$lake" == "null" ]]; then
    echo "lake-views: create_lake = false, no lake views to create"
    exit 0
fi
field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$lake" "$1"; }
database=$(field database)
workgroup=$(field workgroup)

for file in lake/views/*.sql; do
    id=$($aws athena start-query-execution --work-group "$workgroup" \
        --query-execution-context "Database=$database" --query-string "file://$file" \
        --query QueryExecutionId --output text)
    while :; do
        state=$($aws athena get-query-execution --query-execution-id "$id" \
            --query QueryExecution.Status.State --output text)
        case "$state" in
            SUCCEEDED) echo "lake-views: $file → $database ($workgroup)"; break ;;
            FAILED | CANCELLED)
                reason=$($aws athena get-query-execution --query-execution-id "$id" \
                    --query QueryExecution.Status.StateChangeReason --output text)
                echo "lake-views: Athena $state $file (query $id): $reason" >&2
                exit 1
                ;;
            *) sleep 1 ;;
        esac
    done
done
