//! Timeouts, output caps, background processes and cancellation: the run always ends, and ends
//! everything it started.

use std::time::{Duration, Instant};

use nightshift_sandbox::{Limits, SandboxMode};

use super::{MODES, Scratch, assert_gone, processes_with, sh};

fn short(timeout_ms: u64) -> Limits {
    Limits {
        timeout: Duration::from_millis(timeout_ms),
        ..Limits::default()
    }
}

#[tokio::test]
async fn timeout_kills_the_whole_tree_quickly() {
    let scratch = Scratch::new();
    for (i, mode) in MODES.into_iter().enumerate() {
        // A child that ignores SIGTERM, a grandchild in the background, and the shell waiting.
        let marker = format!("1000.{i}17");
        let command =
            format!("trap '' TERM; sleep {marker} & sh -c 'trap \"\" TERM; sleep {marker}'; wait");
        let started = Instant::now();
        let out = scratch
            .sandbox(mode)
            .run(&command, &short(500))
            .await
            .unwrap();
        let took = started.elapsed();
        assert!(out.timed_out, "{mode}");
        assert!(!out.success(), "{mode}");
        assert_eq!((out.exit_code, out.signal), (None, Some(9)), "{mode}");
        assert!(took >= Duration::from_millis(500), "{mode}: {took:?}");
        assert!(took < Duration::from_millis(2500), "{mode}: {took:?}");
        assert_gone(&marker).await;
    }
}

#[tokio::test]
async fn output_flood_is_capped_and_counted() {
    let scratch = Scratch::new();
    let limits = Limits {
        output_cap: 64 * 1024,
        ..super::limits()
    };
    for mode in MODES {
        let out = scratch
            .sandbox(mode)
            .run("yes 0123456789 | head -c 50000000", &limits)
            .await
            .unwrap();
        assert!(out.success(), "{mode}");
        assert_eq!(out.total_bytes, 50_000_000, "{mode}");
        assert!(out.truncated, "{mode}");
        let marker = format!("\n[... {} bytes omitted ...]\n", 50_000_000 - 64 * 1024);
        assert_eq!(out.output.len(), 64 * 1024 + marker.len(), "{mode}");
        let (head, tail) = out.output.split_once(&marker).expect("marker");
        assert_eq!(head.len(), 32 * 1024);
        assert!(head.starts_with("0123456789\n0123456789\n"), "{mode}");
        // 50,000,000 = 4,545,454 lines of 11 bytes + "012345".
        assert!(tail.ends_with("0123456789\n012345"), "{mode}");
        let report = out.report("shell", "flood", mode);
        assert_eq!(
            (report.output_bytes, report.output_truncated),
            (50_000_000, true)
        );
    }
}

#[tokio::test]
async fn output_at_the_cap_is_kept_whole() {
    let scratch = Scratch::new();
    let limits = Limits {
        output_cap: 1000,
        ..super::limits()
    };
    let out = scratch
        .sandbox(SandboxMode::Bwrap)
        .run("head -c 1000 /dev/zero | tr '\\0' a", &limits)
        .await
        .unwrap();
    assert_eq!(out.output, "a".repeat(1000));
    assert!(!out.truncated);
}

#[tokio::test]
async fn a_background_process_does_not_hold_the_run() {
    let scratch = Scratch::new();
    for (i, mode) in MODES.into_iter().enumerate() {
        let marker = format!("1001.{i}23");
        let started = Instant::now();
        let out = sh(
            &scratch.sandbox(mode),
            &format!("sleep {marker} & echo started"),
        )
        .await;
        assert_eq!(out.output, "started\n", "{mode}");
        assert!(out.success(), "{mode}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{mode}: {:?}",
            started.elapsed()
        );
        // It does not outlive the command either.
        assert_gone(&marker).await;
    }
}

#[tokio::test]
async fn an_escaped_process_is_killed_with_its_cgroup() {
    // Only possible without isolation: setsid leaves the process group, so killing the group
    // does not reach it; the command's cgroup does, as soon as the command exits.
    assert!(nightshift_sandbox::cgroup_support().processes);
    let scratch = Scratch::new();
    let started = Instant::now();
    let command = "setsid sh -c 'echo escaped; sleep 1003.41' & sleep 0.3; echo started";
    let out = sh(&scratch.sandbox(SandboxMode::None), command).await;
    assert_eq!(out.output, "escaped\nstarted\n");
    assert!(out.success());
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(550),
        "the drain grace was waited: {took:?}"
    );
    assert_gone("1003.41").await;
}

#[test]
fn a_gigabyte_of_output_keeps_memory_at_the_cap() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let scratch = Scratch::new();
    let out = runtime.block_on(sh(
        &scratch.sandbox(SandboxMode::Bwrap),
        "head -c 1G /dev/zero",
    ));
    assert_eq!(out.total_bytes, 1 << 30);
    assert!(out.truncated);
    assert!(out.output.len() < 1024 * 1024 + 100);
    // nextest runs each test in its own process, so this is this test's peak.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap();
    assert!(peak_kb < 64 * 1024, "peak resident memory {peak_kb} kB");
}

#[tokio::test]
async fn dropping_the_run_kills_everything() {
    let scratch = Scratch::new();
    for (i, mode) in MODES.into_iter().enumerate() {
        let marker = format!("1002.{i}31");
        let sandbox = scratch.sandbox(mode);
        let command = format!("sleep {marker} & sleep {marker}");
        let limits = super::limits();
        let run = sandbox.run(&command, &limits);
        let cut = tokio::time::timeout(Duration::from_millis(300), run).await;
        assert!(
            cut.is_err(),
            "{mode}: the command should still have been running"
        );
        assert_gone(&marker).await;
    }
}

#[tokio::test]
async fn resource_limits_are_set() {
    let scratch = Scratch::new();
    for mode in MODES {
        // dash reports the file size limit in 512-byte blocks: 1 GiB.
        let out = sh(&scratch.sandbox(mode), "ulimit -f; ulimit -c").await;
        assert_eq!(out.output, "2097152\n0\n", "{mode}");
    }
}

#[tokio::test]
async fn runs_can_be_concurrent() {
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    let started = Instant::now();
    let runs = (0..4).map(|i| {
        let sandbox = sandbox.clone();
        tokio::spawn(async move { sh(&sandbox, &format!("sleep 0.5; echo {i}")).await })
    });
    for (i, run) in runs.collect::<Vec<_>>().into_iter().enumerate() {
        assert_eq!(run.await.unwrap().output, format!("{i}\n"));
    }
    assert!(
        started.elapsed() < Duration::from_millis(1800),
        "{:?}",
        started.elapsed()
    );
    assert!(processes_with("sleep 0.5").is_empty());
}
