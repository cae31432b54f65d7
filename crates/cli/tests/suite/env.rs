//! A task declares environment variables for its commands: literals are stored with the task,
//! pass-through values are read at run time and never stored.

use serde_json::json;

use super::harness::{World, finish, tool};

#[test]
fn declared_variables_reach_the_commands_and_pass_through_values_are_not_stored() {
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![
        tool(
            "shell",
            json!({"command": "echo \"$GREETING/${#DEPLOY_TOKEN}/${HOST_ONLY:-unset}\""}),
        ),
        finish("printed"),
    ]);
    let mut command = world.command();
    command
        .args(["run", "--json", "--repo"])
        .arg(&world.repo)
        .args(["--env", "GREETING=hello", "--env", "DEPLOY_TOKEN"])
        .arg("Print the variables")
        .env("DEPLOY_TOKEN", "tok-1234567890")
        .env("HOST_ONLY", "must-not-leak");
    let run = super::harness::run(command);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let output = run.events_of("tool_result")[0]["output"]
        .as_str()
        .unwrap()
        .to_owned();
    // The literal arrives, the pass-through arrives (14 characters), an undeclared host
    // variable does not.
    assert!(output.contains("hello/14/unset"), "{output}");
    let created = &run.events_of("task_created")[0];
    assert_eq!(
        created["spec"]["env"],
        json!({"GREETING": "hello", "DEPLOY_TOKEN": null})
    );
    assert!(!run.stdout.contains("tok-1234567890"));
}

#[test]
fn bad_or_missing_variables_are_refused_at_the_door() {
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![]);
    let bad = world.run(&["--env", "1BAD=x"], "Anything");
    assert_eq!(bad.code(), 2, "{}", bad.stderr);
    assert!(
        bad.stderr
            .contains("`1BAD` is not a valid environment variable name"),
        "{}",
        bad.stderr
    );
    let mut command = world.command();
    command
        .args(["run", "--repo"])
        .arg(&world.repo)
        .args(["--env", "NOT_SET_ANYWHERE_X"])
        .arg("Anything")
        .env_remove("NOT_SET_ANYWHERE_X");
    let missing = super::harness::run(command);
    assert_eq!(missing.code(), 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("NOT_SET_ANYWHERE_X"),
        "{}",
        missing.stderr
    );
    assert!(missing.stderr.contains("hint:"), "{}", missing.stderr);
}
