//! The Responses client end to end against the scripted server's `/v1/responses`.

use std::time::{Duration, Instant};

use nightshift_model::{ModelClient, ModelRequest, ProviderConfig, ResponsesClient};
use nightshift_protocol::{Message, ToolCall};
use nightshift_testkit::{
    ScriptedReply, ScriptedServer, error, rate_limited, text, text_and_tools,
};
use serde_json::{Value, json};

use super::{complete_with, config_for, header, tool_spec, user_request};

fn client(config: ProviderConfig) -> ResponsesClient {
    ResponsesClient::new(config).unwrap()
}

/// One SSE event in the Responses style: `event:` line with the type, then the data.
fn event(value: Value) -> String {
    format!(
        "event: {}\ndata: {value}\n\n",
        value["type"].as_str().unwrap()
    )
}

fn completed(output: Value, usage: Value) -> String {
    event(json!({"type": "response.completed",
        "response": {"id": "resp_x", "status": "completed", "output": output, "usage": usage}}))
}

#[tokio::test]
async fn streamed_and_whole_text_answers_are_parsed() {
    for stream in [true, false] {
        let server = ScriptedServer::start(vec![text("Hello from the Responses API.")]);
        let client = client(ProviderConfig {
            stream,
            ..config_for(&server)
        });
        assert_eq!(
            client.endpoint(),
            format!("{}/responses", server.base_url())
        );
        let (result, notes) = complete_with(&client, &user_request("hi")).await;
        let response = result.unwrap();
        assert!(notes.is_empty());
        assert_eq!(response.message.content, "Hello from the Responses API.");
        assert_eq!(response.finish_reason.as_deref(), Some("stop"));
        assert!(response.usage.input_tokens > 0 && response.usage.output_tokens > 0);
        assert_eq!(server.request_paths(), ["/v1/responses"]);
        assert_eq!(server.requests()[0]["stream"], stream);
    }
}

#[tokio::test]
async fn tool_calls_with_arguments_split_across_chunks_are_reassembled() {
    let calls = [
        (
            "write_file",
            json!({"path": "src/lib.rs", "contents": "pub fn a() {}\n"}),
        ),
        ("shell", json!({"command": "cargo test -q"})),
    ];
    for stream in [true, false] {
        let server = ScriptedServer::start(vec![text_and_tools("Writing, then testing.", &calls)]);
        let client = client(ProviderConfig {
            stream,
            ..config_for(&server)
        });
        let (result, _) = complete_with(&client, &user_request("go")).await;
        let response = result.unwrap();
        assert_eq!(response.message.content, "Writing, then testing.");
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
    }
}

#[tokio::test]
async fn usage_includes_cached_tokens() {
    let body = [
        event(json!({"type": "response.output_text.delta", "output_index": 0, "item_id": "m", "delta": "Done"})),
        completed(
            json!([{"type": "message", "content": [{"type": "output_text", "text": "Done"}]}]),
            json!({"input_tokens": 1234, "input_tokens_details": {"cached_tokens": 1000}, "output_tokens": 56}),
        ),
    ]
    .concat();
    let server = ScriptedServer::start(vec![ScriptedReply::RawSse(body)]);
    let (result, _) = complete_with(&client(config_for(&server)), &user_request("hi")).await;
    let usage = result.unwrap().usage;
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
    assert!(notes[0].error.contains("429"), "{}", notes[0].error);
}

#[tokio::test]
async fn a_dropped_stream_then_success_is_retried() {
    let dropped = event(
        json!({"type": "response.output_text.delta", "output_index": 0, "delta": "half an ans"}),
    );
    let server = ScriptedServer::start(vec![ScriptedReply::RawSse(dropped), text("whole answer")]);
    let (result, notes) = complete_with(&client(config_for(&server)), &user_request("hi")).await;
    assert_eq!(result.unwrap().message.content, "whole answer");
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].error.contains("response.completed"),
        "{}",
        notes[0].error
    );
    assert_eq!(server.requests()[0], server.requests()[1]);
}

#[tokio::test]
async fn the_request_has_the_responses_shape() {
    let server = ScriptedServer::start(vec![text("ok")]);
    let config = ProviderConfig {
        api_key: Some("sk-test".into()),
        max_output_tokens: Some(512),
        ..config_for(&server)
    };
    let request = ModelRequest {
        messages: vec![
            Message::system("You are a coding agent."),
            Message::user("List the files."),
            Message::assistant(
                "Listing.",
                vec![ToolCall {
                    id: "call_9".into(),
                    name: "list".into(),
                    arguments: r#"{"path":"."}"#.into(),
                }],
            ),
            Message::tool("call_9", "Cargo.toml\nsrc/"),
            Message::system("Two steps left."),
        ],
        tools: vec![tool_spec("list")],
    };
    complete_with(&client(config), &request).await.0.unwrap();
    let body = &server.requests()[0];
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["store"], false);
    assert_eq!(body["stream"], true);
    assert_eq!(body["max_output_tokens"], 512);
    assert_eq!(body["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(body["instructions"], "You are a coding agent.");
    assert_eq!(
        body["input"],
        json!([
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List the files."}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Listing."}]},
            {"type": "function_call", "call_id": "call_9", "name": "list", "arguments": "{\"path\":\".\"}"},
            {"type": "function_call_output", "call_id": "call_9", "output": "Cargo.toml\nsrc/"},
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Two steps left."}]},
        ])
    );
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "name": "list", "description": "The list tool.",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}])
    );
    assert_eq!(
        header(&server.request_headers()[0], "authorization"),
        Some("Bearer sk-test")
    );
}

#[tokio::test]
async fn reasoning_items_are_re_sent_on_the_next_turn() {
    let reasoning = json!({"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Check the file."}], "encrypted_content": "gAAAA-secret-1"});
    let call = json!({"id": "fc_1", "type": "function_call", "call_id": "call_r1", "name": "read", "arguments": "{\"path\":\"a.rs\"}"});
    let first = [
        event(json!({"type": "response.output_item.done", "output_index": 0, "item": reasoning})),
        completed(
            json!([reasoning, call]),
            json!({"input_tokens": 10, "output_tokens": 5}),
        ),
    ]
    .concat();
    let answer_reasoning = json!({"id": "rs_2", "type": "reasoning", "summary": [], "encrypted_content": "gAAAA-secret-2"});
    let second = completed(
        json!([answer_reasoning, {"type": "message", "content": [{"type": "output_text", "text": "a.rs is fine."}]}]),
        json!({"input_tokens": 20, "output_tokens": 5}),
    );
    let server = ScriptedServer::start(vec![
        ScriptedReply::RawSse(first),
        ScriptedReply::RawSse(second),
        text("ok"),
    ]);
    let client = client(config_for(&server));
    let mut request = ModelRequest {
        messages: vec![Message::system("sys"), Message::user("Is a.rs fine?")],
        tools: vec![tool_spec("read")],
    };
    let response = client.complete(&request, &|_| {}).await.unwrap();
    assert_eq!(response.message.tool_calls[0].id, "call_r1");
    request.messages.push(response.message);
    request.messages.push(Message::tool("call_r1", "fn a() {}"));
    let response = client.complete(&request, &|_| {}).await.unwrap();
    assert_eq!(response.message.content, "a.rs is fine.");
    request.messages.push(response.message);
    request.messages.push(Message::user("Thanks."));
    client.complete(&request, &|_| {}).await.unwrap();

    let requests = server.requests();
    assert!(
        requests[0]["input"]
            .as_array()
            .unwrap()
            .iter()
            .all(|item| item["type"] != "reasoning")
    );
    let without_id = |item: &Value| {
        let mut item = item.clone();
        item.as_object_mut().unwrap().remove("id");
        item
    };
    let second_input = requests[1]["input"].as_array().unwrap();
    assert_eq!(second_input[1], without_id(&reasoning), "{second_input:?}");
    assert_eq!(second_input[2]["type"], "function_call");
    assert_eq!(second_input.len(), 4);
    let third_input = requests[2]["input"].as_array().unwrap();
    let kinds: Vec<&str> = third_input
        .iter()
        .map(|item| item["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "message",
            "reasoning",
            "function_call",
            "function_call_output",
            "reasoning",
            "message",
            "message"
        ]
    );
    assert_eq!(third_input[1], without_id(&reasoning));
    assert_eq!(third_input[4], without_id(&answer_reasoning));
}

#[tokio::test]
async fn a_server_that_refuses_encrypted_reasoning_is_asked_again_without_it() {
    let refusal = json!({"error": {"message": "Encrypted content is not supported with this model.", "type": "invalid_request_error"}});
    let server = ScriptedServer::start(vec![
        error(400, &refusal.to_string()),
        text("plain"),
        text("again"),
    ]);
    let client = client(config_for(&server));
    let (result, notes) = complete_with(&client, &user_request("hi")).await;
    assert_eq!(result.unwrap().message.content, "plain");
    assert!(notes.is_empty());
    complete_with(&client, &user_request("hi")).await.0.unwrap();
    let requests = server.requests();
    assert_eq!(
        requests[0]["include"],
        json!(["reasoning.encrypted_content"])
    );
    assert!(requests[1].get("include").is_none());
    assert!(requests[2].get("include").is_none(), "the client remembers");
}
