//! `make package`'s zips (`.ci/package_zips.py`), with a stand-in binary and CA bundle: the same
//! binary gives the same bytes whatever the files' timestamps (so Terraform's `source_hash` only
//! changes with the code, issue #13 item 9), every zip carries the CA bundle where Terraform's
//! `ONYX_DB_CA_BUNDLE` points (item 6), and a bundle that does not match the pinned SHA-256 — or
//! no pin at all — is refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{sha256_hex, unique};

const BUNDLE_IN_ZIP: &str = "global-bundle.pem";
const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/package_zips.py")
}

/// Runs the script; returns (success, stdout + stderr).
fn package(dir: &Path, bundle: &Path, pin: &str) -> (bool, String) {
    let pin_file = dir.join("pin.sha256");
    std::fs::write(&pin_file, format!("# pinned\n{pin}\n")).expect("pin file");
    let out = Command::new("python3")
        .arg(script())
        .args(["--bundle", &bundle.display().to_string(), "--pin-file", &pin_file.display().to_string()])
        .args(["--lambda-dir", &dir.display().to_string(), "onyx-extract", "onyx-load"])
        .output()
        .expect("python3 runs .ci/package_zips.py");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn touch(path: &Path, seconds: u64) {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
    std::fs::File::options().write(true).open(path).expect("open").set_modified(time).expect("set mtime");
}

/// The names and Unix modes of a zip's entries, from its central directory.
fn entries(zip: &[u8]) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(offset) = zip[at..].windows(4).position(|w| w == b"PK\x01\x02") {
        let header = &zip[at + offset..];
        let field =
            |from: usize, len: usize| header[from..from + len].iter().rev().fold(0u32, |v, b| (v << 8) | *b as u32);
        let name_len = field(28, 2) as usize;
        let mode = field(38, 4) >> 16;
        out.push((String::from_utf8_lossy(&header[46..46 + name_len]).into_owned(), mode & 0o7777));
        at += offset + 46 + name_len;
    }
    out
}

#[test]
fn zips_are_byte_identical_for_the_same_binary_and_carry_the_pinned_ca_bundle() {
    let dir = std::env::temp_dir().join(unique("onyx-package-"));
    for bin in ["onyx-extract", "onyx-load"] {
        std::fs::create_dir_all(dir.join(bin)).expect("dir");
        std::fs::write(dir.join(bin).join("bootstrap"), format!("\x7fELF stand-in for {bin}").repeat(1000))
            .expect("bin");
    }
    let bundle = dir.join("bundle.pem");
    std::fs::write(&bundle, PEM).expect("bundle");
    let pin = sha256_hex(PEM.as_bytes());

    let (ok, text) = package(&dir, &bundle, &pin);
    assert!(ok, "{text}");
    assert!(text.contains(&format!("sha256 {pin}")), "the bundle's checksum is printed: {text}");
    let zip = dir.join("onyx-extract/bootstrap.zip");
    let first = std::fs::read(&zip).expect("zip");
    assert_eq!(entries(&first), vec![("bootstrap".to_string(), 0o755), (BUNDLE_IN_ZIP.to_string(), 0o644)]);
    let binary_sha = sha256_hex(&std::fs::read(dir.join("onyx-extract/bootstrap")).expect("binary"));
    assert!(text.contains(&format!("binary sha256 {binary_sha}")), "{text}");

    // Same binary, other timestamps (a rebuild, another machine): the same bytes.
    touch(&dir.join("onyx-extract/bootstrap"), 2_000_000_000);
    touch(&bundle, 1_000_000_000);
    let (ok, text) = package(&dir, &bundle, &pin);
    assert!(ok, "{text}");
    assert_eq!(std::fs::read(&zip).expect("zip"), first, "a rebuild of the same binary changed the zip");
    // A changed binary changes the zip.
    std::fs::write(dir.join("onyx-extract/bootstrap"), "another build").expect("bin");
    assert!(package(&dir, &bundle, &pin).0);
    assert_ne!(std::fs::read(&zip).expect("zip"), first);

    // A bundle that is not the pinned one, or no pin: nothing packaged, both checksums named.
    std::fs::remove_file(&zip).expect("remove");
    let other = sha256_hex(b"something else");
    let (ok, text) = package(&dir, &bundle, &other);
    assert!(!ok && text.contains(&pin) && text.contains(&other), "{text}");
    let (ok, text) = package(&dir, &bundle, "");
    assert!(!ok && text.contains("no SHA-256 pinned"), "{text}");
    assert!(!zip.exists(), "a refused bundle packages nothing");

    // Terraform points every function at the file the zip carries (Lambda unpacks into /var/task).
    let main_tf =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../terraform/main.tf")).expect("main.tf");
    let wired = main_tf.lines().any(|line| {
        let (key, value) = line.split_once('=').unwrap_or_default();
        key.trim() == "ONYX_DB_CA_BUNDLE" && value.trim() == format!("\"/var/task/{BUNDLE_IN_ZIP}\"")
    });
    assert!(wired, "terraform/main.tf sets ONYX_DB_CA_BUNDLE to /var/task/{BUNDLE_IN_ZIP}");
}
