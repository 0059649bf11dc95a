#!/usr/bin/env python3
"""Static check of the lake's views (lake/views/*.sql) in Athena's dialect (Trino), with sqlglot:
each file is exactly one `CREATE OR REPLACE VIEW <name>` named like the file (after its NN_
order prefix), it parses as Trino SQL, and every table it reads is a Glue table of
terraform/generated/lake_tables.json or a view created by an earlier file (`make lake-views`
runs them in file-name order). Offline; part of .ci/infra-checks.sh.
"""

import json
import pathlib
import re
import sys

import sqlglot
from sqlglot import exp

repo = pathlib.Path(__file__).resolve().parent.parent
views_dir = repo / "lake" / "views"
schema = json.loads((repo / "terraform" / "generated" / "lake_tables.json").read_text())
known = {table["name"] for table in schema["tables"]}
problems = []
files = sorted(views_dir.glob("*.sql"))
if not files:
    problems.append(f"{views_dir}: no view files")
for path in files:
    where = path.relative_to(repo)
    try:
        statements = [s for s in sqlglot.parse(path.read_text(), read="trino") if s is not None]
    except sqlglot.errors.ParseError as error:
        problems.append(f"{where}: not Trino (Athena) SQL: {error}")
        continue
    if len(statements) != 1 or not isinstance(statements[0], exp.Create) or statements[0].kind != "VIEW":
        problems.append(f"{where}: must hold exactly one CREATE OR REPLACE VIEW statement")
        continue
    create = statements[0]
    name = create.this.name
    expected = re.sub(r"^\d+_", "", path.stem)
    if not create.args.get("replace"):
        problems.append(f"{where}: use CREATE OR REPLACE VIEW (make lake-views re-runs every file)")
    if name != expected:
        problems.append(f"{where}: creates view {name!r}, but the file name says {expected!r}")
    query = create.expression
    ctes = {cte.alias for cte in query.find_all(exp.CTE)}
    for table in query.find_all(exp.Table):
        if table.name not in known and table.name not in ctes:
            problems.append(f"{where}: reads {table.name!r}, which is neither a Glue table nor an earlier view")
    # Round trip: what Athena receives must be what sqlglot understood.
    sqlglot.transpile(path.read_text(), read="trino", write="trino")
    known.add(name)

for problem in problems:
    print(problem)
print(f"lake views: {len(files)} file(s) checked as Trino SQL, {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
