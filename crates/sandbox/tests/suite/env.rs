//! The environment inside is an allowlist: host secrets never get in, task vars do.
#![allow(unsafe_code)]

use std::collections::BTreeMap;

use nightshift_sandbox::{SandboxError, SandboxMode};

use super::{MODES, Scratch, sh};

const ALLOWED: &[&str] = &[
    "PATH",
    "LANG",
    "LC_ALL",
    "TERM",
    "TZ",
    "HOME",
    "TMPDIR",
    "USER",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "PYTHONDONTWRITEBYTECODE",
    "TASK_FLAG",
    // Set by the shell itself.
    "PWD",
    "OLDPWD",
    "SHLVL",
    "_",
];

fn parse_env(output: &str) -> BTreeMap<String, String> {
    output
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn host_secrets_do_not_reach_the_command() {
    // SAFETY: nothing else runs yet in this test (nextest gives each test its own process), and
    // the runtime below starts only after the variables are set.
    unsafe {
        std::env::set_var("NIGHTSHIFT_API_KEY", "ns-secret-123");
        std::env::set_var("OPENAI_API_KEY", "sk-secret-456");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "aws-secret-789");
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let scratch = Scratch::new();
        for mode in MODES {
            let sandbox = scratch
                .sandbox(mode)
                .with_env(vec![("TASK_FLAG".into(), "on".into())]);
            let out = sh(&sandbox, "env").await;
            assert!(out.success(), "{mode}: {}", out.output);
            for secret in ["ns-secret-123", "sk-secret-456", "aws-secret-789"] {
                assert!(!out.output.contains(secret), "{mode}: {}", out.output);
            }
            let env = parse_env(&out.output);
            for name in env.keys() {
                assert!(ALLOWED.contains(&name.as_str()), "{mode}: {name} leaked in");
            }
            assert_eq!(env["TASK_FLAG"], "on", "{mode}");
            assert_eq!(env["USER"], "nightshift", "{mode}");
            assert_eq!(env["PYTHONDONTWRITEBYTECODE"], "1", "{mode}");
            assert!(
                env.contains_key("PATH") && env.contains_key("TERM"),
                "{mode}"
            );
        }
    });
}

#[tokio::test]
async fn home_and_tmp_are_private_and_writable() {
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    let out = sh(
        &sandbox,
        "echo $HOME $TMPDIR; ls -A $HOME | wc -l; echo x > $HOME/f && echo x > /tmp/f && echo wrote",
    )
    .await;
    assert_eq!(out.output, "/tmp/home /tmp\n0\nwrote\n");
    // Each run starts afresh.
    let out = sh(&sandbox, "ls -A $HOME /tmp").await;
    assert_eq!(out.output, "/tmp:\nhome\n\n/tmp/home:\n");

    // Without isolation HOME is still a private, empty directory, never the host's.
    let sandbox = scratch.sandbox(SandboxMode::None);
    let out = sh(&sandbox, "echo $HOME; ls -A $HOME | wc -l").await;
    let host_home = std::env::var("HOME").unwrap_or_default();
    let first = out.output.lines().next().unwrap();
    assert_ne!(first, host_home);
    assert!(first.contains("nightshift-home-"), "{}", out.output);
    assert!(out.output.ends_with("\n0\n"), "{}", out.output);
}

#[tokio::test]
async fn task_env_can_override_the_allowlist() {
    let scratch = Scratch::new();
    let sandbox = scratch
        .sandbox(SandboxMode::Bwrap)
        .with_env(vec![
            ("TERM".into(), "xterm".into()),
            ("A".into(), "1".into()),
        ])
        .with_env(vec![("B".into(), "two words".into())]);
    let out = sh(&sandbox, "echo $TERM $A $B").await;
    assert_eq!(out.output, "xterm 1 two words\n");
}

#[tokio::test]
async fn bad_task_env_is_refused_with_its_name() {
    let scratch = Scratch::new();
    let sandbox = scratch
        .sandbox(SandboxMode::Bwrap)
        .with_env(vec![("A=B".into(), "1".into())]);
    let err = sandbox.run("true", &super::limits()).await.unwrap_err();
    assert!(
        matches!(err, SandboxError::Env { ref name, .. } if name == "A=B"),
        "{err}"
    );
    assert!(err.to_string().contains("'='"), "{err}");
}

#[tokio::test]
async fn rust_toolchain_works_inside() {
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    let out = sh(&sandbox, "cargo --version && rustc --version").await;
    assert!(out.success(), "{}", out.output);
    assert!(out.output.starts_with("cargo "), "{}", out.output);
    assert!(out.output.contains("\nrustc "), "{}", out.output);

    // A real build: target/ lands in the (writable) worktree.
    std::fs::write(
        scratch.work().join("Cargo.toml"),
        "[package]\nname = \"probe\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::create_dir(scratch.work().join("src")).unwrap();
    std::fs::write(
        scratch.work().join("src/main.rs"),
        "fn main() { println!(\"built\"); }\n",
    )
    .unwrap();
    let out = sh(&sandbox, "cargo run --offline -q 2>&1").await;
    assert_eq!(out.output, "built\n");
    assert!(scratch.work().join("target").is_dir());
}
