#!/usr/bin/env bash
# Checks the Lambda zips a deploy (or plan) is about to use against the SHA-256 the package job
# recorded (issue #13 item 7). EXPECTED_SHA256SUMS holds that job's `sha256sum` lines
# ("<sha256>  <bin>/bootstrap.zip"); they reach this job as a job output, not through the
# artefact store, so a zip and its sum cannot be swapped together. Fails unless the lines name
# exactly the three zips, equal the artefact's own SHA256SUMS, and every zip in DIR matches.
#
#   usage: EXPECTED_SHA256SUMS=... check-zips.sh DIR
set -euo pipefail

dir=${1:?usage: EXPECTED_SHA256SUMS=... check-zips.sh DIR}
read -r -a bins <<< "${INFRA_LAMBDA_BINS:-onyx-extract onyx-transform onyx-load}"

expected=$(printf '%s\n' "${EXPECTED_SHA256SUMS:-}" | sed '/^[[:space:]]*$/d' | sort -k2)
if [[ -z "$expected" ]]; then
    echo "check-zips: EXPECTED_SHA256SUMS is empty: the package job recorded no SHA-256" >&2
    exit 1
fi
if grep -vqE '^[0-9a-f]{64}  [a-z0-9-]+/bootstrap\.zip$' <<< "$expected"; then
    echo "check-zips: EXPECTED_SHA256SUMS holds a line that is not '<sha256>  <bin>/bootstrap.zip':" >&2
    echo "$expected" >&2
    exit 1
fi
want=$(printf '%s/bootstrap.zip\n' "${bins[@]}" | sort)
listed=$(awk '{print $2}' <<< "$expected")
if [[ "$listed" != "$want" ]]; then
    echo "check-zips: the recorded zips are" $listed "but the functions are" $want >&2
    exit 1
fi
if [[ ! -f "$dir/SHA256SUMS" ]] || [[ "$(sed '/^[[:space:]]*$/d' "$dir/SHA256SUMS" | sort -k2)" != "$expected" ]]; then
    echo "check-zips: $dir/SHA256SUMS is missing or differs from what the package job recorded" >&2
    exit 1
fi
cd "$dir"
sha256sum --check --strict - <<< "$expected"
echo "check-zips: ${#bins[@]} zips in $dir are the ones the package job built"
