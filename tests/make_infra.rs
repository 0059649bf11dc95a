//! make/infra.mk's operator targets run against stand-in `terraform` and `aws` commands (shell
//! scripts that record their arguments): no AWS account, the real Makefile and recipes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::unique;

/// A scratch Terraform directory (env/prod.tfvars, backend.hcl) and stand-in commands: `terraform`
/// answers `output -json <name>` from the environment variable FAKE_OUTPUT_<name>, `aws` appends
/// `AWS_REGION=… <arguments>` to calls.log.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(unique("onyx-make-"));
        std::fs::create_dir_all(dir.join("env")).expect("scratch dir");
        std::fs::write(dir.join("env/prod.tfvars"), "region      = \"eu-west-1\"\nname_prefix = \"acme\"\n")
            .expect("tfvars");
        std::fs::write(dir.join("backend.hcl"), "bucket = \"state\"\n").expect("backend");
        let calls = dir.join("calls.log");
        let terraform = "#!/usr/bin/env bash\n\
             case \"$*\" in\n\
             *' init '*|*' init') exit 0 ;;\n\
             *'output -json '*) name=\"${@: -1}\"; var=\"FAKE_OUTPUT_$name\"; [ -n \"${!var+x}\" ] || exit 1; printf '%s\\n' \"${!var}\" ;;\n\
             *) echo \"unexpected terraform $*\" >&2; exit 2 ;;\n\
             esac\n";
        let aws = format!("#!/usr/bin/env bash\necho \"AWS_REGION=${{AWS_REGION:-}} $*\" >> {}\n", calls.display());
        for (name, script) in [("terraform", terraform.to_string()), ("aws", aws)] {
            let path = dir.join(name);
            std::fs::write(&path, script).expect("stand-in");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        Scratch { dir }
    }

    fn make(&self, target: &str, vars: &[(&str, &str)], env: &[(&str, &str)]) -> Output {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut command = Command::new("make");
        command
            .current_dir(&repo)
            .arg("-s")
            .arg(target)
            .arg(format!("INFRA_TF_DIR={}", self.dir.display()))
            .arg(format!("INFRA_TERRAFORM={}", self.dir.join("terraform").display()))
            .arg(format!("INFRA_AWS={}", self.dir.join("aws").display()))
            .env_remove("AWS_REGION");
        for (key, value) in vars {
            command.arg(format!("{key}={value}"));
        }
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().expect("make runs")
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.join("calls.log")).unwrap_or_default()
    }
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Issue #21 (mechanism: the `tunnel` recipe with stand-in commands): `make tunnel` reads the
/// bastion and the warehouse from the Terraform outputs and starts Session Manager's port
/// forwarding to the warehouse in the environment's region; another host and port can be named;
/// with no bastion or no warehouse it stops and says what to set, starting nothing.
#[test]
fn make_tunnel_forwards_to_the_warehouse_through_the_bastion_or_says_what_is_missing() {
    let scratch = Scratch::new();
    let warehouse = "acme-warehouse.abc.eu-west-1.rds.amazonaws.com";
    let outputs = [
        ("FAKE_OUTPUT_bastion_instance_id", "\"i-0123456789abcdef0\""),
        ("FAKE_OUTPUT_warehouse_endpoint", &format!("\"{warehouse}\"")[..]),
    ];
    let out = scratch.make("tunnel", &[], &outputs);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        scratch.calls().trim(),
        format!(
            "AWS_REGION=eu-west-1 ssm start-session --target i-0123456789abcdef0 --document-name \
             AWS-StartPortForwardingSessionToRemoteHost --parameters host={warehouse},portNumber=5432,localPortNumber=5432"
        )
    );

    let scratch = Scratch::new();
    let out = scratch.make(
        "tunnel",
        &[("INFRA_TUNNEL_HOST", "totesys.internal"), ("INFRA_TUNNEL_PORT", "15432")],
        &[("FAKE_OUTPUT_bastion_instance_id", "\"i-0123456789abcdef0\"")],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        scratch.calls().contains("host=totesys.internal,portNumber=5432,localPortNumber=15432"),
        "{}",
        scratch.calls()
    );

    for (missing, says) in [
        ([("FAKE_OUTPUT_bastion_instance_id", "null"), ("FAKE_OUTPUT_warehouse_endpoint", "\"db\"")], "no bastion"),
        (
            [("FAKE_OUTPUT_bastion_instance_id", "\"i-1\""), ("FAKE_OUTPUT_warehouse_endpoint", "null")],
            "INFRA_TUNNEL_HOST",
        ),
    ] {
        let scratch = Scratch::new();
        let out = scratch.make("tunnel", &[], &missing);
        assert!(!out.status.success() && text(&out).contains(says), "{}", text(&out));
        assert_eq!(scratch.calls(), "", "nothing started");
    }
}

/// Issue #21 (mechanism: the `secrets` recipe with a stand-in `aws`): each JSON goes into its own
/// secret — the extract's, the verification's read-only login, the warehouse's — by name, from a
/// private file (never on the command line), and a JSON missing a key is refused naming it.
#[test]
fn make_secrets_puts_each_connection_into_its_own_secret() {
    let scratch = Scratch::new();
    let login = |user: &str| {
        format!(r#"{{"host":"db","port":5432,"dbname":"totesys","username":"{user}","password":"s3cret-{user}"}}"#)
    };
    let (source, readonly, warehouse) = (login("extract"), login("verify"), login("loader"));
    let out = scratch.make(
        "secrets",
        &[],
        &[
            ("INFRA_SOURCE_SECRET_JSON", &source),
            ("INFRA_SOURCE_READONLY_SECRET_JSON", &readonly),
            ("INFRA_WAREHOUSE_SECRET_JSON", &warehouse),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let calls = scratch.calls();
    let ids: Vec<&str> =
        calls.lines().filter_map(|l| l.split("--secret-id ").nth(1)?.split_whitespace().next()).collect();
    assert_eq!(ids, ["acme/source-db", "acme/source-db-readonly", "acme/warehouse-db"], "{calls}");
    assert!(
        calls.lines().all(|l| l.starts_with("AWS_REGION=eu-west-1 ") && l.contains("--secret-string file://")),
        "{calls}"
    );
    assert!(
        !calls.contains("s3cret") && !text(&out).contains("s3cret"),
        "a password reached a command line or the output"
    );

    let scratch = Scratch::new();
    let out = scratch.make(
        "secrets",
        &[],
        &[("INFRA_SOURCE_READONLY_SECRET_JSON", r#"{"host":"db","dbname":"t","username":"u"}"#)],
    );
    assert!(!out.status.success() && text(&out).contains("password"), "{}", text(&out));
    assert_eq!(scratch.calls(), "", "nothing put");
}

/// Issue #21, one configuration (mechanism: infra-init's guard): a `terraform.tfvars` or
/// `*.auto.tfvars`, which Terraform loads by itself on a laptop but CI never has, stops every
/// plan and apply before Terraform runs, naming the file and the env file to use instead.
#[test]
fn make_refuses_local_tfvars_that_ci_would_not_apply() {
    for name in ["terraform.tfvars", "laptop.auto.tfvars"] {
        let scratch = Scratch::new();
        std::fs::write(scratch.dir.join(name), "alarm_emails = [\"me@example.com\"]\n").expect("local tfvars");
        let out = scratch.make("infra-init", &[], &[]);
        assert!(!out.status.success(), "{}", text(&out));
        assert!(text(&out).contains(name) && text(&out).contains("env/prod.tfvars"), "{}", text(&out));
    }
    let scratch = Scratch::new();
    let out = scratch.make("infra-init", &[], &[]);
    assert!(out.status.success(), "{}", text(&out));
}
