//! The scripted server answers like a Chat Completions server and records what it got.

use std::time::{Duration, Instant};

use nightshift_testkit::{
    ScriptedReply, ScriptedServer, delayed, error, rate_limited, text, text_and_tools, tool,
};
use serde_json::{Value, json};

use super::post;

const PATH: &str = "/v1/chat/completions";

fn streaming_request() -> String {
    json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
           "messages": [{"role": "user", "content": "hi"}]})
    .to_string()
}

fn plain_request() -> String {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).to_string()
}

#[test]
fn streamed_text_comes_in_several_chunks_then_usage_then_done() {
    let server = ScriptedServer::start(vec![text("The quick brown fox jumps over the lazy dog.")]);
    let answer = post(&server.base_url(), PATH, &streaming_request());
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    let data = answer.sse_data();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let pieces: Vec<&str> = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .filter(|piece| !piece.is_empty())
        .collect();
    assert!(pieces.len() > 1, "{pieces:?}");
    assert_eq!(
        pieces.concat(),
        "The quick brown fox jumps over the lazy dog."
    );
    let usage = &chunks.last().unwrap()["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0, "{usage}");
    let finish = chunks
        .iter()
        .find_map(|chunk| chunk["choices"][0]["finish_reason"].as_str());
    assert_eq!(finish, Some("stop"));
}

#[test]
fn streamed_tool_call_arguments_arrive_in_pieces_after_id_and_name() {
    let server = ScriptedServer::start(vec![tool(
        "shell",
        json!({"command": "cargo test --workspace"}),
    )]);
    let answer = post(&server.base_url(), PATH, &streaming_request());
    let deltas: Vec<Value> = answer
        .sse_data()
        .iter()
        .filter(|line| *line != "[DONE]")
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter_map(|chunk| chunk["choices"][0]["delta"]["tool_calls"].get(0).cloned())
        .collect();
    assert_eq!(deltas[0]["id"], "call_1");
    assert_eq!(deltas[0]["function"]["name"], "shell");
    let arguments: Vec<&str> = deltas
        .iter()
        .map(|delta| delta["function"]["arguments"].as_str().unwrap())
        .filter(|piece| !piece.is_empty())
        .collect();
    assert!(arguments.len() > 1, "{arguments:?}");
    let joined: Value = serde_json::from_str(&arguments.concat()).unwrap();
    assert_eq!(joined, json!({"command": "cargo test --workspace"}));
}

#[test]
fn json_replies_number_tool_calls_across_the_conversation() {
    let server = ScriptedServer::start(vec![
        tool("read", json!({"path": "a"})),
        text_and_tools(
            "two more",
            &[("read", json!({"path": "b"})), ("list", json!({}))],
        ),
        tool("broken", Value::String("{\"path\": ".into())),
    ]);
    let first = post(&server.base_url(), PATH, &plain_request()).json();
    let second = post(&server.base_url(), PATH, &plain_request()).json();
    let third = post(&server.base_url(), PATH, &plain_request()).json();
    let message = &first["choices"][0]["message"];
    assert_eq!(message["content"], Value::Null);
    assert_eq!(message["tool_calls"][0]["id"], "call_1");
    assert_eq!(
        message["tool_calls"][0]["function"]["arguments"],
        "{\"path\":\"a\"}"
    );
    let message = &second["choices"][0]["message"];
    assert_eq!(message["content"], "two more");
    assert_eq!(message["tool_calls"][0]["id"], "call_2");
    assert_eq!(message["tool_calls"][1]["id"], "call_3");
    assert_eq!(second["choices"][0]["finish_reason"], "tool_calls");
    assert!(second["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    // A string argument is sent verbatim, so tests can script malformed arguments.
    assert_eq!(
        third["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"path\": "
    );
}

#[test]
fn errors_carry_their_status_body_and_retry_after() {
    let server = ScriptedServer::start(vec![rate_limited(7), error(503, "overloaded")]);
    let limited = post(&server.base_url(), PATH, &plain_request());
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after").as_deref(), Some("7"));
    assert_eq!(
        limited.header("content-type").as_deref(),
        Some("application/json")
    );
    assert!(limited.json()["error"]["message"].is_string());
    let overloaded = post(&server.base_url(), PATH, &plain_request());
    assert_eq!(overloaded.status, 503);
    assert_eq!(overloaded.header("retry-after"), None);
    assert_eq!(overloaded.body, "overloaded");
}

#[test]
fn raw_sse_is_sent_verbatim() {
    let raw = "data: {not json\n\n: comment\ndata: [DONE]\n\n";
    let server = ScriptedServer::start(vec![ScriptedReply::RawSse(raw.into())]);
    let answer = post(&server.base_url(), PATH, &streaming_request());
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(answer.body, raw);
}

#[test]
fn requests_are_recorded_and_an_exhausted_script_says_so() {
    let server = ScriptedServer::start(vec![text("one")]);
    assert_eq!(server.remaining(), 1);
    post(&server.base_url(), PATH, &plain_request());
    assert_eq!(server.remaining(), 0);
    let exhausted = post(&server.base_url(), PATH, "not json");
    assert_eq!(exhausted.status, 500);
    assert_eq!(
        exhausted.body,
        "scripted server: script exhausted after 1 replies"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["messages"][0]["content"], "hi");
    assert_eq!(requests[1], Value::String("not json".into()));
    assert_eq!(server.served(), 1);
    let headers = &server.request_headers()[0];
    assert!(headers.contains(&("content-type".to_owned(), "application/json".to_owned())));
}

#[test]
fn other_paths_get_a_404_that_names_the_right_one() {
    let server = ScriptedServer::start(vec![text("unused")]);
    let answer = post(&server.base_url(), "/chat/completions", &plain_request());
    assert_eq!(answer.status, 404);
    assert!(
        answer.body.contains("POST /v1/chat/completions"),
        "{}",
        answer.body
    );
    assert_eq!(server.remaining(), 1);
    assert!(server.requests().is_empty());
}

#[test]
fn delayed_replies_wait_and_dropping_the_server_does_not() {
    let server = ScriptedServer::start(vec![
        delayed(Duration::from_millis(300), text("late")),
        delayed(Duration::from_secs(60), text("much later")),
    ]);
    let started = Instant::now();
    let answer = post(&server.base_url(), PATH, &plain_request());
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(answer.json()["choices"][0]["message"]["content"], "late");

    // Leave the second reply sleeping on the server, then drop it.
    let base_url = server.base_url();
    let address = base_url
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_owned();
    let _in_flight = std::thread::spawn(move || {
        let _ = std::net::TcpStream::connect(address).map(|mut stream| {
            use std::io::Write;
            let body = plain_request();
            let _ = write!(
                stream,
                "POST {PATH} HTTP/1.0\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            std::thread::sleep(Duration::from_secs(2));
        });
    });
    while server.requests().len() < 2 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let dropping = Instant::now();
    drop(server);
    assert!(
        dropping.elapsed() < Duration::from_secs(2),
        "{:?}",
        dropping.elapsed()
    );
    assert!(
        std::net::TcpStream::connect(
            base_url
                .trim_start_matches("http://")
                .trim_end_matches("/v1")
        )
        .is_err()
    );
}

#[tokio::test]
async fn works_from_inside_an_async_test() {
    let server = ScriptedServer::start(vec![text("async ok")]);
    let base_url = server.base_url();
    let answer = tokio::task::spawn_blocking(move || post(&base_url, PATH, &plain_request()))
        .await
        .unwrap();
    assert_eq!(
        answer.json()["choices"][0]["message"]["content"],
        "async ok"
    );
    drop(server);
}

#[test]
fn the_responses_path_streams_typed_events_ending_in_response_completed() {
    let server = ScriptedServer::start(vec![text_and_tools(
        "Reading it.",
        &[("read", json!({"path": "src/lib.rs"}))],
    )]);
    let body = json!({"model": "m", "stream": true, "input": []}).to_string();
    let answer = post(&server.base_url(), "/v1/responses", &body);
    assert_eq!(answer.status, 200);
    assert!(answer.body.contains("event: response.output_text.delta\n"));
    let events: Vec<Value> = answer
        .sse_data()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let text: String = events
        .iter()
        .filter(|event| event["type"] == "response.output_text.delta")
        .filter_map(|event| event["delta"].as_str())
        .collect();
    assert_eq!(text, "Reading it.");
    let arguments: Vec<&str> = events
        .iter()
        .filter(|event| event["type"] == "response.function_call_arguments.delta")
        .filter_map(|event| event["delta"].as_str())
        .collect();
    assert!(arguments.len() > 1, "{arguments:?}");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.completed");
    assert_eq!(last["response"]["output"][1]["call_id"], "call_1");
    assert!(last["response"]["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(server.request_paths(), ["/v1/responses"]);
}

#[test]
fn the_messages_path_answers_in_the_anthropic_format() {
    let server =
        ScriptedServer::start(vec![tool("shell", json!({"command": "ls"})), text("Done.")]);
    let streaming = json!({"model": "m", "stream": true, "max_tokens": 10, "messages": []});
    let answer = post(&server.base_url(), "/v1/messages", &streaming.to_string());
    let events: Vec<Value> = answer
        .sse_data()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"message_start"));
    assert_eq!(kinds.last(), Some(&"message_stop"));
    let start = events
        .iter()
        .find(|e| e["type"] == "content_block_start")
        .unwrap();
    assert_eq!(start["content_block"]["id"], "call_1");
    let json_text: String = events
        .iter()
        .filter_map(|e| e["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&json_text).unwrap(),
        json!({"command": "ls"})
    );
    let delta = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");

    let whole = post(&server.base_url(), "/v1/messages", &plain_request()).json();
    assert_eq!(
        whole["content"][0],
        json!({"type": "text", "text": "Done."})
    );
    assert_eq!(whole["stop_reason"], "end_turn");
    assert_eq!(server.request_paths(), ["/v1/messages", "/v1/messages"]);
}
