//! The engine against a real GGUF model (`NIGHTSHIFT_TEST_MODEL`). Without it these tests
//! skip loudly on a developer machine and fail in CI (`CI` set), where a model is required.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nightshift_embedded::{
    EmbeddedClient, EmbeddedModel, EngineError, EngineOptions, GenerateOptions, StreamEvent,
    ToolCallMode,
};
use nightshift_model::{ModelClient, ModelError, ModelRequest};

use super::model_path;
use nightshift_protocol::{Message, ToolSpec};
use serde_json::Value;

fn options(max_output_tokens: u32) -> EngineOptions {
    EngineOptions {
        context_tokens: 4096,
        max_output_tokens,
        temperature: 0.0,
        ..EngineOptions::default()
    }
}

fn load(options: EngineOptions) -> Option<Arc<EmbeddedModel>> {
    let path = model_path()?;
    Some(EmbeddedModel::load(&path, options).expect("the test model loads"))
}

fn tools() -> Vec<ToolSpec> {
    nightshift_tools::tool_specs(Duration::from_secs(60))
}

fn system() -> Message {
    Message::system(
        "You are a coding agent working in a git repository. Use the tools to act; call finish \
         when the task is done.",
    )
}

/// Checks `arguments` against one of our tool schemas: an object with every required
/// property, no unknown ones, each of the declared type.
fn assert_matches_schema(name: &str, arguments: &str) {
    let spec = tools()
        .into_iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("the model called an unknown tool `{name}`"));
    let args: Value = serde_json::from_str(arguments)
        .unwrap_or_else(|e| panic!("arguments of {name} do not parse ({e}): {arguments}"));
    let args = args.as_object().expect("arguments are an object");
    let properties = spec.parameters["properties"].as_object().unwrap();
    for required in spec.parameters["required"].as_array().unwrap() {
        assert!(
            args.contains_key(required.as_str().unwrap()),
            "{name} call lacks {required}: {arguments}"
        );
    }
    for (key, value) in args {
        let declared = properties
            .get(key)
            .unwrap_or_else(|| panic!("{name} call has unknown property {key}: {arguments}"));
        let ok = match declared["type"].as_str().unwrap() {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "boolean" => value.is_boolean(),
            other => panic!("schema type {other} not covered by this test"),
        };
        assert!(ok, "{name}.{key} has the wrong type: {arguments}");
    }
}

#[test]
fn a_tool_call_parses_and_matches_its_schema_and_the_next_turn_reuses_the_cache() {
    let Some(model) = load(options(160)) else {
        return;
    };
    let mut request = ModelRequest {
        messages: vec![
            system(),
            Message::user("Show me the contents of the file src/main.rs."),
        ],
        tools: tools(),
    };
    let first = model
        .generate(request.clone(), GenerateOptions::default(), &mut |_| {})
        .unwrap();
    let message = &first.response.message;
    assert_eq!(
        first.response.finish_reason.as_deref(),
        Some("tool_calls"),
        "{message:?}"
    );
    assert!(!message.tool_calls.is_empty());
    for call in &message.tool_calls {
        assert_matches_schema(&call.name, &call.arguments);
    }
    let ids: std::collections::HashSet<_> = message.tool_calls.iter().map(|c| &c.id).collect();
    assert_eq!(ids.len(), message.tool_calls.len(), "call ids are unique");
    assert_eq!(
        first.stats.reused_tokens, 0,
        "nothing to reuse on a fresh model"
    );
    assert_eq!(first.stats.prefilled_tokens, first.stats.prompt_tokens);
    assert_eq!(
        first.response.usage.input_tokens as usize,
        first.stats.prompt_tokens
    );
    assert_eq!(
        first.response.usage.output_tokens as usize,
        first.stats.completion_tokens
    );

    // The second turn: the answer and a tool result are appended. Only what follows the
    // common prefix (about the tool result) is computed.
    request.messages.push(message.clone());
    for call in &message.tool_calls {
        request.messages.push(Message::tool(
            &call.id,
            "fn main() {\n    println!(\"hello\");\n}\n",
        ));
    }
    let second = model
        .generate(request, GenerateOptions::default(), &mut |_| {})
        .unwrap();
    let stats = second.stats;
    eprintln!(
        "second turn: {} prompt tokens, {} reused, {} prefilled",
        stats.prompt_tokens, stats.reused_tokens, stats.prefilled_tokens
    );
    assert!(stats.prefilled_tokens < stats.prompt_tokens);
    assert!(
        stats.reused_tokens >= first.stats.prompt_tokens,
        "the whole first prompt is reused: {stats:?} after {:?}",
        first.stats
    );
    assert!(stats.prefilled_tokens < 80, "{stats:?}");
    assert_eq!(
        second.response.usage.cached_tokens as usize,
        stats.reused_tokens
    );
    for call in &second.response.message.tool_calls {
        assert_matches_schema(&call.name, &call.arguments);
        assert!(!ids.contains(&call.id), "ids stay unique across turns");
    }
}

#[test]
fn a_plain_answer_streams_and_stops() {
    let Some(model) = load(options(48)) else {
        return;
    };
    let request = ModelRequest {
        messages: vec![Message::user(
            "What is 12 + 30? Answer with the number only.",
        )],
        tools: Vec::new(),
    };
    let mut streamed = String::new();
    let completion = model
        .generate(request, GenerateOptions::default(), &mut |text| {
            streamed.push_str(text)
        })
        .unwrap();
    let response = completion.response;
    assert_eq!(response.finish_reason.as_deref(), Some("stop"));
    assert!(response.message.tool_calls.is_empty());
    assert!(
        response.message.content.contains("42"),
        "{:?}",
        response.message
    );
    assert_eq!(streamed.trim(), response.message.content);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_mode_leaves_plain_answers_possible_with_tools_offered() {
    let Some(path) = model_path() else {
        return;
    };
    let model = EmbeddedModel::load_async(
        &path,
        EngineOptions {
            tool_calls: ToolCallMode::Lazy,
            ..options(48)
        },
    )
    .await
    .unwrap();
    let client = EmbeddedClient::new(model);
    let request = ModelRequest {
        messages: vec![
            system(),
            Message::user("Say hello in French, one word, no tools."),
        ],
        tools: tools(),
    };
    let response = client.complete(&request, &|_| {}).await.unwrap();
    assert_eq!(
        response.finish_reason.as_deref(),
        Some("stop"),
        "{response:?}"
    );
    assert!(response.message.tool_calls.is_empty());
    assert!(!response.message.content.is_empty());
}

/// The agent asks the same request again when it goes back to try afresh; a greedy model
/// would give the answer that did not do, word for word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_asked_again_gets_a_sampled_answer() {
    let Some(path) = model_path() else {
        return;
    };
    let model = EmbeddedModel::load_async(&path, options(32)).await.unwrap();
    let client = EmbeddedClient::new(model);
    let request = ModelRequest {
        messages: vec![Message::user(
            "Write one sentence about the sea, in your own words.",
        )],
        tools: Vec::new(),
    };
    let mut answers = Vec::new();
    for _ in 0..3 {
        let response = client.complete(&request, &|_| {}).await.unwrap();
        answers.push(response.message.content);
    }
    assert!(
        answers[1] != answers[0] || answers[2] != answers[0],
        "asked three times, the same answer each time: {answers:?}"
    );
    // A different request is a first ask again: greedy, so a new client agrees with it.
    let other = ModelRequest {
        messages: vec![Message::user("Name one colour of the sea, one word.")],
        tools: Vec::new(),
    };
    let first = client.complete(&other, &|_| {}).await.unwrap();
    let fresh = EmbeddedClient::new(Arc::clone(client.model()));
    let again = fresh.complete(&other, &|_| {}).await.unwrap();
    assert_eq!(first.message.content, again.message.content);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_larger_than_the_context_is_a_context_length_error() {
    let Some(path) = model_path() else {
        return;
    };
    let small = EngineOptions {
        context_tokens: 512,
        ..options(64)
    };
    let model = EmbeddedModel::load_async(&path, small).await.unwrap();
    let client = EmbeddedClient::new(model);
    let request = ModelRequest {
        messages: vec![Message::user("word ".repeat(600))],
        tools: Vec::new(),
    };
    let error: ModelError = client.complete(&request, &|_| {}).await.unwrap_err();
    assert!(error.is_context_length(), "{error}");
    assert!(!error.is_retryable());
    assert!(error.to_string().contains("hint:"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_stops_generation_promptly_and_the_model_stays_usable() {
    let Some(path) = model_path() else {
        return;
    };
    let model = EmbeddedModel::load_async(&path, options(2000))
        .await
        .unwrap();
    let long = ModelRequest {
        messages: vec![Message::user("Count from 1 to 500, one number per line.")],
        tools: Vec::new(),
    };
    let mut stream = model.stream(long.clone(), GenerateOptions::default());
    // Wait for the answer to start, then cancel.
    match stream.next().await {
        Some(StreamEvent::Text(_)) => {}
        Some(StreamEvent::Done(result)) => panic!("ended before cancelling: {result:?}"),
        None => panic!("stream closed"),
    }
    let cancelled_at = Instant::now();
    stream.cancel();
    let result = loop {
        match stream.next().await {
            Some(StreamEvent::Text(_)) => {}
            Some(StreamEvent::Done(result)) => break *result,
            None => panic!("stream closed without a result"),
        }
    };
    assert!(matches!(result, Err(EngineError::Cancelled)), "{result:?}");
    // One token takes ~50 ms on two idle cores; the bound leaves room for a busy CI machine
    // while staying far below the ~100 s the whole answer would take.
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(10),
        "{:?}",
        cancelled_at.elapsed()
    );

    // Dropping a ModelClient future cancels too; the next request then runs right away.
    let client = EmbeddedClient::new(Arc::clone(&model));
    let dropped =
        tokio::time::timeout(Duration::from_millis(300), client.complete(&long, &|_| {})).await;
    assert!(
        dropped.is_err(),
        "the long request was still running and got dropped"
    );
    let quick = ModelRequest {
        messages: vec![Message::user("Reply with the word ok.")],
        tools: Vec::new(),
    };
    let started = Instant::now();
    let response = client.complete(&quick, &|_| {}).await.unwrap();
    assert!(!response.message.content.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the dropped generation kept the worker busy: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_missing_model_file_says_what_to_do() {
    let error = EmbeddedModel::load(
        std::path::Path::new("/nonexistent/model.gguf"),
        EngineOptions::default(),
    )
    .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("/nonexistent/model.gguf"), "{text}");
    assert!(text.contains("hint:"), "{text}");
}
