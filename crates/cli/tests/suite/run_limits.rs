//! Cancellation, the wall-clock budget, the context window and the commit author, end to end.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use super::harness::{Run, World, finish, git, tool};
use nightshift_testkit::ScriptedReply;

fn world() -> World {
    World::new(&[("README.md", "hello\n"), ("AGENTS.md", "Be brief.\n")])
}

#[test]
fn ctrl_c_cancels_the_task_and_keeps_the_work() {
    let world = world().with_script(vec![
        tool(
            "write_file",
            json!({"path": "partial.txt", "content": "halfway\n"}),
        ),
        ScriptedReply::Delayed(Duration::from_secs(60), Box::new(finish("too late"))),
    ]);
    let mut command = world.command();
    command
        .args(["run", "--json", "--repo"])
        .arg(&world.repo)
        .arg("Write something slowly")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().unwrap();
    // Wait until the second model request is in flight, then interrupt like Ctrl-C does.
    let started = Instant::now();
    while world.server().requests().len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the run never reached step 2"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let interrupted = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert!(
        interrupted.elapsed() < Duration::from_secs(10),
        "cancellation is prompt"
    );
    let run = Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        output,
    };
    assert_eq!(run.code(), 4, "stderr:\n{}", run.stderr);
    let result = run.result();
    assert_eq!(result["status"], "cancelled");
    let branch = result["branch"]
        .as_str()
        .expect("the work so far is committed");
    assert_eq!(
        git(&world.repo, &["show", &format!("{branch}:partial.txt")]),
        "halfway"
    );
}

#[test]
fn the_wall_clock_budget_stops_a_slow_model() {
    let world = world().with_script(vec![ScriptedReply::Delayed(
        Duration::from_secs(60),
        Box::new(finish("too late")),
    )]);
    let started = Instant::now();
    let run = world.run(&["--timeout", "1s"], "Answer slowly");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(run.code(), 3, "stderr:\n{}", run.stderr);
    let result = run.result();
    assert_eq!(result["status"], "budget_exhausted");
    assert!(
        result["reason"].as_str().unwrap().contains("--timeout"),
        "{result}"
    );
}

#[test]
fn the_token_budget_stops_the_task() {
    let script = (0..10).map(|_| tool("list_files", json!({}))).collect();
    let world = world().with_script(script);
    let run = world.run(&["--max-tokens", "100"], "Use many tokens");
    assert_eq!(run.code(), 3, "stderr:\n{}", run.stderr);
    let result = run.result();
    assert_eq!(result["status"], "budget_exhausted");
    assert!(
        result["reason"].as_str().unwrap().contains("--max-tokens"),
        "{result}"
    );
    assert_eq!(
        result["steps"], 1,
        "the budget is checked before every request"
    );
}

#[test]
fn old_tool_outputs_are_trimmed_to_fit_the_context_window_and_the_goal_never_is() {
    let big = "x".repeat(6_000);
    let mut script = Vec::new();
    for i in 0..8 {
        script.push(tool(
            "write_file",
            json!({"path": format!("f{i}.txt"), "content": big}),
        ));
        script.push(tool("read_file", json!({"path": format!("f{i}.txt")})));
    }
    script.push(finish("wrote and read files"));
    // Over the window, the agent first asks the model for a summary (compaction). Here that
    // request is answered with the next scripted tool call, which holds no summary, so the
    // compaction fails and trimming takes over: this is the test of that fallback. Compaction
    // proper is tested in compaction.rs.
    let world = world().with_script(script);
    let run = world.run(&["--context-window", "6000"], "Write and read big files");
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    let trims = run.events_of("context_trimmed");
    assert!(!trims.is_empty(), "trimming is recorded as an event");
    for trim in &trims {
        assert!(
            trim["tokens_after"].as_u64() < trim["tokens_before"].as_u64(),
            "{trim}"
        );
    }
    let last = world.server().requests().pop().unwrap();
    let messages = last["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    assert!(
        messages[0]["content"]
            .as_str()
            .unwrap()
            .contains("Be brief.")
    );
    assert!(
        messages[1]["content"]
            .as_str()
            .unwrap()
            .contains("Write and read big files")
    );
    let total: usize = messages.iter().map(|m| m.to_string().len()).sum();
    assert!(
        total < 6_000 * 4,
        "the conversation fits the window: {total} bytes"
    );
}

#[test]
fn the_commit_author_is_configurable() {
    let world = world().with_script(vec![
        tool("write_file", json!({"path": "a.txt", "content": "a\n"})),
        finish("added a"),
    ]);
    let run = world.run(&["--author", "Ada Lovelace <ada@example.com>"], "Add a");
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    let branch = run.result()["branch"].as_str().unwrap().to_owned();
    assert_eq!(
        git(&world.repo, &["log", "-1", "--format=%an <%ae>", &branch]),
        "Ada Lovelace <ada@example.com>"
    );
    let bad = world.run(&["--author", "nobody"], "Add a");
    assert_eq!(bad.code(), 2);
    assert!(bad.stderr.contains("Name <email>"), "{}", bad.stderr);
}

#[test]
fn a_model_repeating_the_same_failing_call_is_warned_then_stopped() {
    let stuck = || {
        tool(
            "edit_file",
            json!({"path": "README.md", "old_string": "fail", "new_string": "pass"}),
        )
    };
    let world = world().with_script((0..10).map(|_| stuck()).collect());
    let run = world.run(&[], "Make it pass");
    assert_eq!(run.code(), 1, "stderr:\n{}", run.stderr);
    let result = run.result();
    assert_eq!(result["status"], "failed");
    assert!(
        result["reason"]
            .as_str()
            .unwrap()
            .contains("same `edit_file` call 5 times"),
        "{result}"
    );
    assert_eq!(result["steps"], 5, "stopped at the fifth identical call");
    let outputs: Vec<String> = run
        .events_of("tool_result")
        .iter()
        .map(|e| e["output"].as_str().unwrap().to_owned())
        .collect();
    assert!(!outputs[0].contains("note: you made exactly this call"));
    assert!(
        outputs[1].contains("exactly this call 2 times"),
        "{}",
        outputs[1]
    );
}
