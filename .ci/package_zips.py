#!/usr/bin/env python3
"""Lambda zips for `make package`: byte-identical for an unchanged binary (issue #13 item 9), with
the RDS CA bundle next to `bootstrap` (item 6).

Each zip holds exactly `bootstrap` (the binary cargo-lambda built, mode 755) and
`global-bundle.pem` (mode 644), in that order, with a fixed timestamp and fixed compression, so
its bytes depend only on the two files' contents: a rebuild of the same source leaves Terraform's
`source_hash` unchanged, locally and in CI. The bundle's SHA-256 must equal the pin in
PIN_FILE (fail closed: an empty pin or a different bundle stops the packaging, printing both).

usage: package_zips.py --bundle PEM --pin-file FILE --lambda-dir DIR [--limit BYTES] BIN...
       (reads DIR/BIN/bootstrap, writes DIR/BIN/bootstrap.zip)
"""
import argparse
import hashlib
import pathlib
import sys
import zipfile

# Lambda unpacks the zip into /var/task; Terraform sets ONYX_DB_CA_BUNDLE to this file there
# (tests/terraform_wiring.rs and tests/packaging.rs keep the three in step).
BUNDLE_NAME = "global-bundle.pem"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pinned(pin_file: pathlib.Path) -> str:
    lines = [l.strip() for l in pin_file.read_text().splitlines()]
    values = [l for l in lines if l and not l.startswith("#")]
    return values[0].lower() if values else ""


def entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so the mode bits count
    info.external_attr = (0o100000 | mode) << 16
    return info


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundle", required=True, type=pathlib.Path)
    parser.add_argument("--pin-file", required=True, type=pathlib.Path)
    parser.add_argument("--lambda-dir", required=True, type=pathlib.Path)
    parser.add_argument("--limit", type=int, default=10 * 1024 * 1024)
    parser.add_argument("bins", nargs="+")
    args = parser.parse_args()

    bundle = args.bundle.read_bytes()
    actual, pin = sha256(bundle), pinned(args.pin_file)
    print(f"CA bundle {args.bundle}: sha256 {actual}")
    if not pin:
        print(f"error: no SHA-256 pinned in {args.pin_file}; compare the value above with the bundle fetched "
              f"over a second network (docs/deploy.md, 'The CA bundle'), then write it there", file=sys.stderr)
        return 1
    if actual != pin:
        print(f"error: the CA bundle's sha256 is {actual}, {args.pin_file} pins {pin}: not packaged "
              f"(a changed or tampered bundle; re-check it and update the pin deliberately)", file=sys.stderr)
        return 1
    if b"-----BEGIN CERTIFICATE-----" not in bundle:
        print(f"error: {args.bundle} holds no PEM certificate", file=sys.stderr)
        return 1

    for name in args.bins:
        binary_path = args.lambda_dir / name / "bootstrap"
        binary = binary_path.read_bytes()
        zip_path = args.lambda_dir / name / "bootstrap.zip"
        with zipfile.ZipFile(zip_path, "w") as archive:
            archive.writestr(entry("bootstrap", 0o755), binary, compresslevel=9)
            archive.writestr(entry(BUNDLE_NAME, 0o644), bundle, compresslevel=9)
        packed = zip_path.read_bytes()
        print(f"{name:<16} {len(packed):>9} bytes  zip sha256 {sha256(packed)}  binary sha256 {sha256(binary)}  {zip_path}")
        if len(packed) > args.limit:
            print(f"warning: {zip_path} is over the {args.limit}-byte budget", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
