//! Compaction end to end: near the window, on a context-length error from the model, and when
//! the compaction request itself fails.

use std::process::Command;

use serde_json::{Value, json};

use super::harness::{World, finish, tool};
use nightshift_testkit::ScriptedReply;

/// The summary prompt as the agent crate embeds it.
const TEMPLATE: &str = include_str!("../../../agent/prompts/compaction.md");
const SUMMARY: &str = "summary: read big1 to big3, all hold filler text; nothing changed yet";
const GOAL: &str = "Read the big files one by one";

/// A repository with big files: each read is about 600 tokens of tool output.
fn world(script: Vec<ScriptedReply>) -> World {
    let big = "0123456789abcdefghijklmnopqrstuvwxyz\n".repeat(65);
    let files: Vec<(String, String)> = (1..=5)
        .map(|i| (format!("big{i}.txt"), big.clone()))
        .collect();
    let mut all: Vec<(&str, &str)> = files
        .iter()
        .map(|(path, content)| (path.as_str(), content.as_str()))
        .collect();
    all.push(("AGENTS.md", "Be brief.\n"));
    World::new(&all).with_script(script)
}

fn read(i: u32) -> ScriptedReply {
    tool("read_file", json!({"path": format!("big{i}.txt")}))
}

fn messages(request: &Value) -> &Vec<Value> {
    request["messages"].as_array().unwrap()
}

fn content(message: &Value) -> &str {
    message["content"].as_str().unwrap_or_default()
}

/// The system prompt and the goal are intact, and the summary follows the goal.
fn assert_head_then_summary(request: &Value) {
    let messages = messages(request);
    assert_eq!(messages[0]["role"], "system");
    assert!(content(&messages[0]).contains("Be brief."), "{request}");
    assert_eq!(messages[1]["role"], "user");
    assert!(content(&messages[1]).contains(GOAL), "{request}");
    assert_eq!(messages[2]["role"], "user");
    assert!(
        content(&messages[2]).starts_with("Summary of the work so far"),
        "{}",
        messages[2]
    );
    assert!(content(&messages[2]).contains(SUMMARY), "{}", messages[2]);
}

/// The compaction request: the template, the goal and a transcript, and no tools.
fn assert_compaction_request(request: &Value) {
    assert!(
        request
            .get("tools")
            .is_none_or(|tools| tools.as_array().is_some_and(Vec::is_empty)),
        "no tools offered: {request}"
    );
    let messages = messages(request);
    assert_eq!(content(&messages[0]), TEMPLATE);
    let user = content(&messages[1]);
    assert!(user.contains(GOAL), "{user}");
    assert!(user.contains("<transcript>"), "{user}");
    assert!(
        user.contains("big1.txt"),
        "the older turns are in it: {user}"
    );
}

fn sha256(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("template");
    std::fs::write(&path, text).unwrap();
    let output = Command::new("sha256sum").arg(&path).output().unwrap();
    String::from_utf8(output.stdout).unwrap()[..64].to_owned()
}

#[test]
fn near_the_window_older_turns_are_compacted_into_a_summary_after_the_goal() {
    let world = world(vec![
        read(1),
        read(2),
        read(3),
        read(4),
        ScriptedReply::Text(SUMMARY.to_owned()),
        finish("read them all"),
    ]);
    let run = world.run(&["--context-window", "4000"], GOAL);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);

    let compactions = run.events_of("context_compacted");
    assert_eq!(compactions.len(), 1, "{compactions:?}");
    let event = &compactions[0];
    assert_eq!(event["trigger"], "near_window");
    assert!(
        event["tokens_after"].as_u64().unwrap() < event["tokens_before"].as_u64().unwrap(),
        "{event}"
    );
    assert!(
        event["messages_compacted"].as_u64().unwrap() >= 4,
        "{event}"
    );
    assert_eq!(event["template_hash"], sha256(TEMPLATE));
    assert!(
        run.events_of("context_trimmed").is_empty(),
        "compaction made trimming unnecessary"
    );

    let requests = world.server().requests();
    assert_eq!(requests.len(), 6);
    assert_compaction_request(&requests[4]);
    let next = &requests[5];
    assert_head_then_summary(next);
    // The most recent turn stays verbatim: the last read and its whole output.
    let rest = &messages(next)[3..];
    assert_eq!(rest[0]["role"], "assistant");
    assert!(rest[0].to_string().contains("big4.txt"), "{}", rest[0]);
    assert_eq!(rest[1]["role"], "tool");
    let lines = content(&rest[1])
        .matches("0123456789abcdefghijklmnopqrstuvwxyz")
        .count();
    assert_eq!(lines, 65, "the whole output: {}", rest[1]);
    assert_eq!(rest.len(), 2, "older turns are gone: {rest:?}");

    // The compaction request counts toward the task's tokens, not its steps.
    let result = run.result();
    assert_eq!(result["steps"], 5);
    let per_step: u64 = run
        .events_of("model_response")
        .iter()
        .map(|e| e["usage"]["input_tokens"].as_u64().unwrap())
        .sum();
    assert!(
        result["usage"]["input_tokens"].as_u64().unwrap() > per_step,
        "{result}"
    );
}

#[test]
fn a_context_length_error_compacts_the_conversation_and_retries_the_request() {
    let overflow = r#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9100 tokens.","type":"invalid_request_error","code":"context_length_exceeded"}}"#;
    let world = world(vec![
        read(1),
        read(2),
        read(3),
        ScriptedReply::Error {
            status: 400,
            body: overflow.to_owned(),
            retry_after: None,
        },
        ScriptedReply::Text(SUMMARY.to_owned()),
        finish("read them all"),
    ]);
    let run = world.run(&[], GOAL);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    let result = run.result();
    assert_eq!(result["status"], "succeeded", "{result}");
    assert_eq!(result["steps"], 4, "the retried request is the same step");

    let compactions = run.events_of("context_compacted");
    assert_eq!(compactions.len(), 1, "{compactions:?}");
    assert_eq!(compactions[0]["trigger"], "context_length_error");
    let retries = run.events_of("model_retry");
    assert_eq!(retries.len(), 1, "{retries:?}");
    assert_eq!(retries[0]["step"], 4);
    assert!(
        retries[0]["error"]
            .as_str()
            .unwrap()
            .contains("maximum context length"),
        "{}",
        retries[0]
    );

    let requests = world.server().requests();
    assert_eq!(requests.len(), 6, "refused, compaction, retry");
    assert_compaction_request(&requests[4]);
    let retry = &requests[5];
    assert_head_then_summary(retry);
    assert!(
        retry.to_string().len() < requests[3].to_string().len(),
        "the retried request is smaller than the refused one"
    );
}

#[test]
fn when_compaction_fails_the_conversation_is_trimmed_and_the_task_goes_on() {
    let world = world(vec![
        read(1),
        read(2),
        read(3),
        read(4),
        ScriptedReply::Error {
            status: 400,
            body: r#"{"error":{"message":"scripted refusal of the summary request"}}"#.to_owned(),
            retry_after: None,
        },
        read(5),
        finish("read them all"),
    ]);
    let run = world.run(&["--context-window", "4000"], GOAL);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    assert!(run.events_of("context_compacted").is_empty());
    assert_eq!(
        run.events_of("context_trimmed").len(),
        2,
        "trimmed instead, on this step and the next"
    );
    let notices = run.events_of("notice");
    assert!(
        notices.iter().any(|n| n["message"]
            .as_str()
            .unwrap()
            .contains("scripted refusal of the summary request")),
        "{notices:?}"
    );
    let requests = world.server().requests();
    assert_eq!(
        requests.len(),
        7,
        "after a failure, compaction is not tried again on the next step"
    );
    assert_compaction_request(&requests[4]);
    assert!(requests[6]["tools"].is_array(), "a step, not a compaction");
    let last = messages(&requests[6]);
    assert!(content(&last[1]).contains(GOAL));
    assert!(
        !content(&last[2]).starts_with("Summary of the work so far"),
        "no summary without a compaction"
    );
}

#[test]
fn a_model_that_keeps_refusing_the_conversation_fails_the_task_naming_context_window() {
    let overflow = r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 9000 tokens > 8192 maximum"}}"#;
    let refuse = || ScriptedReply::Error {
        status: 400,
        body: overflow.to_owned(),
        retry_after: None,
    };
    let world = world(vec![
        read(1),
        read(2),
        read(3),
        refuse(),
        ScriptedReply::Text(SUMMARY.to_owned()),
        refuse(),
        refuse(),
        finish("never reached"),
    ]);
    let run = world.run(&[], GOAL);
    assert_ne!(run.code(), 0, "stderr:\n{}", run.stderr);
    let result = run.result();
    assert_eq!(result["status"], "error", "{result}");
    let reason = result["reason"].as_str().unwrap();
    assert!(reason.contains("--context-window"), "{reason}");
    assert!(reason.contains("prompt is too long"), "{reason}");
    assert_eq!(run.events_of("context_compacted").len(), 1);
    assert!(
        !run.events_of("context_trimmed").is_empty(),
        "trimmed hard after compaction was not enough"
    );
    assert_eq!(world.server().requests().len(), 7, "two retries, no more");
    assert_eq!(world.server().remaining(), 1);
}
