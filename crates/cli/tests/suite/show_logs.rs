//! `nightshift show` and `nightshift logs` read a past task back from the store.

use serde_json::json;

use super::harness::{World, finish, tool};

#[test]
fn show_and_logs_print_a_finished_task() {
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![
        tool("write_file", json!({"path": "b.txt", "content": "b\n"})),
        finish("Added b.txt."),
    ]);
    let run = world.run(&["--check", "test -f b.txt"], "Add b.txt");
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let result = run.result();
    let id = result["task_id"].as_str().unwrap();

    let show = world.nightshift(&["show", id]);
    assert_eq!(show.code(), 0, "{}", show.stderr);
    assert!(
        show.stdout.contains(&format!("Task {id} succeeded")),
        "{}",
        show.stdout
    );
    assert!(show.stdout.contains("Added b.txt."));
    assert!(show.stdout.contains("✓ test -f b.txt"));
    assert!(show.stdout.contains("b.txt"));

    let show_json = world.nightshift(&["show", id, "--json"]);
    assert_eq!(show_json.result(), result);

    let logs = world.nightshift(&["logs", id, "--json"]);
    assert_eq!(logs.code(), 0);
    let stored = logs.lines();
    let streamed = run.lines();
    assert_eq!(
        stored[..],
        streamed[..streamed.len() - 1],
        "the store holds exactly what was streamed"
    );

    let human = world.nightshift(&["logs", id]);
    assert!(human.stdout.contains("write_file"), "{}", human.stdout);
    assert!(human.stdout.contains("committed"), "{}", human.stdout);
}

#[test]
fn show_refuses_unknown_and_malformed_ids() {
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![finish("ok")]);
    let _ = world.run(&[], "Say ok");
    let unknown = world.nightshift(&["show", "0123456789abcdef"]);
    assert_eq!(unknown.code(), 2);
    assert!(
        unknown.stderr.contains("there is no task 0123456789abcdef"),
        "{}",
        unknown.stderr
    );
    let junk = world.nightshift(&["logs", "../../etc"]);
    assert_eq!(junk.code(), 2);
    assert!(junk.stderr.contains("is not a task id"), "{}", junk.stderr);
}

/// Runs `command` with stdout a pipe whose reading end is already closed (as `| head` leaves it).
fn with_closed_stdout(mut command: std::process::Command) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    command.stdout(writer).stderr(std::process::Stdio::piped());
    command.output().unwrap()
}

#[test]
fn a_closed_stdout_never_turns_into_a_panic() {
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![finish("ok")]);
    let mut run = world.command();
    run.args(["run", "--json", "--repo"])
        .arg(&world.repo)
        .arg("Say ok");
    let out = with_closed_stdout(run);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "the task still finishes: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let id = world.git(&["branch", "--list", "nightshift/*"]);
    assert!(id.is_empty(), "no changes, no branch");
    let task = std::fs::read_dir(world.home().join("worktrees")).map_or(0, |d| d.count());
    assert_eq!(task, 0);
    for args in [vec!["doctor"], vec!["models", "ls"]] {
        let mut command = world.command();
        command.args(&args);
        let out = with_closed_stdout(command);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
