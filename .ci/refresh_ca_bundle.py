#!/usr/bin/env python3
"""`make refresh-ca-bundle` (issue #21): download the Amazon RDS global CA bundle, compare it with the
committed copy and, when it differs, print which certificates came and went, then write the new file
and its SHA-256 into the pin file (the comment lines are kept). Review the diff and commit both.

Needs the internet and `openssl` (for the certificates' subjects and dates); `make package` needs
neither, it packs the committed file.

usage: refresh_ca_bundle.py --url URL --bundle FILE --pin-file FILE
"""
import argparse
import hashlib
import pathlib
import re
import subprocess
import sys
import urllib.request

PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----", re.S)


def describe(cert: bytes) -> str:
    out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-enddate", "-nameopt", "RFC2253"],
                         input=cert, capture_output=True, check=True).stdout.decode()
    fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return f"{fields.get('subject', '?')} (notAfter {fields.get('notAfter', '?')})"


def certificates(bundle: bytes) -> dict[bytes, str]:
    return {c.replace(b"\r", b""): describe(c) for c in PEM.findall(bundle)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--bundle", required=True, type=pathlib.Path)
    parser.add_argument("--pin-file", required=True, type=pathlib.Path)
    args = parser.parse_args()

    if not args.url.startswith("https://"):
        print(f"error: {args.url} is not https", file=sys.stderr)
        return 1
    with urllib.request.urlopen(args.url, timeout=60) as response:  # noqa: S310 (https checked above)
        new = response.read()
    old = args.bundle.read_bytes() if args.bundle.exists() else b""
    new_sha, old_sha = hashlib.sha256(new).hexdigest(), hashlib.sha256(old).hexdigest()
    new_certs = certificates(new)
    if not new_certs:
        print(f"error: {args.url} returned no PEM certificate; nothing changed", file=sys.stderr)
        return 1
    print(f"published: {len(new_certs)} certificates, sha256 {new_sha}")
    if new == old:
        print(f"{args.bundle} is up to date")
        return 0

    old_certs = certificates(old)
    print(f"committed: {len(old_certs)} certificates, sha256 {old_sha}")
    for cert in sorted(set(old_certs) - set(new_certs), key=old_certs.get):
        print(f"  - {old_certs[cert]}")
    for cert in sorted(set(new_certs) - set(old_certs), key=new_certs.get):
        print(f"  + {new_certs[cert]}")
    if set(new_certs) == set(old_certs):
        print("  (same certificates; order or whitespace changed)")

    args.bundle.write_bytes(new)
    comments = [l for l in args.pin_file.read_text().splitlines() if l.startswith("#")]
    args.pin_file.write_text("\n".join(comments + [new_sha]) + "\n")
    print(f"wrote {args.bundle} and {args.pin_file}: review the lines above, update certs/README.md "
          f"(source, date, count) and commit; tests/supply_chain.rs checks every certificate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
