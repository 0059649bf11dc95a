#!/usr/bin/env python3
"""Onyx benchmark: `make bench` (run through .ci/services.sh, which exports ONYX_TEST_PG_URL).

For the real sample and for `onyx seed --scale N` it measures, with release builds and as the
median of several repetitions: each stage (extract, transform, load) and the whole `onyx run`
(wall time, rows/s, peak RSS), a run with no changes, a run after changing 1% of the payments,
and the floor — raw binary COPY of the same source tables out to /dev/null and of the same rows
into empty tables. It also measures each Lambda binary's cold start (process start to its first
request for work, against a stub of the Lambda runtime API) and the zips' sizes if packaged.

Prints a markdown table and writes out/bench/results.json.
"""

import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "out", "bench")
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release")
ONYX = os.path.join(BIN, "onyx")
BASE = os.environ.get("ONYX_TEST_PG_URL") or sys.exit("run me through .ci/services.sh (make bench does)")
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
SCALE = int(os.environ.get("BENCH_SCALE", "100"))
SCALE_REPEAT = int(os.environ.get("BENCH_SCALE_REPEAT", str(REPEAT)))
MAX_RUN_ROWS = int(os.environ.get("ONYX_MAX_RUN_ROWS", "500000"))
TABLES = ["currency", "department", "address", "counterparty", "staff", "design", "payment_type",
          "sales_order", "purchase_order", "transaction", "payment"]


def psql(db, *commands, stdout=subprocess.DEVNULL):
    args = ["psql", f"{BASE}/{db}", "-q", "-v", "ON_ERROR_STOP=1"]
    for command in commands:
        args += ["-c", command]
    subprocess.run(args, check=True, stdout=stdout)


def fresh_db(name):
    psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}")


def timed(args, env=None):
    """Runs a command; returns (seconds, peak RSS in MiB) measured by /usr/bin/time, and stdout."""
    report = os.path.join(OUT, "time.txt")
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", report] + args, check=True,
                          stdout=subprocess.PIPE, text=True, env=env)
    seconds = time.perf_counter() - start
    with open(report) as f:
        rss_kib = int(f.read().strip().splitlines()[-1])
    return seconds, rss_kib / 1024, done.stdout


def run_summaries(stdout):
    """The JSON run summaries a stage command printed (one per run), in order."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (start := stdout.find("{", at)) != -1:
        try:
            value, at = decoder.raw_decode(stdout, start)
            found.append(value)
        except json.JSONDecodeError:
            at = start + 1
    return [v for v in found if isinstance(v, dict) and "duration_ms" in v]


def count_rows(db):
    out = subprocess.run(["psql", f"{BASE}/{db}", "-Atc",
                          " + ".join(f"(SELECT count(*) FROM {t})" for t in TABLES).join(["SELECT ", ""])],
                         check=True, capture_output=True, text=True).stdout
    return int(out.strip())


def environment(tag):
    return dict(os.environ,
                ONYX_SOURCE_URL=f"{BASE}/bench_{tag}_src",
                ONYX_WAREHOUSE_URL=f"{BASE}/bench_{tag}_wh",
                ONYX_INGESTION=os.path.join(OUT, tag, "ingestion"),
                ONYX_PROCESSED=os.path.join(OUT, tag, "processed"),
                RUST_LOG="warn")


def reset_pipeline(tag):
    shutil.rmtree(os.path.join(OUT, tag), ignore_errors=True)
    fresh_db(f"bench_{tag}_wh")


def seed(tag, scale):
    fresh_db(f"bench_{tag}_src")
    args = [ONYX, "seed"] + (["--scale", str(scale)] if scale else [])
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, env=environment(tag))
    return count_rows(f"bench_{tag}_src")


def copy_floor(tag):
    """Binary COPY of every source table to /dev/null, and of the same rows into empty tables."""
    src = f"bench_{tag}_src"
    dumps = os.path.join(OUT, tag, "copy")
    os.makedirs(dumps, exist_ok=True)
    start = time.perf_counter()
    psql(src, *[f"COPY {t} TO STDOUT (FORMAT binary)" for t in TABLES])
    copy_out = time.perf_counter() - start
    for t in TABLES:
        psql(src, f"\\copy {t} TO '{dumps}/{t}.bin' (FORMAT binary)")
    fresh_db(f"bench_{tag}_floor")
    schema = os.path.join(ROOT, "crates", "core", "sample", "schema.sql")
    subprocess.run(["psql", f"{BASE}/bench_{tag}_floor", "-q", "-f", schema], check=True, stdout=subprocess.DEVNULL)
    start = time.perf_counter()
    psql(f"bench_{tag}_floor", *[f"\\copy {t} FROM '{dumps}/{t}.bin' (FORMAT binary)" for t in TABLES])
    copy_in = time.perf_counter() - start
    return copy_out, copy_in


def measure(tag, scale, repeat):
    rows = seed(tag, scale)
    env = environment(tag)
    samples = {k: [] for k in ["extract", "transform", "load", "run", "no_change", "reconcile", "one_percent"]}
    floors = {"copy_out": [], "copy_in": []}
    per_run = {}
    for _ in range(repeat):
        reset_pipeline(tag)
        for stage in ["extract", "transform", "load"]:
            samples[stage].append(timed([ONYX, stage], env))
            # Bounded runs: each stage handles the first load as consecutive runs; the largest
            # single run is what one Lambda invocation must fit.
            runs = run_summaries(samples[stage][-1][2])
            per_run[stage] = {"runs": len(runs), "max_run_seconds": max((r["duration_ms"] for r in runs), default=0) / 1000}
        reset_pipeline(tag)
        samples["run"].append(timed([ONYX, "run"], env))
        samples["no_change"].append(timed([ONYX, "run"], env))
        # The same with a key reconciliation (deletes): its cost is the difference.
        samples["reconcile"].append(timed([ONYX, "run"], dict(env, ONYX_RECONCILE_EVERY="0s")))
        psql(f"bench_{tag}_src", "UPDATE payment SET paid = NOT paid, last_updated = now() WHERE payment_id % 100 = 0")
        samples["one_percent"].append(timed([ONYX, "run"], env))
        copy_out, copy_in = copy_floor(tag)
        floors["copy_out"].append(copy_out)
        floors["copy_in"].append(copy_in)
    result = {"rows": rows, "repeat": repeat}
    for name, values in samples.items():
        result[name] = {"seconds": statistics.median(v[0] for v in values),
                        "peak_rss_mib": statistics.median(v[1] for v in values)}
        result[name]["rows_per_s"] = rows / result[name]["seconds"] if name not in ("no_change", "reconcile", "one_percent") else None
    for name, values in floors.items():
        result[name] = {"seconds": statistics.median(values)}
    floor = result["copy_out"]["seconds"] + result["copy_in"]["seconds"]
    result["run_over_copy_floor"] = result["run"]["seconds"] / floor
    result["per_run"] = per_run
    return result


class RuntimeStub(http.server.BaseHTTPRequestHandler):
    """The part of the Lambda runtime API a function calls first: 'give me the next event'."""
    ready = None

    def do_GET(self):
        if self.path.endswith("/runtime/invocation/next") and RuntimeStub.ready is not None:
            RuntimeStub.ready.set()
        self.send_response(500)  # no event: the binary is killed once it has asked
        self.end_headers()

    def do_POST(self):
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


def cold_starts(repeat=5):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeStub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(environment("sample"), AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
               AWS_LAMBDA_FUNCTION_NAME="bench", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
               AWS_LAMBDA_FUNCTION_VERSION="1", AWS_LAMBDA_LOG_STREAM_NAME="bench", AWS_LAMBDA_LOG_GROUP_NAME="bench",
               AWS_REGION="eu-west-2", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    results = {}
    for name in ["onyx-extract", "onyx-transform", "onyx-load"]:
        times = []
        for _ in range(repeat):
            RuntimeStub.ready = threading.Event()
            start = time.perf_counter()
            process = subprocess.Popen([os.path.join(BIN, name)], env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            ok = RuntimeStub.ready.wait(10)
            elapsed = time.perf_counter() - start
            process.kill()
            process.wait()
            times.append(elapsed * 1000 if ok else float("nan"))
        results[name] = {"cold_start_ms": statistics.median(times), "binary_mib": os.path.getsize(os.path.join(BIN, name)) / 2**20}
        for zip_dir in [os.path.join(ROOT, "target", "lambda", name), f"/tmp/lambda-target/lambda/{name}"]:
            zip_path = os.path.join(zip_dir, "bootstrap.zip")
            if os.path.exists(zip_path):
                results[name]["zip_mib"] = os.path.getsize(zip_path) / 2**20
                break
    server.shutdown()
    return results


def main():
    os.makedirs(OUT, exist_ok=True)
    results = {"machine": {"cpus": os.cpu_count()}, "sample": measure("sample", None, REPEAT)}
    if SCALE > 0:
        results[f"scale_{SCALE}"] = measure("scale", SCALE, SCALE_REPEAT)
    results["lambdas"] = cold_starts()
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=2)

    print(f"\n| dataset | rows | stage | wall s (median) | rows/s | peak RSS MiB |")
    print("|---|---:|---|---:|---:|---:|")
    labels = {"extract": "extract", "transform": "transform", "load": "load", "run": "onyx run (full)",
              "no_change": "onyx run, no changes", "reconcile": "onyx run, no changes, keys reconciled",
              "one_percent": "onyx run, 1% payments changed",
              "copy_out": "floor: COPY out to /dev/null", "copy_in": "floor: COPY into empty tables"}
    for dataset, result in results.items():
        if not isinstance(result, dict) or "rows" not in result:
            continue
        for key, label in labels.items():
            m = result[key]
            rate = f"{m['rows_per_s']:,.0f}" if m.get("rows_per_s") else ""
            rss = f"{m['peak_rss_mib']:.0f}" if "peak_rss_mib" in m else ""
            print(f"| {dataset} | {result['rows']:,} | {label} | {m['seconds']:.3f} | {rate} | {rss} |")
        print(f"| {dataset} | | full run ÷ COPY floor | {result['run_over_copy_floor']:.2f}× | | |")
    print(f"\n| dataset | stage | bounded runs (ONYX_MAX_RUN_ROWS={MAX_RUN_ROWS:,}) | largest run s |")
    print("|---|---|---:|---:|")
    for dataset, result in results.items():
        if not isinstance(result, dict) or "per_run" not in result:
            continue
        for stage, m in result["per_run"].items():
            print(f"| {dataset} | {stage} | {m['runs']} | {m['max_run_seconds']:.2f} |")
    if SCALE > 0:
        scaled = results[f"scale_{SCALE}"]
        factor = 1000 / SCALE
        runs = -(-int(scaled["rows"] * factor) // MAX_RUN_ROWS)
        print(f"\n1000× projection (linear from {SCALE}×, {scaled['rows']:,} rows): ~{int(scaled['rows'] * factor):,} rows in "
              f"{runs} bounded runs; whole first load ≈ {scaled['run']['seconds'] * factor / 60:.0f} min; each stage of "
              f"each run as at {SCALE}× (largest: " + ", ".join(
                  f"{stage} {m['max_run_seconds']:.1f} s" for stage, m in scaled["per_run"].items()) +
              f"; peak RSS per stage ≤ {max(scaled[s]['peak_rss_mib'] for s in ('extract', 'transform', 'load')):.0f} MiB).")
    print("\n| Lambda | cold start to handler-ready ms | binary MiB | zip MiB |")
    print("|---|---:|---:|---:|")
    for name, m in results["lambdas"].items():
        zip_mib = f"{m['zip_mib']:.1f}" if "zip_mib" in m else "(run make package)"
        print(f"| {name} | {m['cold_start_ms']:.1f} | {m['binary_mib']:.1f} | {zip_mib} |")
    print(f"\nwritten: {os.path.join(OUT, 'results.json')}")


if __name__ == "__main__":
    main()
