#!/usr/bin/env python3
"""Runs the lake's views (lake/views/*.sql, written for Athena) with DuckDB over a local processed
directory, the way Athena runs them over the Glue tables Terraform makes from
terraform/generated/lake_tables.json, and prints every view's rows as JSON.

Each Glue table is stood in for by a DuckDB view over its prefix's Parquet files with the Glue
types: the `*_time` columns (Parquet TIME(NANOS)) as bigint nanoseconds since midnight, the
partition column `run_date` (the YYYY/MM/DD of the key) and Athena's hidden column "$path" (the
object's path; key order is run order).

    python3 lake/duckdb_views.py --processed out/demo/processed            # every view's rows, as JSON
    python3 lake/duckdb_views.py --processed out/demo/processed --sql 'SELECT * FROM sales_by_month'  # a table

Values are printed as text, exact: decimals without trailing zeros, dates as YYYY-MM-DD, booleans
as true/false, NULL as null. The lake-vs-warehouse test (tests/lake.rs) compares them with the
warehouse's views.
"""

import argparse
import decimal
import json
import pathlib
import re
import sys

try:
    import duckdb
except ImportError:
    sys.exit("duckdb is missing: pip install 'duckdb>=1.1,<3' (.ci/services.sh installs it for make test)")

REPO = pathlib.Path(__file__).resolve().parent.parent
DUCK_TYPES = {"int": "INTEGER", "bigint": "BIGINT", "string": "VARCHAR", "date": "DATE", "boolean": "BOOLEAN"}


def duck_type(glue_type):
    if glue_type.startswith("decimal("):
        return glue_type.upper()
    if glue_type not in DUCK_TYPES:
        sys.exit(f"lake_tables.json: unknown Glue type {glue_type!r}")
    return DUCK_TYPES[glue_type]


def quote(name):
    return '"' + name.replace('"', '""') + '"'


def stand_in_for_glue_table(con, processed, table, partition_column):
    """A DuckDB view named like the Glue table, with its columns and types."""
    files = sorted(str(p) for p in (processed / table["prefix"]).glob("*/*/*/*.parquet"))
    columns = table["columns"]
    if not files:
        defs = [f"{quote(c['name'])} {duck_type(c['type'])}" for c in columns]
        defs += [f"{quote(partition_column)} VARCHAR", '"$path" VARCHAR']
        con.execute(f"CREATE TABLE {quote(table['name'])} ({', '.join(defs)})")
        return
    schema = {
        row[0]: row[1]
        for row in con.execute(
            "SELECT name, duckdb_type FROM parquet_schema(?) WHERE num_children IS NULL OR num_children = 0",
            [files[0]],
        ).fetchall()
    }
    select = []
    for c in columns:
        name = quote(c["name"])
        if c["type"] == "bigint" and schema.get(c["name"], "").startswith("TIME"):
            # Athena (Trino) reads a TIME-annotated INT64 as its number: nanoseconds since midnight.
            select.append(f"epoch_ns({name}) AS {name}")
        else:
            select.append(f"CAST({name} AS {duck_type(c['type'])}) AS {name}")
    day = r"/(\d{4}/\d{2}/\d{2})/[^/]*$"
    select.append(f"regexp_extract(filename, '{day}', 1) AS {quote(partition_column)}")
    select.append('filename AS "$path"')
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    con.execute(
        f"CREATE VIEW {quote(table['name'])} AS SELECT {', '.join(select)} "
        f"FROM read_parquet([{listed}], filename = true, union_by_name = true)"
    )


def text(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, decimal.Decimal):
        return format(value.normalize(), "f") if value != 0 else "0"
    if isinstance(value, float):
        return format(decimal.Decimal(repr(value)).normalize(), "f")
    return str(value)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processed", required=True, type=pathlib.Path, help="local processed directory")
    parser.add_argument("--schema", type=pathlib.Path, default=REPO / "terraform/generated/lake_tables.json")
    parser.add_argument("--views", type=pathlib.Path, default=REPO / "lake/views")
    parser.add_argument("--sql", help="run this query after creating the views and show its result as a table instead")
    args = parser.parse_args()

    schema = json.loads(args.schema.read_text())
    con = duckdb.connect()
    for table in schema["tables"]:
        stand_in_for_glue_table(con, args.processed, table, schema["partition_column"])
    views = []
    for path in sorted(args.views.glob("*.sql")):
        sql = path.read_text()
        match = re.search(r"CREATE OR REPLACE VIEW\s+(\w+)", sql)
        if not match:
            sys.exit(f"{path}: no CREATE OR REPLACE VIEW statement")
        try:
            con.execute(sql)
        except duckdb.Error as error:
            sys.exit(f"{path}: DuckDB rejected the view: {error}")
        views.append(match.group(1))

    def rows_of(query):
        cursor = con.execute(query)
        names = [d[0] for d in cursor.description]
        return {"columns": names, "rows": [[text(v) for v in row] for row in cursor.fetchall()]}

    if args.sql:
        # For people: DuckDB's table rendering of the query.
        con.sql(args.sql).show(max_width=160)
        return
    out = {view: rows_of(f"SELECT * FROM {quote(view)}") for view in views}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
