//! The compact scaffold for small models, end to end through the binary against a scripted
//! Chat Completions server: what the model is shown first, which tools it gets, and the checks'
//! verdict after every change.

use serde_json::{Value, json};

use super::harness::{Run, World, finish, run, tool, tool_results};
use nightshift_testkit::ScriptedReply;

const BROKEN: &str = "def add(a, b):\n    return a - b\n";
const CHECK: &str = "python3 -c 'import calc; assert calc.add(2, 3) == 5, calc.add(2, 3)'";

fn world(script: Vec<ScriptedReply>, profile: &str) -> World {
    world_with(
        &[("calc.py", BROKEN), ("notes.bin", "\0\x01")],
        script,
        profile,
    )
}

fn world_with(files: &[(&str, &str)], script: Vec<ScriptedReply>, profile: &str) -> World {
    let world = World::new(files).with_script(script);
    std::fs::create_dir_all(world.home()).unwrap();
    std::fs::write(
        world.home().join("config.toml"),
        format!(
            "[profiles.small]\nbase_url = \"{}\"\nmodel = \"small-model\"\n{profile}",
            world.server().base_url()
        ),
    )
    .unwrap();
    world
}

fn run_small(world: &World) -> Run {
    run_small_on(world, "Fix add in calc.py.")
}

fn run_small_on(world: &World, goal: &str) -> Run {
    let mut command = world.command();
    command
        .env_remove("NIGHTSHIFT_BASE_URL")
        .env_remove("NIGHTSHIFT_MODEL");
    command
        .args([
            "run", "--json", "--model", "small", "--check", CHECK, "--repo",
        ])
        .arg(&world.repo)
        .arg(goal);
    run(command)
}

fn tool_names(request: &Value) -> Vec<String> {
    request["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
        .collect()
}

fn message(request: &Value, index: usize) -> String {
    request["messages"][index]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_compact_scaffold_shows_files_and_checks_first_and_checks_every_change() {
    let fixed = "def add(a, b):\n    return a + b\n";
    let wrong = || {
        tool(
            "write_file",
            json!({"path": "calc.py", "content": "def add(a, b):\n    return a * b\n"}),
        )
    };
    let world = world(
        vec![
            wrong(),
            wrong(),
            tool("write_file", json!({"path": "calc.py", "content": fixed})),
            finish("add now adds"),
        ],
        "scaffold = \"compact\"\n",
    );
    let run = run_small(&world);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    let requests = world.server().requests();
    assert_eq!(requests.len(), 4);

    // Four tools, the whole-file edit format, and the opening shows the file and the failure.
    assert_eq!(
        tool_names(&requests[0]),
        ["write_file", "read_file", "shell", "finish"]
    );
    assert!(message(&requests[0], 0).contains("giving the complete new content"));
    let opening = message(&requests[0], 1);
    assert!(
        opening.starts_with("Your task:\nFix add in calc.py.\n"),
        "{opening}"
    );
    assert!(
        opening.contains(&format!("calc.py\n```python\n{BROKEN}```")),
        "{opening}"
    );
    assert!(
        opening.contains("Other files (not shown; use read_file): notes.bin"),
        "{opening}"
    );
    assert!(
        opening.contains("Before any change, the checks fail:"),
        "{opening}"
    );
    assert!(opening.contains("AssertionError: -1"), "{opening}");

    // After each change the checks' verdict comes back with the tool's result.
    let first = tool_results(&requests[1]);
    assert!(
        first[0].contains("the checks fail") && first[0].contains("AssertionError: 6"),
        "{first:?}"
    );
    // The same write again changes nothing: said so, and the checks are not run for it.
    let again = &tool_results(&requests[2])[1];
    assert!(
        again.contains("calc.py already had exactly this content"),
        "{again}"
    );
    assert!(!again.contains("Nightshift ran the checks"), "{again}");
    assert_eq!(
        run.events_of("command_finished").len(),
        1 + 2 + 1,
        "opening, 2 changes, verify"
    );
    let second = tool_results(&requests[3]);
    assert!(
        second[2].contains("they all pass. Call finish now"),
        "{second:?}"
    );

    assert_eq!(run.result()["status"], "succeeded");
    assert_eq!(
        world.git(&[
            "show",
            &format!("{}:calc.py", run.result()["branch"].as_str().unwrap())
        ]),
        fixed.trim_end()
    );
    // The prompt template is traceable: its hash is the compact template's.
    let hash = run.events_of("model_request")[0]["template_hash"].clone();
    assert_eq!(hash.as_str().unwrap().len(), 64);
    let notice = run.events_of("notice").into_iter().any(|n| {
        n["message"]
            .as_str()
            .unwrap()
            .contains("compact scaffold: showed 1 file(s)")
    });
    assert!(notice, "{}", run.stdout);
}

#[test]
fn the_replace_edit_format_offers_edit_file_and_the_full_scaffold_is_the_default() {
    let fix = tool(
        "edit_file",
        json!({"path": "calc.py", "old_string": "a - b", "new_string": "a + b"}),
    );
    let world = world(
        vec![fix, finish("fixed")],
        "scaffold = \"compact\"\nedit_format = \"replace\"\n",
    );
    let run = run_small(&world);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    let requests = world.server().requests();
    assert_eq!(
        tool_names(&requests[0]),
        ["edit_file", "read_file", "shell", "finish"]
    );
    assert!(message(&requests[0], 0).contains("Change code with edit_file"));

    let world = self::world(vec![finish("nothing")], "");
    let _ = run_small(&world);
    let requests = world.server().requests();
    assert_eq!(
        tool_names(&requests[0]).len(),
        7,
        "a provider gets the full scaffold"
    );
    assert!(message(&requests[0], 0).contains("Files in the repository:"));
}

#[test]
fn unknown_scaffold_settings_are_refused_with_the_choices() {
    for (profile, says) in [
        (
            "scaffold = \"tiny\"\n",
            "use \"full\" (capable models) or \"compact\"",
        ),
        (
            "scaffold = \"compact\"\nedit_format = \"diff\"\n",
            "use \"whole\"",
        ),
        (
            "edit_format = \"replace\"\n",
            "edit_format applies only to the compact scaffold",
        ),
    ] {
        let world = world(vec![finish("never")], profile);
        let run = run_small(&world);
        assert_eq!(run.code(), 2, "{profile}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{profile}: {}", run.stderr);
        assert!(world.server().requests().is_empty());
    }
}

#[test]
fn the_fenced_format_writes_the_files_an_answer_gives_until_the_checks_pass() {
    let world = world(
        vec![
            // Attempt 1: a wrong fix, and a new file.
            ScriptedReply::Text(
                "calc.py\n```python\ndef add(a, b):\n    return a * b\n```\n\nhelper.py\n```python\nX = 1\n```\n"
                    .into(),
            ),
            // Attempt 2: gives the file back unchanged.
            ScriptedReply::Text(format!("calc.py\n```python\n{BROKEN}```\n")),
            // Attempt 3: no file, while the checks fail.
            ScriptedReply::Text("The code looks correct to me.".into()),
            // Attempt 4: the fix.
            ScriptedReply::Text(
                "Fixed the operator.\n\n**calc.py**\n```python\ndef add(a, b):\n    return a + b\n```".into(),
            ),
        ],
        "scaffold = \"compact\"\nedit_format = \"fenced\"\n",
    );
    let run = run_small(&world);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    let requests = world.server().requests();
    assert_eq!(
        requests.len(),
        4,
        "no finish turn: passing checks end the task"
    );
    assert!(
        requests[0]
            .get("tools")
            .is_none_or(|t| t.as_array().unwrap().is_empty())
    );
    assert!(message(&requests[0], 0).contains("in a fenced code block"));

    // A failed answer, and an answer that changes nothing, are undone, and the model is
    // asked the first question again (which the embedded model then samples afresh), with
    // the checks' output of the last attempt they failed, but not its answer.
    let messages = |request: &Value| request["messages"].as_array().unwrap().clone();
    assert_eq!(messages(&requests[0]).len(), 2);
    let first = message(&requests[0], 1);
    let again = message(&requests[1], 1);
    assert_eq!(messages(&requests[1])[0], messages(&requests[0])[0]);
    assert_eq!(messages(&requests[1]).len(), 2);
    let note = again
        .strip_prefix(first.as_str())
        .expect("the opening, then a note");
    assert!(
        note.starts_with("\nAn earlier answer to this task failed the checks:\n")
            && note.contains("AssertionError: 6")
            && !note.contains("a * b"),
        "{note}"
    );
    // Attempts that ran no checks (no change, no file) leave the note as it was.
    assert_eq!(messages(&requests[2]), messages(&requests[1]));
    assert_eq!(messages(&requests[3]), messages(&requests[1]));
    let notices: Vec<String> = run
        .events_of("notice")
        .iter()
        .map(|n| n["message"].as_str().unwrap().to_owned())
        .filter(|m| m.contains("undone"))
        .collect();
    assert_eq!(notices.len(), 3, "{notices:?}");
    // The first attempt's failure, with the checks' output, is on the record.
    assert!(
        notices[0].starts_with(
            "fenced format: attempt 1 undone (the checks failed); restored calc.py, helper.py; \
             asking again from the opening\nThe checks said: "
        ) && notices[0].contains("AssertionError: 6"),
        "{notices:?}"
    );
    assert_eq!(
        notices[1],
        "fenced format: attempt 2 undone (the answer changed nothing); restored calc.py; asking \
         again from the opening"
    );
    assert_eq!(
        notices[2],
        "fenced format: attempt 3 undone (the answer gave no file); restored no files; asking \
         again from the opening"
    );

    let result = run.result();
    assert_eq!(result["status"], "succeeded");
    assert_eq!(result["summary"], "Fixed the operator.");
    // The writes are on the record as write_file calls, and the undone ones left nothing.
    let calls = run.events_of("tool_call");
    assert_eq!(calls.len(), 4);
    assert!(calls.iter().all(|c| c["name"] == "write_file"));
    let branch = result["branch"].as_str().unwrap();
    let files = world.git(&["ls-tree", "-r", "--name-only", branch]);
    assert!(!files.contains("helper.py"), "{files}");
    assert!(
        world
            .git(&["show", &format!("{branch}:calc.py")])
            .contains("a + b")
    );
}

#[test]
fn an_answer_with_only_the_changed_function_keeps_the_rest_of_the_file() {
    let two_functions = "def add(a, b):\n    return a - b\n\n\ndef double(x):\n    return 2 * x\n";
    let world = world_with(
        &[("calc.py", two_functions)],
        vec![ScriptedReply::Text(
            "calc.py\n```python\ndef add(a, b):\n    return a + b\n```\n".into(),
        )],
        "scaffold = \"compact\"\nedit_format = \"fenced\"\n",
    );
    let run = run_small(&world);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    let result = run.result();
    assert_eq!(result["status"], "succeeded");
    let branch = result["branch"].as_str().unwrap();
    let calc = world.git(&["show", &format!("{branch}:calc.py")]);
    assert_eq!(
        calc,
        // (git's output, trimmed)
        "def add(a, b):\n    return a + b\n\n\ndef double(x):\n    return 2 * x"
    );
    // The model is told what was kept, in the write's recorded result.
    let results = run.events_of("tool_result");
    assert!(
        results[0]["output"].as_str().unwrap().contains("double"),
        "{results:?}"
    );
}

#[test]
fn a_fenced_answer_may_not_rewrite_the_tests_when_the_goal_says_so() {
    let test = "import calc\nassert calc.add(2, 3) == 5\n";
    let rewritten = "test_calc.py\n```python\nimport calc\nassert calc.add(2, 3) == -1\n```\n";
    let world = world_with(
        &[("calc.py", BROKEN), ("test_calc.py", test)],
        vec![
            // Only the test, rewritten to pass: refused, and the opening asked again.
            ScriptedReply::Text(rewritten.into()),
            // The fix without a name (the goal names both files; it goes to the one that is
            // not a test), and the test rewritten again: the fix is kept, the test is not.
            ScriptedReply::Text(format!(
                "Fixed:\n```python\ndef add(a, b):\n    return a + b\n```\n{rewritten}"
            )),
        ],
        "scaffold = \"compact\"\nedit_format = \"fenced\"\n",
    );
    let run = run_small_on(
        &world,
        "The tests in test_calc.py fail. Fix calc.py so that they pass. Do not change the tests.",
    );
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    let branch = run.result()["branch"].as_str().unwrap().to_owned();
    assert_eq!(
        world.git(&["show", &format!("{branch}:test_calc.py")]),
        test.trim_end()
    );
    assert!(
        world
            .git(&["show", &format!("{branch}:calc.py")])
            .contains("a + b")
    );
    let refusals: Vec<Value> = run
        .events_of("tool_result")
        .into_iter()
        .filter(|r| r["is_error"] == true)
        .collect();
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(
        refusals[0]["output"]
            .as_str()
            .unwrap()
            .contains("test_calc.py not written: the task says not to change the tests")
    );
    let notices: Vec<String> = run
        .events_of("notice")
        .iter()
        .map(|n| n["message"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        notices
            .iter()
            .any(|n| n.contains("changed only tests, which the task forbids")),
        "{notices:?}"
    );
}
