//! `shell` through the real bubblewrap sandbox.

use std::time::Duration;

use nightshift_sandbox::{Limits, SandboxMode};
use nightshift_tools::MAX_TOOL_OUTPUT;
use serde_json::json;

use super::Work;

fn sandboxed() -> Work {
    Work::with(SandboxMode::Bwrap, Limits::default())
}

#[tokio::test]
async fn a_command_runs_in_the_worktree_and_reports_its_exit_code() {
    let w = sandboxed();
    w.file("input.txt", "from the worktree\n");
    let out = w
        .call(
            "shell",
            json!({"command": "cat input.txt && echo made > output.txt"}),
        )
        .await;
    assert!(!out.is_error, "{}", out.text);
    assert_eq!(out.text, "exit code: 0\nfrom the worktree\n");
    assert_eq!(w.read("output.txt"), "made\n");
    let report = out.command.unwrap();
    assert_eq!(report.purpose, "shell");
    assert_eq!(report.command, "cat input.txt && echo made > output.txt");
    assert_eq!(report.exit_code, Some(0));
    assert_eq!(report.sandbox, "bwrap");
}

#[tokio::test]
async fn a_failing_command_is_information_not_an_error() {
    let w = sandboxed();
    let out = w
        .call("shell", json!({"command": "echo oops >&2; exit 3"}))
        .await;
    assert!(!out.is_error, "{}", out.text);
    assert_eq!(out.text, "exit code: 3\noops\n");
    assert_eq!(out.command.unwrap().exit_code, Some(3));
}

#[tokio::test]
async fn no_output_says_so() {
    let w = sandboxed();
    let text = w.ok("shell", json!({"command": "true"})).await;
    assert_eq!(text, "exit code: 0\n(no output)");
}

#[tokio::test]
async fn fifty_megabytes_of_output_are_trimmed_to_the_tool_cap() {
    let w = sandboxed();
    let out = w
        .call(
            "shell",
            json!({"command": "echo FIRST; yes 'all work and no play' | head -c 52428800; echo LAST"}),
        )
        .await;
    assert!(!out.is_error, "{}", &out.text[..200.min(out.text.len())]);
    assert!(
        out.text.len() <= MAX_TOOL_OUTPUT,
        "{} bytes",
        out.text.len()
    );
    assert!(
        out.text.starts_with("exit code: 0\nFIRST\n"),
        "{}",
        &out.text[..100]
    );
    assert!(out.text.contains("bytes omitted"), "{}", out.text);
    let report = out.command.unwrap();
    assert!(report.output_bytes >= 52_428_800, "{report:?}");
    assert!(report.output_truncated, "{report:?}");
    assert!(
        out.text.contains("[output capped: the command wrote"),
        "{}",
        out.text
    );
}

#[tokio::test]
async fn output_that_is_not_utf8_comes_back_readable() {
    let w = sandboxed();
    let text = w
        .ok("shell", json!({"command": r"printf 'ok \377\376 done\n'"}))
        .await;
    assert!(text.starts_with("exit code: 0\nok "), "{text:?}");
    assert!(
        text.contains('\u{FFFD}') && text.contains(" done"),
        "{text:?}"
    );
}

#[tokio::test]
async fn a_command_that_runs_too_long_is_stopped_and_says_so() {
    let w = Work::with(
        SandboxMode::Bwrap,
        Limits {
            timeout: Duration::from_secs(1),
            ..Limits::default()
        },
    );
    let out = w
        .call("shell", json!({"command": "echo started; sleep 30"}))
        .await;
    assert!(!out.is_error, "{}", out.text);
    assert!(out.text.starts_with("timed out after 1s"), "{}", out.text);
    assert!(out.text.contains("started"), "{}", out.text);
    assert!(out.command.unwrap().duration_ms < 20_000);
}

#[tokio::test]
async fn an_empty_command_is_refused() {
    let w = sandboxed();
    let text = w.err("shell", json!({"command": "  "})).await;
    assert!(text.contains("command is empty"), "{text}");
}

#[tokio::test]
async fn a_sandbox_failure_is_an_error_with_the_reason() {
    let w = sandboxed();
    // A variable name the sandbox cannot pass on makes every run fail before it starts.
    let sandbox = w
        .tools
        .sandbox()
        .clone()
        .with_env(vec![("BAD=NAME".to_owned(), "x".to_owned())]);
    let tools = nightshift_tools::Toolbox::new(sandbox, Limits::default()).unwrap();
    let out = tools.call("shell", r#"{"command": "echo hi"}"#).await;
    assert!(out.is_error, "{}", out.text);
    assert!(
        out.text
            .starts_with("the sandbox could not run the command:"),
        "{}",
        out.text
    );
    assert!(out.text.contains("BAD=NAME"), "{}", out.text);
    assert!(out.command.is_none());
}

#[tokio::test]
async fn a_fifo_made_by_a_command_cannot_hang_the_file_tools() {
    let w = sandboxed();
    w.ok(
        "shell",
        json!({"command": "mkfifo pipe && echo needle > a.txt"}),
    )
    .await;
    let calls = async {
        let text = w.err("read_file", json!({"path": "pipe"})).await;
        assert!(text.contains("not a regular file"), "{text}");
        let text = w
            .err("write_file", json!({"path": "pipe", "content": "x"}))
            .await;
        assert!(text.contains("not a regular file"), "{text}");
        let text = w
            .err(
                "edit_file",
                json!({"path": "pipe", "old_string": "a", "new_string": "b"}),
            )
            .await;
        assert!(text.contains("not a regular file"), "{text}");
        assert_eq!(
            w.ok("search", json!({"pattern": "needle"})).await,
            "a.txt:1: needle"
        );
        assert_eq!(w.ok("list_files", json!({})).await, "a.txt\npipe");
    };
    tokio::time::timeout(Duration::from_secs(20), calls)
        .await
        .expect("a file tool blocked on the FIFO");
}
