//! The Anthropic client end to end against the scripted server's `/v1/messages`.

use std::time::{Duration, Instant};

use nightshift_model::{AnthropicClient, ModelRequest, ProviderConfig};
use nightshift_protocol::{Message, ToolCall};
use nightshift_testkit::{ScriptedReply, ScriptedServer, rate_limited, text, text_and_tools};
use serde_json::{Value, json};

use super::{complete_with, config_for, header, tool_spec, user_request};

fn client(config: ProviderConfig) -> AnthropicClient {
    AnthropicClient::new(config).unwrap()
}

fn event(value: Value) -> String {
    format!(
        "event: {}\ndata: {value}\n\n",
        value["type"].as_str().unwrap()
    )
}

#[tokio::test]
async fn streamed_and_whole_answers_with_tool_calls_are_parsed() {
    let calls = [
        (
            "write_file",
            json!({"path": "src/lib.rs", "contents": "pub fn a() {}\n"}),
        ),
        ("shell", json!({"command": "cargo test -q"})),
    ];
    for stream in [true, false] {
        let server =
            ScriptedServer::start(vec![text("Hello."), text_and_tools("Writing.", &calls)]);
        let client = client(ProviderConfig {
            stream,
            ..config_for(&server)
        });
        assert_eq!(client.endpoint(), format!("{}/messages", server.base_url()));
        let (result, notes) = complete_with(&client, &user_request("hi")).await;
        let response = result.unwrap();
        assert!(notes.is_empty());
        assert_eq!(response.message.content, "Hello.");
        assert_eq!(response.finish_reason.as_deref(), Some("stop"));
        assert!(response.usage.input_tokens > 0 && response.usage.output_tokens > 0);

        let (result, _) = complete_with(&client, &user_request("go")).await;
        let response = result.unwrap();
        assert_eq!(response.message.content, "Writing.");
        assert_eq!(response.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(response.message.tool_calls.len(), 2);
        for (index, (call, (name, args))) in
            response.message.tool_calls.iter().zip(&calls).enumerate()
        {
            assert_eq!(call.id, format!("call_{}", index + 1));
            assert_eq!(call.name, *name);
            assert_eq!(
                &serde_json::from_str::<Value>(&call.arguments).unwrap(),
                args
            );
        }
        assert_eq!(server.request_paths(), ["/v1/messages", "/v1/messages"]);
    }
}

#[tokio::test]
async fn usage_counts_cache_reads_and_writes_as_input() {
    let body = [
        event(json!({"type": "message_start", "message": {"usage": {"input_tokens": 34, "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 200, "output_tokens": 1}}})),
        event(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
        event(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Done"}})),
        event(json!({"type": "content_block_stop", "index": 0})),
        event(json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 56}})),
        event(json!({"type": "message_stop"})),
    ]
    .concat();
    let server = ScriptedServer::start(vec![ScriptedReply::RawSse(body)]);
    let (result, _) = complete_with(&client(config_for(&server)), &user_request("hi")).await;
    let response = result.unwrap();
    assert_eq!(response.finish_reason.as_deref(), Some("length"));
    let usage = response.usage;
    assert_eq!(
        (usage.input_tokens, usage.output_tokens, usage.cached_tokens),
        (1234, 56, 1000)
    );
}

#[tokio::test]
async fn a_429_with_retry_after_then_success_is_retried() {
    let server = ScriptedServer::start(vec![rate_limited(1), text("finally")]);
    let started = Instant::now();
    let (result, notes) = complete_with(&client(config_for(&server)), &user_request("hi")).await;
    assert_eq!(result.unwrap().message.content, "finally");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].wait, Duration::from_secs(1));
}

#[tokio::test]
async fn a_dropped_stream_then_success_is_retried() {
    let dropped = [
        event(json!({"type": "message_start", "message": {"usage": {"input_tokens": 3}}})),
        event(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
        event(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "half an"}})),
    ]
    .concat();
    let server = ScriptedServer::start(vec![ScriptedReply::RawSse(dropped), text("whole answer")]);
    let (result, notes) = complete_with(&client(config_for(&server)), &user_request("hi")).await;
    assert_eq!(result.unwrap().message.content, "whole answer");
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].error.contains("message_stop"),
        "{}",
        notes[0].error
    );
}

#[tokio::test]
async fn the_request_has_the_messages_shape_with_cache_breakpoints() {
    let server = ScriptedServer::start(vec![text("ok")]);
    let config = ProviderConfig {
        api_key: Some("sk-ant-test".into()),
        ..config_for(&server)
    };
    let call = |id: &str, path: &str| ToolCall {
        id: id.into(),
        name: "read".into(),
        arguments: json!({"path": path}).to_string(),
    };
    let request = ModelRequest {
        messages: vec![
            Message::system("You are a coding agent."),
            Message::user("Read both files."),
            Message::assistant(
                "Reading.",
                vec![call("toolu_1", "a.rs"), call("toolu_2", "b.rs")],
            ),
            Message::tool("toolu_1", "fn a() {}"),
            Message::tool("toolu_2", "fn b() {}"),
            Message::system("Checks failed: fix them."),
        ],
        tools: vec![tool_spec("read"), tool_spec("write")],
    };
    complete_with(&client(config), &request).await.0.unwrap();
    let body = &server.requests()[0];
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["system"],
        json!([{"type": "text", "text": "You are a coding agent.", "cache_control": {"type": "ephemeral"}}])
    );
    let schema = json!({"type": "object", "properties": {"path": {"type": "string"}}});
    assert_eq!(
        body["tools"],
        json!([
            {"name": "read", "description": "The read tool.", "input_schema": schema},
            {"name": "write", "description": "The write tool.", "input_schema": schema, "cache_control": {"type": "ephemeral"}},
        ])
    );
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Read both files."}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Reading."},
                {"type": "tool_use", "id": "toolu_1", "name": "read", "input": {"path": "a.rs"}},
                {"type": "tool_use", "id": "toolu_2", "name": "read", "input": {"path": "b.rs"}},
            ]},
            // Both results and the later note in one user turn; the conversation breakpoint
            // on its last block.
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "fn a() {}"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "fn b() {}"},
                {"type": "text", "text": "Checks failed: fix them.", "cache_control": {"type": "ephemeral"}},
            ]},
        ])
    );
    let headers = &server.request_headers()[0];
    assert_eq!(header(headers, "x-api-key"), Some("sk-ant-test"));
    assert_eq!(header(headers, "anthropic-version"), Some("2023-06-01"));
    assert_eq!(header(headers, "authorization"), None);
}

#[tokio::test]
async fn max_output_tokens_and_a_request_without_tools_or_system() {
    let server = ScriptedServer::start(vec![text("ok")]);
    let config = ProviderConfig {
        max_output_tokens: Some(100),
        stream: false,
        ..config_for(&server)
    };
    let request = ModelRequest {
        messages: vec![Message::user("hi")],
        tools: Vec::new(),
    };
    complete_with(&client(config), &request).await.0.unwrap();
    let body = &server.requests()[0];
    assert_eq!(body["max_tokens"], 100);
    assert!(
        body.get("system").is_none() && body.get("tools").is_none(),
        "{body}"
    );
    assert_eq!(header(&server.request_headers()[0], "x-api-key"), None);
}
