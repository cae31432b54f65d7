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
