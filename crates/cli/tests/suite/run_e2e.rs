//! `nightshift run` end to end on fixture repositories.

use serde_json::json;

use super::harness::{World, finish, git, tool, tool_results};
use nightshift_testkit::ScriptedReply;

const LIB: &str = "def add(a, b):\n    return a - b\n";
const TEST: &str = "from lib import add\nassert add(2, 3) == 5, 'add is wrong'\nprint('ok')\n";

fn python_world() -> World {
    World::new(&[
        ("lib.py", LIB),
        ("test_lib.py", TEST),
        (
            "AGENTS.md",
            "Always run `python3 test_lib.py` before finishing.\n",
        ),
        (".gitignore", "__pycache__/\n"),
    ])
}

#[test]
fn a_plain_success_commits_on_the_task_branch_and_leaves_the_checkout_alone() {
    let world = python_world().with_script(vec![
        tool("read_file", json!({"path": "lib.py"})),
        tool(
            "edit_file",
            json!({"path": "lib.py", "old_string": "return a - b", "new_string": "return a + b"}),
        ),
        tool("shell", json!({"command": "python3 test_lib.py"})),
        finish("Fixed add: it subtracted instead of adding."),
    ]);
    // Uncommitted work in the user's checkout must survive untouched.
    std::fs::write(world.repo.join("notes.txt"), "my uncommitted notes").unwrap();
    let branch_before = world.git(&["rev-parse", "--abbrev-ref", "HEAD"]);
    let head_before = world.git(&["rev-parse", "HEAD"]);

    let run = world.run(&["--check", "python3 test_lib.py"], "Fix the add function");

    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    let result = run.result();
    assert_eq!(result["status"], "succeeded");
    let branch = result["branch"].as_str().unwrap();
    assert_eq!(
        branch,
        format!("nightshift/{}", result["task_id"].as_str().unwrap())
    );
    assert_eq!(result["steps"], 4);
    assert_eq!(result["verify_rounds"], 1);
    assert_eq!(result["checks"][0]["passed"], true);
    assert_eq!(result["diff_stat"]["files_changed"], 1);

    // The branch holds the fix; the user's checkout does not.
    let fixed = git(&world.repo, &["show", &format!("{branch}:lib.py")]);
    assert!(fixed.contains("return a + b"));
    assert_eq!(
        std::fs::read_to_string(world.repo.join("lib.py")).unwrap(),
        LIB
    );
    assert_eq!(
        std::fs::read_to_string(world.repo.join("notes.txt")).unwrap(),
        "my uncommitted notes"
    );
    assert_eq!(
        world.git(&["rev-parse", "--abbrev-ref", "HEAD"]),
        branch_before
    );
    assert_eq!(world.git(&["rev-parse", "HEAD"]), head_before);
    let message = git(&world.repo, &["log", "-1", "--format=%B", branch]);
    assert!(
        message.starts_with("Fix the add function\n\nFixed add: it subtracted"),
        "{message}"
    );
    assert!(message.contains(&format!(
        "Nightshift-Task: {}",
        result["task_id"].as_str().unwrap()
    )));

    // The model saw the tools, the goal and the repository's AGENTS.md.
    let requests = world.server().requests();
    assert_eq!(requests.len(), 4);
    let tools: Vec<&str> = requests[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    for name in [
        "shell",
        "read_file",
        "write_file",
        "edit_file",
        "list_files",
        "search",
        "finish",
    ] {
        assert!(tools.contains(&name), "tool {name} offered: {tools:?}");
    }
    let system = requests[0]["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("Always run `python3 test_lib.py` before finishing."));
    assert!(system.contains("- `python3 test_lib.py`"));
    assert!(system.contains("test_lib.py\n") || system.ends_with("test_lib.py"));
    assert!(
        requests[0]["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("Fix the add function")
    );

    // Every step is in the event stream, sequenced, with the template hash on model requests.
    let events = run.lines();
    let seqs: Vec<u64> = events[..events.len() - 1]
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let model_requests = run.events_of("model_request");
    assert_eq!(model_requests.len(), 4);
    assert_eq!(
        model_requests[0]["template_hash"].as_str().unwrap().len(),
        64
    );
    assert_eq!(run.events_of("tool_call").len(), 4);
    assert_eq!(run.events_of("committed").len(), 1);
    let commands = run.events_of("command_finished");
    assert!(
        commands
            .iter()
            .any(|c| c["purpose"] == "check" && c["exit_code"] == 0 && c["sandbox"] == "bwrap")
    );
    assert!(commands.iter().any(|c| c["purpose"] == "shell"));
    assert_eq!(events[events.len() - 2]["type"], "task_finished");
    // Progress went to stderr.
    assert!(run.stderr.contains("nightshift: task"), "{}", run.stderr);
}

#[test]
fn a_failing_check_goes_back_to_the_model_and_the_fix_passes_next_round() {
    let world = python_world().with_script(vec![
        finish("Nothing to do, I think."),
        tool(
            "edit_file",
            json!({"path": "lib.py", "old_string": "a - b", "new_string": "a + b"}),
        ),
        finish("Fixed add after the check failed."),
    ]);
    let run = world.run(&["--check", "python3 test_lib.py"], "Make the tests pass");
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    let result = run.result();
    assert_eq!(result["status"], "succeeded");
    assert_eq!(result["verify_rounds"], 2);
    let rounds = run.events_of("checks_finished");
    assert_eq!(rounds.len(), 2);
    assert_eq!(rounds[0]["passed"], false);
    assert_eq!(rounds[1]["passed"], true);
    // The second request carries the failing check's output as a new user turn.
    let requests = world.server().requests();
    let messages = requests[1]["messages"].as_array().unwrap();
    let turn = messages.last().unwrap();
    assert_eq!(turn["role"], "user");
    let text = turn["content"].as_str().unwrap();
    assert!(text.contains("$ python3 test_lib.py"), "{text}");
    assert!(text.contains("add is wrong"), "{text}");
}

#[test]
fn checks_that_keep_failing_end_the_task_failed_with_the_work_committed() {
    let world = python_world().with_script(vec![
        tool(
            "write_file",
            json!({"path": "attempt.txt", "content": "tried\n"}),
        ),
        finish("first try"),
        finish("second try"),
    ]);
    let run = world.run(
        &["--check", "python3 test_lib.py", "--max-verify-rounds", "2"],
        "Make the tests pass",
    );
    assert_eq!(run.code(), 1, "stderr:\n{}", run.stderr);
    let result = run.result();
    assert_eq!(result["status"], "failed");
    assert_eq!(result["verify_rounds"], 2);
    assert!(
        result["reason"]
            .as_str()
            .unwrap()
            .contains("--max-verify-rounds")
    );
    // What was tried is still reviewable on the branch.
    let branch = result["branch"].as_str().unwrap();
    assert_eq!(
        git(&world.repo, &["show", &format!("{branch}:attempt.txt")]),
        "tried"
    );
}

#[test]
fn a_model_that_never_finishes_runs_out_of_steps() {
    let script = (0..10).map(|_| tool("list_files", json!({}))).collect();
    let world = python_world().with_script(script);
    let run = world.run(&["--max-steps", "3"], "Loop forever");
    assert_eq!(run.code(), 3, "stderr:\n{}", run.stderr);
    let result = run.result();
    assert_eq!(result["status"], "budget_exhausted");
    assert_eq!(result["steps"], 3);
    assert!(result["reason"].as_str().unwrap().contains("--max-steps"));
    assert_eq!(world.server().requests().len(), 3);
    // Nothing changed, so no branch is left behind.
    assert_eq!(result["branch"], serde_json::Value::Null);
    assert_eq!(world.git(&["branch", "--list", "nightshift/*"]), "");
}

#[test]
fn tool_errors_go_back_to_the_model_and_the_run_goes_on() {
    let world = python_world().with_script(vec![
        tool("read_file", json!({"path": "missing.py"})),
        tool(
            "edit_file",
            json!({"path": "lib.py", "old_string": "no such text", "new_string": "x"}),
        ),
        tool("read_file", json!({"nonsense": true})),
        tool("frobnicate", json!({})),
        finish("Could not do much."),
    ]);
    let run = world.run(&[], "Poke around");
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    let results = run.events_of("tool_result");
    assert_eq!(results.len(), 5);
    for result in &results[..4] {
        assert_eq!(result["is_error"], true, "{result}");
    }
    let last_request = world.server().requests().pop().unwrap();
    let texts = tool_results(&last_request);
    assert!(texts[0].contains("missing.py"), "{}", texts[0]);
    assert!(
        texts[1].contains("not found")
            || texts[1].contains("no match")
            || texts[1].contains("does not occur"),
        "{}",
        texts[1]
    );
    assert!(
        texts[3].contains("shell") && texts[3].contains("finish"),
        "unknown tool lists the tools: {}",
        texts[3]
    );
}

#[test]
fn path_escapes_are_refused_and_nothing_is_written_outside() {
    let world = python_world();
    let outside = world.dir.path().join("outside.txt");
    let world = world.with_script(vec![
        tool(
            "write_file",
            json!({"path": "../outside.txt", "content": "escaped"}),
        ),
        tool(
            "write_file",
            json!({"path": outside.to_str().unwrap(), "content": "escaped"}),
        ),
        tool("read_file", json!({"path": "/etc/passwd"})),
        tool(
            "shell",
            json!({"command": format!("echo escaped > {}", outside.display())}),
        ),
        finish("Tried to escape."),
    ]);
    let run = world.run(&[], "Escape");
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    let results = run.events_of("tool_result");
    for result in &results[..3] {
        assert_eq!(result["is_error"], true, "{result}");
    }
    // The shell runs in the sandbox, where the host outside the worktree is read-only.
    // The shell's write lands in the sandbox's private /tmp, never on the host.
    assert!(
        !outside.exists(),
        "nothing was written outside the worktree"
    );
}

#[test]
fn a_server_error_is_retried_and_recorded() {
    let world = python_world().with_script(vec![
        ScriptedReply::Error {
            status: 500,
            body: "upstream exploded".into(),
            retry_after: None,
        },
        finish("Done after a retry."),
    ]);
    let run = world.run(&[], "Say done");
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    let retries = run.events_of("model_retry");
    assert_eq!(retries.len(), 1);
    assert!(
        retries[0]["error"].as_str().unwrap().contains("500"),
        "{}",
        retries[0]
    );
    assert_eq!(world.server().requests().len(), 2);
}

#[test]
fn a_malformed_sse_stream_is_retried() {
    let world = python_world().with_script(vec![
        ScriptedReply::RawSse(
            "data: {\"choices\":[{\"delta\":{\"content\":\"hel\ndata: this is not json\n\n".into(),
        ),
        finish("Done after a bad stream."),
    ]);
    let run = world.run(&[], "Say done");
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    assert_eq!(run.events_of("model_retry").len(), 1);
    assert_eq!(run.result()["summary"], "Done after a bad stream.");
}

#[test]
fn a_model_that_stays_unreachable_ends_the_task_in_error() {
    let world = python_world().with_script(
        (0..10)
            .map(|_| ScriptedReply::Error {
                status: 401,
                body: "bad key".into(),
                retry_after: None,
            })
            .collect(),
    );
    let run = world.run(&[], "Say done");
    assert_eq!(run.code(), 5, "stderr:\n{}", run.stderr);
    let result = run.result();
    assert_eq!(result["status"], "error");
    assert!(
        result["reason"].as_str().unwrap().contains("401"),
        "{result}"
    );
    assert_eq!(world.server().requests().len(), 1, "401 is not retried");
    assert_eq!(
        world.git(&["branch", "--list", "nightshift/*"]),
        "",
        "no branch left behind"
    );
}

#[test]
fn huge_and_non_utf8_command_output_is_capped_and_survives() {
    let world = python_world().with_script(vec![
        tool(
            "shell",
            json!({"command": "head -c 50000000 /dev/zero | tr '\\0' 'a'; echo; echo THE-END"}),
        ),
        tool(
            "shell",
            json!({"command": "printf 'caf\\351 \\377\\376 ok\\n'"}),
        ),
        finish("Looked at big output."),
    ]);
    let run = world.run(&[], "Print a lot");
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    let results = run.events_of("tool_result");
    let big = results[0]["output"].as_str().unwrap();
    assert!(
        big.len() < 64 * 1024,
        "tool output is capped, got {} bytes",
        big.len()
    );
    assert!(big.contains("THE-END"), "the tail is kept");
    assert!(big.contains("omitted"));
    let commands = run.events_of("command_finished");
    assert!(commands[0]["output_bytes"].as_u64().unwrap() >= 50_000_000);
    assert_eq!(commands[0]["output_truncated"], true);
    assert!(results[1]["output"].as_str().unwrap().contains("ok"));
}

#[test]
fn a_run_with_no_changes_leaves_no_branch_and_reruns_never_collide() {
    let world = python_world().with_script(vec![
        finish("Nothing needed."),
        tool("write_file", json!({"path": "one.txt", "content": "1"})),
        finish("wrote one"),
        tool("write_file", json!({"path": "two.txt", "content": "2"})),
        finish("wrote two"),
    ]);
    let first = world.run(&[], "Do nothing");
    assert_eq!(first.code(), 0, "stderr:\n{}", first.stderr);
    assert_eq!(first.result()["branch"], serde_json::Value::Null);
    assert_eq!(world.git(&["branch", "--list", "nightshift/*"]), "");

    let second = world.run(&[], "Write one");
    let third = world.run(&[], "Write two");
    let (b2, b3) = (
        second.result()["branch"].clone(),
        third.result()["branch"].clone(),
    );
    assert_ne!(b2, b3);
    let b2 = b2.as_str().unwrap();
    let b3 = b3.as_str().unwrap();
    assert_eq!(git(&world.repo, &["show", &format!("{b2}:one.txt")]), "1");
    assert_eq!(git(&world.repo, &["show", &format!("{b3}:two.txt")]), "2");
    // Worktrees are cleaned up once the work is committed.
    let worktrees = std::fs::read_dir(world.home().join("worktrees"))
        .unwrap()
        .count();
    assert_eq!(worktrees, 0);
}

#[test]
fn a_malformed_line_in_a_complete_stream_is_skipped_and_recorded() {
    let finish_call = json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1",
        "type": "function", "function": {"name": "finish", "arguments": "{\"summary\":\"done despite a glitch\"}"}}]},
        "finish_reason": "tool_calls"}]});
    let stream = format!("data: {{not json at all\n\ndata: {finish_call}\n\ndata: [DONE]\n\n");
    let world = python_world().with_script(vec![ScriptedReply::RawSse(stream)]);
    let run = world.run(&[], "Say done");
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    assert!(run.events_of("model_retry").is_empty());
    let notices = run.events_of("notice");
    assert!(
        notices.iter().any(|n| n["message"]
            .as_str()
            .unwrap()
            .contains("skipped a malformed line")),
        "{notices:?}"
    );
    assert_eq!(run.result()["summary"], "done despite a glitch");
}

#[test]
fn work_that_cannot_be_committed_ends_in_error_and_the_worktree_is_kept() {
    // An embedded repository without commits makes `git add -A` fail.
    let world = python_world().with_script(vec![
        tool(
            "shell",
            json!({"command": "git init -q sub && echo x > sub/f && echo kept > keep.txt"}),
        ),
        finish("Made a nested repository."),
    ]);
    let run = world.run(&[], "Nest a repository");
    assert_eq!(run.code(), 5, "stderr:\n{}", run.stderr);
    let result = run.result();
    assert_eq!(result["status"], "error", "{result}");
    let reason = result["reason"].as_str().unwrap();
    assert!(reason.contains("could not commit"), "{reason}");
    let worktree = world
        .home()
        .join("worktrees")
        .join(result["task_id"].as_str().unwrap());
    assert!(reason.contains(worktree.to_str().unwrap()), "{reason}");
    assert_eq!(
        std::fs::read_to_string(worktree.join("keep.txt")).unwrap(),
        "kept\n"
    );
}

#[test]
fn the_final_state_change_starts_from_verifying_after_the_checks() {
    let world = python_world().with_script(vec![
        tool(
            "edit_file",
            json!({"path": "lib.py", "old_string": "a - b", "new_string": "a + b"}),
        ),
        finish("fixed"),
    ]);
    let run = world.run(&["--check", "python3 test_lib.py"], "Fix add");
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    let last = run.events_of("state_changed").pop().unwrap();
    assert_eq!(last["from"], "verifying", "{last}");
    assert_eq!(last["to"], "succeeded", "{last}");
}

#[test]
fn an_answer_cut_off_at_the_output_limit_is_not_taken_as_done() {
    let cut = json!({"choices": [{"index": 0, "delta": {"content": "I will now fix the"},
        "finish_reason": "length"}]});
    let world = python_world().with_script(vec![
        ScriptedReply::RawSse(format!("data: {cut}\n\ndata: [DONE]\n\n")),
        tool(
            "edit_file",
            json!({"path": "lib.py", "old_string": "a - b", "new_string": "a + b"}),
        ),
        finish("fixed"),
    ]);
    let run = world.run(&["--check", "python3 test_lib.py"], "Fix add");
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    let result = run.result();
    assert_eq!(result["steps"], 3);
    assert_eq!(
        result["verify_rounds"], 1,
        "the cut-off answer did not trigger the checks"
    );
    let second = &world.server().requests()[1];
    let last = second["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["role"], "user");
    assert!(
        last["content"].as_str().unwrap().contains("cut off"),
        "{last}"
    );
}
