#!/usr/bin/env bash
# Posts the plan summary (Markdown, first line the marker below) on the pull request, or edits the
# comment an earlier run of this job posted, so a pull request carries one current plan.
# Needs GH_TOKEN (pull-requests: write), REPO (owner/name) and PR_NUMBER.
#
#   usage: plan-comment.sh SUMMARY.md
set -euo pipefail

summary=${1:?usage: plan-comment.sh SUMMARY.md}
marker='<!-- onyx-terraform-plan -->'
[[ "$(head -n1 "$summary")" == "$marker" ]] || { echo "plan-comment: $summary does not start with $marker" >&2; exit 1; }
[[ "$PR_NUMBER" =~ ^[0-9]+$ ]] || { echo "plan-comment: PR_NUMBER '$PR_NUMBER' is not a number" >&2; exit 1; }

existing=$(gh api --paginate "repos/$REPO/issues/$PR_NUMBER/comments" \
    --jq ".[] | select(.user.login == \"github-actions[bot]\" and (.body | startswith(\"$marker\"))) | .id" | tail -n1)
if [[ -n "$existing" ]]; then
    gh api --method PATCH "repos/$REPO/issues/comments/$existing" -F "body=@$summary" --jq .html_url
else
    gh api --method POST "repos/$REPO/issues/$PR_NUMBER/comments" -F "body=@$summary" --jq .html_url
fi
