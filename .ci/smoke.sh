#!/usr/bin/env bash
# `make smoke`: one run through the deployed pipeline. Invokes the extract function with a real
# EventBridge scheduled-event payload (synchronously, so the answer names the run), then
# `onyx wait` follows that run through the processed bucket and the warehouse ledger and prints
# it once loaded, or fails naming the stage that did not finish (tests/smoke.rs covers that part
# offline). Needs AWS credentials, the Terraform state (for the bucket names) and a way to the
# warehouse: ONYX_WAREHOUSE_URL (e.g. through the SSM tunnel, docs/deploy.md) or, when it is
# reachable from here, the warehouse secret (the default).
set -euo pipefail

prefix="${INFRA_NAME_PREFIX:-onyx}"
aws="${INFRA_AWS:-aws}"
terraform="${INFRA_TERRAFORM:-terraform} -chdir=${INFRA_TF_DIR:-terraform}"
onyx="${INFRA_ONYX:-target/debug/onyx}"
timeout="${INFRA_SMOKE_TIMEOUT:-900}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The payload EventBridge sends for the schedule rule (the handler's event type requires it).
rule_arn="$($aws events describe-rule --name "$prefix-extract-schedule" --query Arn --output text)"
python3 - "$rule_arn" > "$work/event.json" <<'PY'
import datetime, json, sys, uuid
arn = sys.argv[1]
_, _, _, region, account, _ = arn.split(":", 5)
print(json.dumps({
    "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
    "account": account, "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "region": region, "resources": [arn], "detail": {},
}))
PY

echo "invoking $prefix-extract with a scheduled event (waits for the run, up to the function's timeout)"
# RequestResponse: Lambda does not retry it, and the answer (summary, not_run, skipped or the
# function's error) is written to answer.json for `onyx wait` to judge.
$aws lambda invoke --function-name "$prefix-extract" --cli-binary-format raw-in-base64-out \
    --cli-read-timeout 900 --payload "file://$work/event.json" "$work/answer.json" \
    --query '{status: StatusCode, error: FunctionError}' --output text

ingestion="s3://$($terraform output -raw ingestion_bucket)"
processed="s3://$($terraform output -raw processed_bucket)"
if [[ -z "${ONYX_WAREHOUSE_URL:-}" ]]; then
    export ONYX_WAREHOUSE_SECRET="${ONYX_WAREHOUSE_SECRET:-$prefix/warehouse-db}"
fi
"$onyx" wait --extract-answer "$work/answer.json" --timeout "$timeout" \
    --ingestion "$ingestion" --processed "$processed"
