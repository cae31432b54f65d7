//! Provider profiles: a task runs end to end against each wire format, the cost shown matches
//! the profile's prices, `--max-cost` stops a task, and `models check` tells what works.

use serde_json::{Value, json};

use super::harness::{Run, World, finish, run, tool};
use nightshift_testkit::ScriptedReply;

const PRICES: (f64, f64, f64) = (3.0, 15.0, 0.3);

fn world(script: Vec<ScriptedReply>, kind: &str) -> World {
    world_with(script, kind, "")
}

fn world_with(script: Vec<ScriptedReply>, kind: &str, extra: &str) -> World {
    let world = World::new(&[("a.txt", "a\n")]).with_script(script);
    std::fs::create_dir_all(world.home()).unwrap();
    let config = format!(
        "[profiles.work]\nkind = \"{kind}\"\nbase_url = \"{}\"\nmodel = \"work-model\"\n\
         prices = {{ input = {}, output = {}, cached_input = {} }}\n\
         headers = {{ \"X-Team\" = \"nightshift\" }}\n{extra}",
        world.server().base_url(),
        PRICES.0,
        PRICES.1,
        PRICES.2
    );
    std::fs::write(world.home().join("config.toml"), config).unwrap();
    world
}

fn run_profile(world: &World, extra: &[&str]) -> Run {
    let mut command = world.command();
    command
        .env_remove("NIGHTSHIFT_BASE_URL")
        .env_remove("NIGHTSHIFT_MODEL");
    command
        .args(["run", "--json", "--model", "work", "--repo"])
        .arg(&world.repo);
    command.args(extra).arg("Write b.txt");
    run(command)
}

fn expected_cost(usage: &Value) -> f64 {
    let input = usage["input_tokens"].as_f64().unwrap();
    let cached = usage["cached_tokens"].as_f64().unwrap_or(0.0);
    let output = usage["output_tokens"].as_f64().unwrap();
    ((input - cached) * PRICES.0 + cached * PRICES.2 + output * PRICES.1) / 1e6
}

fn task_through(kind: &str, path: &str) {
    let world = world(
        vec![
            tool("write_file", json!({"path": "b.txt", "content": "b\n"})),
            finish("wrote b"),
        ],
        kind,
    );
    let run = run_profile(&world, &["--check", "test -f b.txt"]);
    assert_eq!(run.code(), 0, "{kind}: {}", run.stderr);
    assert_eq!(
        world.server().request_paths(),
        vec![path.to_owned(); 2],
        "{kind}"
    );
    assert_eq!(world.server().requests()[0]["model"], "work-model");
    let headers = &world.server().request_headers()[0];
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "x-team" && v == "nightshift"),
        "{headers:?}"
    );

    // Every request's cost is its usage at the profile's prices; the task's is their sum.
    let mut total = 0.0;
    for response in run.events_of("model_response") {
        let cost = response["cost_usd"].as_f64().expect("cost per request");
        assert!(
            (cost - expected_cost(&response["usage"])).abs() < 1e-12,
            "{kind}: {response}"
        );
        total += cost;
    }
    let result = run.result();
    assert!(total > 0.0);
    assert!(
        (result["cost_usd"].as_f64().unwrap() - total).abs() < 1e-12,
        "{kind}: {result}"
    );
    let id = result["task_id"].as_str().unwrap();
    let show = world.nightshift(&["show", id]);
    assert!(
        show.stdout.contains(&format!("cost ${total:.4}")),
        "{}",
        show.stdout
    );
}

#[test]
fn a_task_runs_end_to_end_through_chat_completions() {
    task_through("chat", "/v1/chat/completions");
}

#[test]
fn a_task_runs_end_to_end_through_the_responses_api() {
    task_through("responses", "/v1/responses");
}

#[test]
fn a_task_runs_end_to_end_through_anthropic_messages() {
    task_through("anthropic", "/v1/messages");
}

#[test]
fn the_cost_budget_is_enforced_before_each_request() {
    let script = (0..5).map(|_| tool("list_files", json!({}))).collect();
    let world = world(script, "chat");
    let run = run_profile(&world, &["--max-cost", "0.000001"]);
    assert_eq!(run.code(), 3, "{}", run.stderr);
    let result = run.result();
    assert_eq!(result["status"], "budget_exhausted");
    assert!(
        result["reason"].as_str().unwrap().contains("--max-cost"),
        "{result}"
    );
    assert_eq!(world.server().requests().len(), 1);
}

#[test]
fn models_check_reports_what_works() {
    let world = world(
        vec![
            ScriptedReply::Text("ok".into()),
            ScriptedReply::Text("ok".into()),
            tool("report", json!({"word": "ok"})),
        ],
        "responses",
    );
    let check = world.nightshift(&["models", "check", "work"]);
    assert_eq!(check.code(), 0, "{}\n{}", check.stdout, check.stderr);
    assert!(check.stdout.contains("✓ reachable"), "{}", check.stdout);
    assert!(check.stdout.contains("✓ streaming"), "{}", check.stdout);
    assert!(check.stdout.contains("✓ tool calling"), "{}", check.stdout);
    let requests = world.server().requests();
    assert_eq!(requests[0]["stream"], false);
    assert_eq!(requests[1]["stream"], true);
    let ls = world.nightshift(&["models", "ls"]);
    // (The harness sets NIGHTSHIFT_MODEL, which overrides the profile's model name.)
    assert!(ls.stdout.contains("work  responses "), "{}", ls.stdout);
    assert!(
        ls.stdout.contains("$3/$0.3/$15 per M in/cached/out"),
        "{}",
        ls.stdout
    );
}

#[test]
fn models_check_says_when_tool_calling_does_not_work() {
    let world = world(
        vec![
            ScriptedReply::Text("ok".into()),
            ScriptedReply::Text("ok".into()),
            ScriptedReply::Text("I would call report now.".into()),
        ],
        "chat",
    );
    let check = world.nightshift(&["models", "check", "work"]);
    assert_eq!(check.code(), 1, "{}", check.stdout);
    assert!(check.stdout.contains("✗ tool calling"), "{}", check.stdout);
    assert!(check.stdout.contains("text_tool_calls"), "{}", check.stdout);
}

#[test]
fn a_profile_that_does_not_exist_or_a_kind_that_is_unknown_is_refused() {
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![]);
    std::fs::create_dir_all(world.home()).unwrap();
    std::fs::write(
        world.home().join("config.toml"),
        "[model]\nprofile = \"missing\"\n[profiles.other]\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n",
    )
    .unwrap();
    let missing = world.run(&[], "Anything");
    assert_eq!(missing.code(), 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("names no profile"),
        "{}",
        missing.stderr
    );
    assert!(missing.stderr.contains("other"), "{}", missing.stderr);

    std::fs::write(
        world.home().join("config.toml"),
        "[profiles.odd]\nkind = \"gemini\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n",
    )
    .unwrap();
    let odd = world.run(&["--model", "odd"], "Anything");
    assert_eq!(odd.code(), 2, "{}", odd.stderr);
    assert!(
        odd.stderr.contains("provider kind `gemini` is not known"),
        "{}",
        odd.stderr
    );
}

#[test]
fn a_task_runs_end_to_end_against_a_local_server_without_native_tool_calls() {
    // Such a server answers in text; the calls are written Hermes-style or as fenced JSON.
    let write = r#"I will write the file.
<tool_call>{"name": "write_file", "arguments": {"path": "b.txt", "content": "b\n"}}</tool_call>"#;
    let done =
        "Done.\n```json\n{\"name\": \"finish\", \"arguments\": {\"summary\": \"wrote b\"}}\n```";
    let world = world_with(
        vec![
            ScriptedReply::Text(write.into()),
            ScriptedReply::Text(done.into()),
        ],
        "chat",
        "text_tool_calls = true\n",
    );
    let run = run_profile(&world, &["--check", "test -f b.txt"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.result()["summary"], "wrote b");
    let requests = world.server().requests();
    assert!(
        requests[0].get("tools").is_none(),
        "no native tools are sent"
    );
    let system = requests[0]["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("write_file"),
        "the tools are described in the prompt"
    );
}

#[test]
fn rate_limits_are_waited_out_with_every_wire_format() {
    for kind in ["responses", "anthropic"] {
        let world = world(
            vec![
                nightshift_testkit::rate_limited(1),
                tool("write_file", json!({"path": "b.txt", "content": "b\n"})),
                finish("wrote b"),
            ],
            kind,
        );
        let started = std::time::Instant::now();
        let run = run_profile(&world, &[]);
        assert_eq!(run.code(), 0, "{kind}: {}", run.stderr);
        let retries = run.events_of("model_retry");
        assert_eq!(retries.len(), 1, "{kind}");
        assert_eq!(
            retries[0]["wait_ms"], 1000,
            "{kind}: Retry-After is honoured"
        );
        assert!(
            started.elapsed() >= std::time::Duration::from_secs(1),
            "{kind}"
        );
    }
}
