//! Answers come back whole, streamed or not, and requests go out in the right shape.

use std::time::Duration;

use nightshift_model::{ChatCompletionsClient, ModelClient, ModelRequest, ProviderConfig};
use nightshift_protocol::{Message, Role, ToolCall, ToolSpec};
use nightshift_testkit::{ScriptedReply, ScriptedServer, sse_data, text, text_and_tools, tool};
use serde_json::{Value, json};

use super::{complete, config_for, user_request};

#[tokio::test]
async fn streamed_text_reply_is_accumulated() {
    let server = ScriptedServer::start(vec![text("Hello there, how can I help you today?")]);
    let (result, notes) = complete(config_for(&server), &user_request("hi")).await;
    let response = result.unwrap();
    assert!(notes.is_empty());
    assert_eq!(response.message.role, Role::Assistant);
    assert_eq!(
        response.message.content,
        "Hello there, how can I help you today?"
    );
    assert!(response.message.tool_calls.is_empty());
    assert_eq!(response.finish_reason.as_deref(), Some("stop"));
    assert!(response.usage.input_tokens > 0 && response.usage.output_tokens > 0);

    let request = &server.requests()[0];
    assert_eq!(request["stream"], true);
    assert_eq!(request["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn non_streamed_text_reply_is_parsed() {
    let server = ScriptedServer::start(vec![text("Plain answer.")]);
    let config = ProviderConfig {
        stream: false,
        ..config_for(&server)
    };
    let (result, _) = complete(config, &user_request("hi")).await;
    let response = result.unwrap();
    assert_eq!(response.message.content, "Plain answer.");
    assert_eq!(response.finish_reason.as_deref(), Some("stop"));
    assert!(response.usage.output_tokens > 0);

    let request = &server.requests()[0];
    assert_eq!(request["stream"], false);
    assert!(request.get("stream_options").is_none(), "{request}");
}

fn expected_calls() -> Vec<(&'static str, Value)> {
    vec![
        (
            "write_file",
            json!({"path": "src/lib.rs", "contents": "pub fn answer() -> u32 {\n    42\n}\n"}),
        ),
        (
            "shell",
            json!({"command": "cargo test -q", "timeout_secs": 120}),
        ),
    ]
}

async fn tool_calls_round_trip(stream: bool) {
    let calls = expected_calls();
    let server = ScriptedServer::start(vec![text_and_tools("I'll write it, then test.", &calls)]);
    let config = ProviderConfig {
        stream,
        ..config_for(&server)
    };
    let (result, _) = complete(config, &user_request("make answer() return 42")).await;
    let response = result.unwrap();
    assert_eq!(response.message.content, "I'll write it, then test.");
    assert_eq!(response.finish_reason.as_deref(), Some("tool_calls"));
    let got = &response.message.tool_calls;
    assert_eq!(got.len(), 2, "{got:?}");
    for (index, (call, (name, args))) in got.iter().zip(&calls).enumerate() {
        assert_eq!(call.id, format!("call_{}", index + 1));
        assert_eq!(call.name, *name);
        let parsed: Value = serde_json::from_str(&call.arguments).unwrap();
        assert_eq!(&parsed, args);
    }
}

#[tokio::test]
async fn streamed_tool_calls_with_arguments_split_across_chunks_are_reassembled() {
    tool_calls_round_trip(true).await;
}

#[tokio::test]
async fn non_streamed_tool_calls_are_parsed() {
    tool_calls_round_trip(false).await;
}

#[tokio::test]
async fn usage_comes_from_the_final_chunk_including_cached_tokens() {
    let chunk = |delta: Value, finish: Value| {
        sse_data(&json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}))
    };
    let body = [
        chunk(json!({"role": "assistant", "content": "Done"}), Value::Null),
        chunk(json!({}), json!("stop")),
        sse_data(&json!({"choices": [], "usage": {
            "prompt_tokens": 1234, "completion_tokens": 56, "total_tokens": 1290,
            "prompt_tokens_details": {"cached_tokens": 1000},
        }})),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    let server = ScriptedServer::start(vec![ScriptedReply::RawSse(body)]);
    let (result, _) = complete(config_for(&server), &user_request("hi")).await;
    let usage = result.unwrap().usage;
    assert_eq!(
        (usage.input_tokens, usage.output_tokens, usage.cached_tokens),
        (1234, 56, 1000)
    );
}

#[tokio::test]
async fn lines_split_across_network_reads_mid_character_are_reassembled() {
    let body = [
        sse_data(&json!({"choices": [{"index": 0, "delta": {"content": "caf\u{e9} \u{2713} ok"}, "finish_reason": null}]})),
        sse_data(&json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    let bytes = body.as_bytes();
    // Cut inside the two-byte "é", inside the three-byte "✓", and between the two newlines
    // that end the first event; the pauses make each piece a separate network read.
    let cuts = [
        body.find('\u{e9}').unwrap() + 1,
        body.find('\u{2713}').unwrap() + 2,
        body.find("\n\n").unwrap() + 1,
    ];
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        chunks.push((Duration::from_millis(30), bytes[start..cut].to_vec()));
        start = cut;
    }
    let server = ScriptedServer::start(vec![ScriptedReply::RawSseChunks(chunks)]);
    let (result, notes) = complete(config_for(&server), &user_request("hi")).await;
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(result.unwrap().message.content, "caf\u{e9} \u{2713} ok");
}

#[tokio::test]
async fn request_body_has_the_chat_completions_shape() {
    let server = ScriptedServer::start(vec![text("ok")]);
    let config = ProviderConfig {
        api_key: Some("sk-test-key".into()),
        max_output_tokens: Some(512),
        temperature: Some(0.5),
        ..config_for(&server)
    };
    let request = ModelRequest {
        messages: vec![
            Message::system("You are a coding agent."),
            Message::user("List the files."),
            Message::assistant(
                "",
                vec![ToolCall {
                    id: "call_9".into(),
                    name: "list".into(),
                    arguments: r#"{"path":"."}"#.into(),
                }],
            ),
            Message::tool("call_9", "Cargo.toml\nsrc/"),
        ],
        tools: vec![ToolSpec {
            name: "list".into(),
            description: "List a directory.".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        }],
    };
    let client = ChatCompletionsClient::new(config).unwrap();
    assert_eq!(client.model_name(), "test-model");
    client.complete(&request, &|_| {}).await.unwrap();

    let body = &server.requests()[0];
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["max_tokens"], 512);
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You are a coding agent."},
            {"role": "user", "content": "List the files."},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_9", "type": "function", "function": {"name": "list", "arguments": "{\"path\":\".\"}"}},
            ]},
            {"role": "tool", "tool_call_id": "call_9", "content": "Cargo.toml\nsrc/"},
        ])
    );
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {
            "name": "list",
            "description": "List a directory.",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
        }}])
    );
    let headers = &server.request_headers()[0];
    let header = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    assert_eq!(header("authorization"), Some("Bearer sk-test-key"));
    assert_eq!(header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn tools_are_omitted_when_none_are_offered_and_no_key_sends_no_authorization() {
    let server = ScriptedServer::start(vec![tool("finish", json!({"summary": "done"}))]);
    let (result, _) = complete(config_for(&server), &user_request("hi")).await;
    assert_eq!(result.unwrap().message.tool_calls[0].name, "finish");
    assert!(server.requests()[0].get("tools").is_none());
    assert!(
        !server.request_headers()[0]
            .iter()
            .any(|(name, _)| name == "authorization")
    );
}
