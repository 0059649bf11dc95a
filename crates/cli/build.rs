//! Stamps `onyx --version` with the commit it was built from, so an operator can tell which build
//! runs (a release archive, `cargo install --git`, a laptop checkout). `ONYX_BUILD_COMMIT` wins
//! (a build from a source archive has no `.git`); otherwise `git` is asked; "unknown" when neither.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=ONYX_BUILD_COMMIT");
    // Re-stamp when HEAD moves: HEAD itself (a checkout) and the ref it points to (a commit).
    // (Only paths that exist: cargo re-runs a script on every build for a path that does not.)
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let reference = git(&["symbolic-ref", "-q", "HEAD"]);
        for path in ["HEAD", "packed-refs"].into_iter().chain(reference.as_deref()) {
            let path = format!("{git_dir}/{path}");
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    let commit = std::env::var("ONYX_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    let date = git(&["log", "-1", "--format=%cs", "HEAD"]).map(|d| format!(" {d}")).unwrap_or_default();
    println!("cargo:rustc-env=BUILD_VERSION={} ({commit}{date})", env!("CARGO_PKG_VERSION"));
}
