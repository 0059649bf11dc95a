#!/usr/bin/env python3
"""Markdown summary of a saved Terraform plan, for the job summary and the pull-request comment
(`make plan-summary`, issue #13 item 7).

The counts come from `terraform show -json PLAN` (resource_changes: a replacement counts as one
add and one destroy, as Terraform's own "Plan:" line does); the body is `terraform show -no-color
PLAN` (sensitive values already redacted there), cut to --limit characters so the comment stays
under GitHub's 65,536-character limit. The first line is the marker plan-comment.sh looks for.

usage: plan_summary.py --json PLAN.json --text PLAN.txt --env ENV [--limit N] > SUMMARY.md
"""
import argparse
import json
import sys

MARKER = "<!-- onyx-terraform-plan -->"


def counts(plan: dict) -> dict:
    result = {"add": 0, "change": 0, "destroy": 0, "replace": 0}
    for change in plan.get("resource_changes") or []:
        actions = change.get("change", {}).get("actions", [])
        if "create" in actions:
            result["add"] += 1
        if "delete" in actions:
            result["destroy"] += 1
        if "create" in actions and "delete" in actions:
            result["replace"] += 1
        if actions == ["update"]:
            result["change"] += 1
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", required=True)
    parser.add_argument("--text", required=True)
    parser.add_argument("--env", required=True)
    parser.add_argument("--limit", type=int, default=60000)
    args = parser.parse_args()

    with open(args.json, encoding="utf-8") as f:
        c = counts(json.load(f))
    with open(args.text, encoding="utf-8") as f:
        text = f.read()
    truncated = len(text) > args.limit
    if truncated:
        text = text[: args.limit]
    # A ``` in the plan would end the code block early.
    text = text.replace("```", "`\u200b``")

    headline = f"Plan: {c['add']} to add, {c['change']} to change, {c['destroy']} to destroy"
    if c["replace"]:
        headline += f" ({c['replace']} replaced)"
    if not any(c.values()):
        headline = "No changes: the infrastructure matches the configuration"
    lines = [
        MARKER,
        f"### Terraform plan: `{args.env}`",
        "",
        f"**{headline}.** Read-only role, state read without the lock; `make deploy` plans again when it applies.",
        "",
        "<details><summary>terraform show</summary>",
        "",
        "```text",
        text.rstrip("\n"),
        "```",
        "",
        "</details>",
    ]
    if truncated:
        lines.append(f"\nTruncated to {args.limit} characters: the whole plan is in the job's log.")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
