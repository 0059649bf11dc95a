//! What `make package`, `terraform init` and the tool installs take from outside (issue #21): the
//! committed RDS CA bundle is a set of Amazon RDS CAs and matches its pin, both Terraform roots lock
//! the exactly pinned AWS provider with its hashes, the Python tools install hash-checked, and CI and
//! the Makefile build with `--locked` and pinned cargo-audit / cargo-deny.
//!
//! These tests read committed files only: no network, no AWS.

use std::path::{Path, PathBuf};

use base64::Engine;
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::BasicConstraints;

use crate::support::sha256_hex;

const BUNDLE: &str = "certs/rds-global-bundle.pem";
const PIN: &str = ".ci/rds-ca-bundle.sha256";
const LOCK_FILES: [&str; 2] = ["terraform/.terraform.lock.hcl", "terraform/bootstrap/.terraform.lock.hcl"];
const VERSIONS: [&str; 2] = ["terraform/versions.tf", "terraform/bootstrap/versions.tf"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The DER of every certificate in a PEM bundle; panics on anything else in the file (other PEM
/// blocks, text between blocks, bad base64), so the bundle is exactly a list of certificates.
fn pem_certificates(pem: &str) -> Vec<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        assert!(rest[..start].trim().is_empty(), "text outside a certificate: {:?}", &rest[..start]);
        let body_start = start + BEGIN.len();
        let end = body_start + rest[body_start..].find(END).expect("a BEGIN without END");
        let body: String = rest[body_start..end].split_whitespace().collect();
        out.push(base64::engine::general_purpose::STANDARD.decode(body).expect("certificate base64"));
        rest = &rest[end + END.len()..];
    }
    assert!(rest.trim().is_empty(), "text after the last certificate: {rest:?}");
    out
}

/// The values of one attribute (by OID, e.g. "2.5.4.3" CN) in a distinguished name.
fn attribute(name: &x509_cert::name::Name, oid: &str) -> Vec<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|atv| atv.oid.to_string() == oid)
        .map(|atv| String::from_utf8_lossy(atv.value.value()).into_owned())
        .collect()
}

const CN: &str = "2.5.4.3";
const O: &str = "2.5.4.10";
const OU: &str = "2.5.4.11";

/// Why a certificate is not an Amazon RDS CA, or None.
fn not_an_rds_ca(cert: &Certificate) -> Option<String> {
    let tbs = &cert.tbs_certificate;
    for (which, name) in [("subject", &tbs.subject), ("issuer", &tbs.issuer)] {
        if attribute(name, O) != ["Amazon Web Services, Inc."] {
            return Some(format!("{which} O is {:?}", attribute(name, O)));
        }
        if attribute(name, OU) != ["Amazon RDS"] {
            return Some(format!("{which} OU is {:?}", attribute(name, OU)));
        }
        let cn = attribute(name, CN);
        if cn.len() != 1 || !cn[0].starts_with("Amazon RDS") {
            return Some(format!("{which} CN is {cn:?}"));
        }
    }
    let basic = tbs
        .extensions
        .iter()
        .flatten()
        .find(|ext| ext.extn_id.to_string() == "2.5.29.19")
        .map(|ext| BasicConstraints::from_der(ext.extn_value.as_bytes()).expect("basicConstraints"));
    match basic {
        Some(BasicConstraints { ca: true, .. }) => None,
        other => Some(format!("basicConstraints is {other:?}, not CA:TRUE")),
    }
}

fn pinned_sha256() -> String {
    read(PIN).lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or("").to_lowercase()
}

/// Issue #21 (mechanism: the committed CA bundle that `make package` packs, parsed certificate by
/// certificate with x509-cert): every certificate is an Amazon RDS CA (O, OU and CN of subject and
/// issuer, basicConstraints CA:TRUE), there are as many as AWS's global bundle has (100+), none twice,
/// the file's SHA-256 is the pin `.ci/package_zips.py` enforces, and the Makefile packs this file by
/// default without downloading anything. Expired certificates are listed, not failed (the bundle is
/// AWS's; `make refresh-ca-bundle` brings a newer one).
#[test]
fn the_committed_rds_ca_bundle_holds_only_amazon_rds_cas_and_matches_its_pin() {
    let bytes = std::fs::read(repo().join(BUNDLE)).expect(BUNDLE);
    let ders = pem_certificates(std::str::from_utf8(&bytes).expect("ASCII PEM"));
    assert!((100..=400).contains(&ders.len()), "{} certificates in {BUNDLE}: not AWS's global bundle", ders.len());

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
    let mut subjects = std::collections::BTreeSet::new();
    let mut expired = Vec::new();
    for (i, der) in ders.iter().enumerate() {
        let cert = Certificate::from_der(der).unwrap_or_else(|e| panic!("certificate #{i} does not parse: {e}"));
        let cn = attribute(&cert.tbs_certificate.subject, CN).join(",");
        if let Some(why) = not_an_rds_ca(&cert) {
            panic!("certificate #{i} ({cn}) is not an Amazon RDS CA: {why}");
        }
        let subject = cert.tbs_certificate.subject.to_der().expect("subject DER");
        assert!(subjects.insert(subject), "certificate #{i} ({cn}) appears twice");
        if cert.tbs_certificate.validity.not_after.to_unix_duration() < now {
            expired.push(cn);
        }
    }
    if !expired.is_empty() {
        eprintln!(
            "{BUNDLE}: {} expired certificate(s) (AWS's bundle; make refresh-ca-bundle): {expired:?}",
            expired.len()
        );
    }

    let pin = pinned_sha256();
    assert_eq!(sha256_hex(&bytes), pin, "{BUNDLE} is not the bundle pinned in {PIN}");

    // `make package` packs the committed file, checked against the pin, and downloads nothing.
    let infra = read("make/infra.mk");
    assert!(infra.contains(&format!("INFRA_CA_BUNDLE_FILE ?= {BUNDLE}")), "make/infra.mk's default bundle");
    assert!(infra.contains(&format!("INFRA_CA_BUNDLE_PIN  ?= {PIN}")), "make/infra.mk's pin file");
    let package = infra.split("\npackage:").nth(1).expect("package target").split("\n\n").next().expect("recipe");
    assert!(!package.contains("curl") && !package.contains("wget"), "make package downloads something:\n{package}");
    assert!(package.contains("--bundle \"$(INFRA_CA_BUNDLE_FILE)\""), "make package packs another bundle");
    assert!(infra.contains("\nrefresh-ca-bundle: ## "), "make refresh-ca-bundle is missing or has no help text");
}

/// The `hashicorp/aws` block of a lock file: (version, constraints, h1 hashes, zh hashes).
fn aws_lock(text: &str) -> (String, String, Vec<String>, Vec<String>) {
    let start =
        text.find("provider \"registry.terraform.io/hashicorp/aws\" {").expect("no hashicorp/aws in the lock file");
    let block = &text[start..start + text[start..].find("\n}").expect("unterminated provider block")];
    let value = |key: &str| {
        block
            .lines()
            .find_map(|l| l.trim().strip_prefix(key).and_then(|r| r.trim().strip_prefix('=')))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    let hashes = |prefix: &str| -> Vec<String> {
        block
            .lines()
            .map(|l| l.trim().trim_end_matches(',').trim_matches('"'))
            .filter(|h| h.starts_with(prefix))
            .map(String::from)
            .collect()
    };
    (value("version"), value("constraints"), hashes("h1:"), hashes("zh:"))
}

/// The exact AWS provider version a versions.tf requires (`version = "X.Y.Z"`, no operator).
fn required_aws_version(versions_tf: &str) -> String {
    let body = hcl::parse(versions_tf).expect("versions.tf parses");
    let terraform = body.blocks().find(|b| b.identifier() == "terraform").expect("terraform block");
    let providers =
        terraform.body().blocks().find(|b| b.identifier() == "required_providers").expect("required_providers");
    let aws = providers.body().attributes().find(|a| a.key() == "aws").expect("aws provider");
    let hcl::expr::Expression::Object(object) = aws.expr() else { panic!("aws = {{ … }} expected") };
    let version = object
        .iter()
        .find(|(k, _)| matches!(k, hcl::expr::ObjectKey::Identifier(id) if id.as_str() == "version"))
        .map(|(_, v)| v)
        .expect("aws version");
    let hcl::expr::Expression::String(version) = version else { panic!("aws version is not a string") };
    version.clone()
}

/// Issue #21 (mechanism: Terraform's dependency lock file, read as text next to versions.tf parsed
/// with hcl-rs): both roots require one exact AWS provider version, commit a lock file that locks
/// that version with at least three `h1:` and the per-platform `zh:` hashes (so `terraform init`
/// refuses any other package), and lock it identically.
#[test]
fn both_terraform_roots_lock_the_exactly_pinned_aws_provider_with_its_hashes() {
    let mut locks = Vec::new();
    for (lock_path, versions_path) in LOCK_FILES.iter().zip(VERSIONS) {
        let version = required_aws_version(&read(versions_path));
        assert!(
            version.split('.').count() == 3 && version.split('.').all(|p| p.parse::<u32>().is_ok()),
            "{versions_path} requires aws {version:?}, not one exact version"
        );
        let (locked, constraints, h1, zh) = aws_lock(&read(lock_path));
        assert_eq!(locked, version, "{lock_path} locks another version than {versions_path} requires");
        assert_eq!(constraints, version, "{lock_path} was made for other constraints than {versions_path}'s");
        assert!(h1.len() >= 3, "{lock_path}: {} h1 hashes, want at least 3", h1.len());
        assert!(zh.len() >= 10, "{lock_path}: {} zh hashes, want one per released platform", zh.len());
        for hash in zh {
            let hex = hash.trim_start_matches("zh:");
            assert!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()), "{lock_path}: bad {hash}");
        }
        locks.push(aws_lock(&read(lock_path)));
    }
    assert_eq!(locks[0], locks[1], "the two roots lock the AWS provider differently");
    let gitignore = read("terraform/.gitignore");
    assert!(
        !gitignore.lines().any(|l| l.trim() == ".terraform.lock.hcl"),
        "terraform/.gitignore ignores the lock file"
    );
}

/// Issue #21 (mechanism: pip's hash-checking mode): the compiled requirements pin every package with
/// `==` and at least one `--hash=sha256:`, keep the human-edited `.in` pins, and both installers
/// (`make setup-infra`, .ci/infra-checks.sh) pass `--require-hashes`; the Makefile still reads the
/// Zig version from the compiled file.
#[test]
fn python_tools_install_from_hash_pinned_requirements() {
    let compiled = read(".ci/infra-requirements.txt");
    let mut packages = std::collections::BTreeMap::new();
    let mut current: Option<String> = None;
    for line in compiled.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(hash) = line.strip_prefix("--hash=sha256:") {
            let hash = hash.trim_end_matches(" \\").trim();
            assert!(hash.len() == 64, "bad hash {hash}");
            *packages.get_mut(current.as_ref().expect("a hash before any package")).expect("package") += 1;
            continue;
        }
        let spec = line.trim_end_matches('\\').trim();
        assert!(spec.contains("==") && !spec.contains(' '), "not an exact pin: {line}");
        current = Some(spec.to_lowercase());
        packages.insert(spec.to_lowercase(), 0);
    }
    assert!(packages.len() > 20, "only {} packages: the transitive dependencies are missing", packages.len());
    for (package, hashes) in &packages {
        assert!(*hashes >= 1, "{package} has no --hash");
    }
    for line in read(".ci/infra-requirements.in").lines() {
        let line = line.trim();
        if !line.is_empty() && !line.starts_with('#') {
            assert!(packages.contains_key(&line.to_lowercase()), "{line} of the .in file is not compiled");
        }
    }
    assert!(packages.contains_key("ziglang==0.17.1") || packages.keys().any(|p| p.starts_with("ziglang==")));

    let infra = read("make/infra.mk");
    let setup = infra.split("\nsetup-infra:").nth(1).expect("setup-infra").split("\n\n").next().expect("recipe");
    assert!(setup.contains("--require-hashes"), "make setup-infra installs without hashes:\n{setup}");
    assert!(read(".ci/infra-checks.sh").contains("--require-hashes"), ".ci/infra-checks.sh installs without hashes");
    let out = std::process::Command::new("make")
        .args(["-s", "-f", "make/infra.mk", "-p", "-n", "infra-region"])
        .current_dir(repo())
        .output()
        .expect("make runs");
    let db = String::from_utf8_lossy(&out.stdout);
    let zig = packages.keys().find_map(|p| p.strip_prefix("ziglang==")).expect("ziglang pin");
    assert!(
        db.lines().any(|l| l == format!("INFRA_ZIG_VERSION := {zig}")),
        "make reads another Zig version than {zig}"
    );
}

/// Issue #21 (mechanism: `--locked` builds and pinned tool installs in CI): cargo-lambda builds the
/// zips from Cargo.lock, CI installs exact versions of cargo-audit and cargo-deny and runs cargo deny
/// against a deny.toml that allows crates.io only.
#[test]
fn rust_builds_are_locked_and_ci_runs_pinned_cargo_audit_and_cargo_deny() {
    let infra = read("make/infra.mk");
    assert!(infra.contains("cargo lambda build --locked "), "make package builds without --locked");
    let ci = read(".github/workflows/ci.yml");
    for tool in ["cargo-audit", "cargo-deny"] {
        let line = ci
            .lines()
            .find(|l| l.contains(&format!("cargo install {tool} ")))
            .unwrap_or_else(|| panic!("CI does not install {tool}"));
        assert!(line.contains("--locked") && line.contains("--version "), "{tool} is not pinned: {line}");
    }
    assert!(ci.contains("cargo deny --locked check advisories licenses sources bans"), "CI does not run cargo deny");
    let deny = read("deny.toml");
    assert!(
        deny.contains("unknown-registry = \"deny\"") && deny.contains("unknown-git = \"deny\""),
        "deny.toml sources"
    );
    assert!(deny.contains("allow-git = []"), "deny.toml allows a git source");
}

/// Issue #24 item 3 (mechanism: `.github/workflows/release.yml`): nothing built or published the
/// CLI, so an on-call laptop compiled polars and four AWS SDKs to get `onyx`. A tag `v*` builds
/// `onyx` from Cargo.lock for Linux x86_64 and arm64 and macOS arm64, archives each with its
/// SHA-256, checks the checksums again where they are gathered, and attaches archives, checksums
/// and SHA256SUMS to the tag's release; the README or reference says how to install it.
#[test]
fn the_cli_is_released_for_linux_and_macos_with_checksums_on_tags() {
    let path = ".github/workflows/release.yml";
    assert!(repo().join(path).exists(), "no release workflow: nothing builds or publishes onyx");
    let release = read(path);
    assert!(release.contains("tags: [\"v*\"]"), "{path} does not run on version tags");
    for target in ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", "aarch64-apple-darwin"] {
        assert!(release.contains(&format!("target: {target}")), "{path} does not build {target}");
    }
    assert!(
        release.contains("cargo build --release --locked -p onyx-cli --bin onyx"),
        "{path}: not a locked build of onyx"
    );
    assert!(release.contains("ONYX_BUILD_COMMIT="), "{path}: the binary is not stamped with its commit");
    assert!(release.contains("shasum -a 256") && release.contains("sha256sum --check"), "{path}: no checksums");
    assert!(release.contains("gh release upload") && release.contains("SHA256SUMS"), "{path}: nothing attached");
    let docs = read("docs/reference.md");
    assert!(
        docs.contains("cargo install --locked --git") && docs.contains("SHA256SUMS"),
        "docs/reference.md does not say how to install onyx (a release archive or cargo install --locked --git)"
    );
}
