//! The README's demo task (examples/calc) is a real task: its check fails as shipped, and the
//! right fix, made through the tools, makes `nightshift run` succeed.

use serde_json::json;

use super::harness::{World, finish, git, tool};

fn example(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/calc/");
    std::fs::read_to_string(format!("{path}{name}")).unwrap()
}

#[test]
fn the_demo_task_fails_as_shipped_and_succeeds_once_fixed() {
    let (calc, tests, agents) = (
        example("calc.py"),
        example("test_calc.py"),
        example("AGENTS.md"),
    );
    let edit = |old: &str, new: &str| {
        tool(
            "edit_file",
            json!({"path": "calc.py", "old_string": old, "new_string": new}),
        )
    };
    let world = World::new(&[
        ("calc.py", calc.as_str()),
        ("test_calc.py", tests.as_str()),
        ("AGENTS.md", agents.as_str()),
    ])
    .with_script(vec![
        finish("Claiming success without changes, to see the check fail."),
        edit("len(values) - 1", "len(values)"),
        edit(
            "    if value > high:\n        return low",
            "    if value > high:\n        return high",
        ),
        finish("Fixed mean (an off-by-one) and clamp (returned low for values above high)."),
    ]);
    let run = world.run(
        &["--check", "python3 -m unittest -v"],
        "Make the tests pass",
    );
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    let rounds = run.events_of("checks_finished");
    assert_eq!(rounds.len(), 2);
    assert_eq!(
        rounds[0]["passed"], false,
        "the shipped example fails its check"
    );
    assert!(
        rounds[0]["checks"][0]["output"]
            .as_str()
            .unwrap()
            .contains("FAILED (failures=2)")
    );
    assert_eq!(rounds[1]["passed"], true);
    let branch = run.result()["branch"].as_str().unwrap().to_owned();
    let fixed = git(&world.repo, &["show", &format!("{branch}:calc.py")]);
    assert!(
        fixed.contains("return sum(values) / len(values)\n"),
        "{fixed}"
    );
}
