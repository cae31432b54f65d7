//! Output, exit codes, signals, working directory and accounting, in both modes.

use std::time::{Duration, Instant};

use nightshift_sandbox::{Limits, SandboxMode};

use super::{MODES, Scratch, sh};

#[tokio::test]
async fn echo_and_exit_code_are_reported() {
    let scratch = Scratch::new();
    for mode in MODES {
        let sandbox = scratch.sandbox(mode);
        let out = sh(&sandbox, "echo hello; exit 3").await;
        assert_eq!(out.output, "hello\n", "{mode}");
        assert_eq!(out.exit_code, Some(3), "{mode}");
        assert_eq!(out.signal, None, "{mode}");
        assert!(!out.success(), "{mode}");
        assert!(!out.timed_out && !out.truncated, "{mode}");
        assert_eq!(out.total_bytes, 6, "{mode}");

        let ok = sh(&sandbox, "true").await;
        assert_eq!((ok.exit_code, ok.success()), (Some(0), true), "{mode}");
    }
}

#[tokio::test]
async fn stdout_and_stderr_are_interleaved_as_written() {
    let scratch = Scratch::new();
    for mode in MODES {
        let out = sh(
            &scratch.sandbox(mode),
            "echo a; echo b >&2; echo c; echo d >&2",
        )
        .await;
        assert_eq!(out.output, "a\nb\nc\nd\n", "{mode}");
    }
}

#[tokio::test]
async fn signals_are_reported() {
    let scratch = Scratch::new();
    let out = sh(&scratch.sandbox(SandboxMode::None), "kill -TERM $$").await;
    assert_eq!((out.exit_code, out.signal), (None, Some(15)));
    assert!(!out.success());
    // bubblewrap reports a signalled command as 128+N, as shells do.
    let out = sh(&scratch.sandbox(SandboxMode::Bwrap), "kill -TERM $$").await;
    assert_eq!((out.exit_code, out.signal), (Some(143), None));
    assert!(!out.success());
}

#[tokio::test]
async fn runs_in_the_workdir_with_stdin_closed() {
    let scratch = Scratch::new();
    for mode in MODES {
        let sandbox = scratch.sandbox(mode);
        assert_eq!(sandbox.mode(), mode);
        assert_eq!(sandbox.workdir(), scratch.work());
        let out = sh(&sandbox, "pwd; cat; echo end").await;
        assert_eq!(
            out.output,
            format!("{}\nend\n", scratch.work().display()),
            "{mode}"
        );
    }
}

#[tokio::test]
async fn non_utf8_output_is_replaced_not_an_error() {
    let scratch = Scratch::new();
    for mode in MODES {
        let out = sh(&scratch.sandbox(mode), r"printf 'ok \377\376 end\n'").await;
        assert_eq!(out.output, "ok \u{fffd}\u{fffd} end\n", "{mode}");
        assert_eq!(out.total_bytes, 10, "{mode}");
    }
}

#[tokio::test]
async fn report_carries_the_accounting() {
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    let out = sh(&sandbox, "echo hi; exit 2").await;
    let report = out.report("check", "echo hi; exit 2", sandbox.mode());
    assert_eq!(report.purpose, "check");
    assert_eq!(report.command, "echo hi; exit 2");
    assert_eq!(report.exit_code, Some(2));
    assert_eq!(report.signal, None);
    assert_eq!(report.output_bytes, 3);
    assert!(!report.output_truncated);
    assert_eq!(report.limit, None);
    assert_eq!(report.sandbox, "bwrap");
    assert_eq!(u128::from(report.duration_ms), out.duration.as_millis());
    assert_eq!(
        report.cpu_ms.map(u128::from),
        out.cpu_time.map(|t| t.as_millis())
    );
    assert!(out.cpu_time.is_some());
    // bwrap, its init and the shell: at least a few hundred kilobytes, far from a gigabyte.
    let peak = out.peak_memory_bytes.expect("peak memory");
    assert!((100 << 10..1 << 30).contains(&peak), "{peak}");
    assert_eq!(report.peak_memory_bytes, Some(peak));

    let limits = Limits {
        timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let out = sandbox.run("sleep 10", &limits).await.unwrap();
    let report = out.report("shell", "sleep 10", SandboxMode::Bwrap);
    assert_eq!(report.limit.as_deref(), Some("timeout"));
    assert_eq!(report.purpose, "shell");
}

#[tokio::test]
async fn a_sandboxed_true_is_quick() {
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        assert!(sh(&sandbox, "true").await.success());
        best = best.min(started.elapsed());
    }
    // A few milliseconds on an idle machine; generous for a busy shared one.
    assert!(best < Duration::from_millis(150), "best of 5: {best:?}");
}

#[test]
fn mode_names_round_trip() {
    for mode in MODES {
        assert_eq!(mode.as_str().parse::<SandboxMode>().unwrap(), mode);
        assert_eq!(mode.to_string(), mode.as_str());
    }
    assert_eq!(SandboxMode::Bwrap.as_str(), "bwrap");
    assert_eq!(SandboxMode::None.as_str(), "none");
    let err = "docker".parse::<SandboxMode>().unwrap_err().to_string();
    assert!(err.contains("\"docker\"") && err.contains("hint:"), "{err}");
}

#[test]
fn default_limits() {
    let limits = Limits::default();
    assert_eq!(limits.timeout, Duration::from_secs(600));
    assert_eq!(limits.output_cap, 1024 * 1024);
    assert_eq!(limits.cpu_time, None);
    assert_eq!(limits.memory_bytes, Some(4 << 30));
    assert_eq!(limits.max_processes, Some(512)); // two cores here: the floor
    assert_eq!(limits.file_size_bytes, Some(1 << 30));
}
