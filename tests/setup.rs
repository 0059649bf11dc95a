//! The README's two commands on a laptop-like machine (issue #24 item 6): `.ci/services.sh`, which
//! `make demo` and `make test` run first, must not need root or a system pip.

use std::process::Command;

use crate::support::unique;

/// Issue #24 item 6. Mechanism: `ensure_python_tools` in `.ci/services.sh` (a virtualenv under
/// `.services/` when the Python on PATH lacks a tool) and `--no-aws` for the demo. Before, it ran
/// `python3 -m pip install` against the Python on PATH, which PEP 668 refuses on current Debian
/// and Ubuntu ("externally-managed-environment"; CI had to set PIP_BREAK_SYSTEM_PACKAGES), and
/// the demo started moto although it touches no AWS. Here the Python on PATH is a stand-in that
/// refuses pip exactly so and has none of the tools.
#[test]
fn services_install_python_tools_into_a_virtualenv_never_the_system_python() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(unique("onyx-setup-"));
    std::fs::create_dir_all(dir.join(".ci")).expect("dir");
    std::fs::create_dir_all(dir.join("bin")).expect("bin");
    std::fs::copy(repo.join(".ci/services.sh"), dir.join(".ci/services.sh")).expect("copy services.sh");
    let bare = dir.join("bare");
    let made = Command::new("python3").args(["-m", "venv", "--without-pip"]).arg(&bare).status().expect("python3");
    assert!(made.success(), "a bare Python");
    let python = dir.join("bin/python3");
    std::fs::write(
        &python,
        format!(
            "#!/bin/sh\nif [ \"$1\" = -m ] && [ \"$2\" = pip ]; then\n  echo 'error: externally-managed-environment' >&2\n  exit 1\nfi\nexec {} \"$@\"\n",
            bare.join("bin/python3").display()
        ),
    )
    .expect("stand-in python3");
    std::fs::set_permissions(&python, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", dir.join("bin").display());
    let out = Command::new("bash")
        .arg(".ci/services.sh")
        .args(["--no-aws", "python3", "-c", "import duckdb, sys; print('duckdb from', sys.prefix)"])
        .current_dir(&dir)
        .env("PATH", &path)
        .env_remove("VIRTUAL_ENV")
        .output()
        .expect("run services.sh");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "services.sh failed where pip may not touch the system Python: {stdout}{stderr}");
    assert!(stdout.contains(&format!("duckdb from {}", dir.join(".services/venv").display())), "{stdout}{stderr}");
    assert!(!stderr.contains("moto"), "the demo's services start no moto: {stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
