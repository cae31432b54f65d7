//! The rest of the allow/deny matrix: more ways out of the worktree, DNS, setuid programs, a
//! process that ignores SIGTERM, and the allowed side (a real Rust and a real Python project
//! built and tested inside). Each deny case is run without isolation too where that shows the
//! same command would succeed, so the assertion can fail.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use nightshift_sandbox::{LimitKind, Limits, SandboxMode};

use super::{Scratch, assert_gone, exists, sh};

#[tokio::test]
async fn writing_through_a_symlink_to_outside_fails() {
    let scratch = Scratch::new();
    let outside = scratch.outside();
    let command = format!("ln -s {}/target link && echo x > link", outside.display());
    let out = sh(&scratch.sandbox(SandboxMode::Bwrap), &command).await;
    assert_eq!(out.exit_code, Some(2), "{}", out.output);
    assert!(
        out.output.ends_with("Read-only file system\n"),
        "{}",
        out.output
    );
    assert!(!exists(&outside.join("target")));

    std::fs::remove_file(scratch.work().join("link")).unwrap();
    assert!(
        sh(&scratch.sandbox(SandboxMode::None), &command)
            .await
            .success()
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("target")).unwrap(),
        "x\n"
    );
}

#[tokio::test]
async fn a_hard_link_to_an_outside_file_cannot_be_made() {
    let scratch = Scratch::new();
    let victim = scratch.outside().join("victim");
    std::fs::write(&victim, "original\n").unwrap();
    let command = format!("ln {} hl && echo changed > hl", victim.display());
    let out = sh(&scratch.sandbox(SandboxMode::Bwrap), &command).await;
    assert_eq!(out.exit_code, Some(1), "{}", out.output);
    assert!(
        out.output.contains("Invalid cross-device link"),
        "{}",
        out.output
    );
    assert!(!exists(&scratch.work().join("hl")));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "original\n");

    // Same file system, no sandbox: the link is made and the outside file changes through it.
    assert!(
        sh(&scratch.sandbox(SandboxMode::None), &command)
            .await
            .success()
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "changed\n");
}

#[tokio::test]
async fn writing_through_proc_self_root_fails() {
    let scratch = Scratch::new();
    let outside = scratch.outside();
    for root in ["/proc/self/root", "/proc/1/root"] {
        let command = format!("echo x > {root}{}/p", outside.display());
        let out = sh(&scratch.sandbox(SandboxMode::Bwrap), &command).await;
        assert_eq!(out.exit_code, Some(2), "{root}: {}", out.output);
        assert!(
            out.output.ends_with("Read-only file system\n"),
            "{root}: {}",
            out.output
        );
    }
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[tokio::test]
async fn connecting_to_a_host_loopback_server_is_refused() {
    let scratch = Scratch::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The sandbox has its own loopback: nothing listens there.
    let command = format!("bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' 2>&1; echo rc=$?");
    let out = sh(&scratch.sandbox(SandboxMode::Bwrap), &command).await;
    assert!(out.output.contains("Connection refused"), "{}", out.output);
    assert!(out.output.ends_with("rc=1\n"), "{}", out.output);
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "a connection reached the host");
}

#[tokio::test]
async fn dns_does_not_resolve_and_queries_never_leave() {
    let scratch = Scratch::new();
    let out = sh(
        &scratch.sandbox(SandboxMode::Bwrap),
        "getent hosts example.com; echo rc=$?; getent hosts localhost >/dev/null; echo local=$?",
    )
    .await;
    // 2: "key not found" — no resolver reachable; /etc/hosts still answers for localhost.
    assert_eq!(out.output, "rc=2\nlocal=0\n");

    // A DNS server of the test's own on the host loopback hears nothing from the sandbox.
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let port = server.local_addr().unwrap().port();
    // A query for example.com, A record.
    let query =
        r"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";
    let send = format!("bash -c 'printf \"{query}\" > /dev/udp/127.0.0.1/{port}'");
    sh(&scratch.sandbox(SandboxMode::Bwrap), &send).await;
    let mut buf = [0u8; 512];
    assert!(
        server.recv_from(&mut buf).is_err(),
        "the query reached the host"
    );
    // Without isolation it arrives: the probe works.
    assert!(
        sh(&scratch.sandbox(SandboxMode::None), &send)
            .await
            .success()
    );
    let (n, _) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[4..n.min(6)], &[0, 1]);
}

#[tokio::test]
async fn setuid_programs_gain_no_privileges() {
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    let out = sh(&sandbox, "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status").await;
    assert_eq!(out.output, "CapEff:\t0000000000000000\nNoNewPrivs:\t1\n");

    // su is setuid root: it cannot even switch groups, let alone read the shadow file.
    let su = "su root -c 'grep CapEff /proc/self/status; cat /etc/shadow'";
    let out = sh(&sandbox, su).await;
    assert_eq!(out.exit_code, Some(1), "{}", out.output);
    assert_eq!(
        out.output,
        "su: cannot set groups: Operation not permitted\n"
    );
    // passwd (setuid) reads the masked, empty shadow file: no password age of the host's.
    let status = "passwd -S root";
    let inside = sh(&sandbox, status).await;
    let host = sh(&scratch.sandbox(SandboxMode::None), status).await;
    assert!(
        inside.output.starts_with("root L never "),
        "{}",
        inside.output
    );
    assert_ne!(inside.output, host.output);
    assert!(!host.output.contains("never"), "{}", host.output);
    let out = sh(&sandbox, "mount -t tmpfs x /tmp; echo rc=$?").await;
    assert!(out.output.ends_with("rc=32\n"), "{}", out.output);

    // On the host, as root, the same su keeps every capability.
    let out = sh(&scratch.sandbox(SandboxMode::None), su).await;
    assert!(
        out.output.starts_with("CapEff:\t000001ff"),
        "{}",
        out.output
    );
}

#[tokio::test]
async fn a_process_ignoring_sigterm_is_killed_at_the_timeout() {
    let scratch = Scratch::new();
    let limits = Limits {
        timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    for (i, mode) in super::MODES.into_iter().enumerate() {
        let marker = format!("1006.{i}29");
        let command = format!(
            "python3 -c \"import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); \
             print('ignoring', flush=True); time.sleep({marker})\""
        );
        let started = Instant::now();
        let out = scratch.sandbox(mode).run(&command, &limits).await.unwrap();
        assert_eq!(out.output, "ignoring\n", "{mode}");
        assert_eq!(out.limit, Some(LimitKind::Timeout), "{mode}");
        assert_eq!((out.exit_code, out.signal), (None, Some(9)), "{mode}");
        assert!(started.elapsed() < Duration::from_secs(3), "{mode}");
        assert_gone(&marker).await;
    }
}

#[tokio::test]
async fn a_rust_project_builds_and_its_tests_run_inside() {
    let scratch = Scratch::new();
    let work = scratch.work();
    std::fs::write(
        work.join("Cargo.toml"),
        "[package]\nname = \"adder\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::create_dir(work.join("src")).unwrap();
    std::fs::write(
        work.join("src/lib.rs"),
        "pub fn add(a: u32, b: u32) -> u32 { a + b }\n\n\
         #[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() { assert_eq!(super::add(2, 2), 4); }\n\
         \n    #[test]\n    fn adds_zero() { assert_eq!(super::add(7, 0), 7); }\n}\n",
    )
    .unwrap();
    let out = sh(
        &scratch.sandbox(SandboxMode::Bwrap),
        "CARGO_TARGET_DIR=$PWD/target-sandbox cargo test --offline -q 2>&1",
    )
    .await;
    assert!(out.success(), "{}", out.output);
    assert!(
        out.output.contains("test result: ok. 2 passed; 0 failed"),
        "{}",
        out.output
    );
    assert!(work.join("target-sandbox/debug").is_dir());
    assert!(out.cpu_time.is_some_and(|t| t > Duration::from_millis(100)));
}

#[tokio::test]
async fn a_python_project_is_tested_inside() {
    let scratch = Scratch::new();
    let work = scratch.work();
    std::fs::create_dir(work.join("calc")).unwrap();
    std::fs::write(work.join("calc/__init__.py"), "").unwrap();
    std::fs::write(
        work.join("calc/ops.py"),
        "def mul(a, b):\n    return a * b\n",
    )
    .unwrap();
    std::fs::create_dir(work.join("tests")).unwrap();
    std::fs::write(work.join("tests/__init__.py"), "").unwrap();
    std::fs::write(
        work.join("tests/test_ops.py"),
        "import unittest\nfrom calc.ops import mul\n\n\
         class Ops(unittest.TestCase):\n    def test_mul(self):\n        self.assertEqual(mul(3, 4), 12)\n\n\
         \x20   def test_mul_zero(self):\n        self.assertEqual(mul(3, 0), 0)\n",
    )
    .unwrap();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    let out = sh(&sandbox, "python3 -m unittest 2>&1").await;
    assert!(out.success(), "{}", out.output);
    assert!(out.output.contains("Ran 2 tests"), "{}", out.output);
    assert!(out.output.ends_with("\nOK\n"), "{}", out.output);

    // A broken implementation is caught: the check fails with unittest's exit code.
    std::fs::write(
        work.join("calc/ops.py"),
        "def mul(a, b):\n    return a + b\n",
    )
    .unwrap();
    let out = sh(&sandbox, "python3 -m unittest 2>&1").await;
    assert_eq!(out.exit_code, Some(1), "{}", out.output);
    assert!(
        out.output.ends_with("FAILED (failures=2)\n"),
        "{}",
        out.output
    );
}
