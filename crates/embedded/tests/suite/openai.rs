//! The OpenAI-compatible endpoint over real HTTP, against a real GGUF model
//! (`NIGHTSHIFT_TEST_MODEL`; skipped loudly without it, failing in CI).
//!
//! One test loads the model once and runs every case against one server: loading and the
//! first prefill dominate on a small CPU, and later requests reuse the KV cache. Answers are
//! greedy and short.

use std::sync::Arc;

use nightshift_embedded::{EmbeddedModel, EngineOptions};
use nightshift_model::{
    ChatCompletionsClient, ModelClient, ModelRequest, ProviderConfig, ResponsesClient,
};
use nightshift_protocol::Message;
use serde_json::{Value, json};

use super::model_path;

const SUM: &str = "What is 12 + 30? Answer with the number only.";

/// The endpoint served on a free port, and a client for it.
struct Endpoint {
    base: String,
    http: reqwest::Client,
    model_name: String,
}

impl Endpoint {
    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.post_raw(path, body.to_string()).await
    }

    async fn post_raw(&self, path: &str, body: String) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// A 200 with a JSON body.
    async fn json(&self, path: &str, body: &Value) -> Value {
        let response = self.post(path, body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    /// A 200 event stream, as (event name, data) pairs.
    async fn events(&self, path: &str, body: &Value) -> Vec<(Option<String>, String)> {
        let response = self.post(path, body).await;
        let status = response.status();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "{text}");
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        parse_sse(&text)
    }

    /// A 4xx with OpenAI's error shape; returns the `error` object.
    async fn error(&self, path: &str, body: String, status: u16) -> Value {
        let response = self.post_raw(path, body).await;
        assert_eq!(response.status().as_u16(), status);
        let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        let error = body["error"].clone();
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert_eq!(error["type"], "invalid_request_error", "{body}");
        let object = error.as_object().unwrap();
        assert!(
            object.contains_key("param") && object.contains_key("code"),
            "{body}"
        );
        error
    }
}

fn parse_sse(text: &str) -> Vec<(Option<String>, String)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    event = Some(name.trim().to_owned());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value));
                }
            }
            (!data.is_empty()).then(|| (event, data.join("\n")))
        })
        .collect()
}

fn read_file_tool() -> Value {
    json!({
        "name": "read_file",
        "description": "Read a file of the repository and return its contents.",
        "parameters": {
            "type": "object",
            "properties": {"path": {"type": "string", "description": "The file's path"}},
            "required": ["path"],
            "additionalProperties": false,
        },
    })
}

fn chat_tools() -> Value {
    json!([{"type": "function", "function": read_file_tool()}])
}

fn responses_tools() -> Value {
    let mut tool = read_file_tool();
    tool["type"] = json!("function");
    json!([tool])
}

/// Arguments that match `read_file`'s schema: an object with one string `path`.
fn assert_read_file_arguments(arguments: &Value) -> String {
    let arguments: Value = serde_json::from_str(arguments.as_str().unwrap())
        .unwrap_or_else(|e| panic!("arguments do not parse ({e}): {arguments}"));
    let object = arguments.as_object().unwrap();
    assert_eq!(object.len(), 1, "{arguments}");
    object["path"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_endpoint_answers_chat_completions_and_responses_over_http() {
    let Some(path) = model_path() else {
        return;
    };
    let options = EngineOptions {
        context_tokens: 4096,
        max_output_tokens: 64,
        temperature: 0.0,
        ..EngineOptions::default()
    };
    let model = EmbeddedModel::load_async(&path, options).await.unwrap();
    let model_name = model.info().name.clone();
    let served = Arc::clone(&model);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, nightshift_embedded::openai::router(served))
            .await
            .unwrap();
    });
    let endpoint = Endpoint {
        base: format!("http://{addr}"),
        // A fresh connection per request: after the test hangs up mid-stream, a pooled
        // connection the server has since closed would fail the next request
        // (IncompleteMessage), a race of the client's pool, not of the endpoint.
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
        model_name,
    };

    models_lists_the_loaded_model(&endpoint).await;
    bad_requests_get_a_400_in_openai_shape(&endpoint).await;
    let answer = chat_answers_greedily_and_echoes_the_loaded_model(&endpoint).await;
    chat_streams_deltas_that_add_up_to_the_answer(&endpoint, &answer).await;
    nightshifts_own_provider_clients_understand_the_endpoint(&endpoint).await;
    let call = chat_required_tool_call_matches_the_schema(&endpoint).await;
    responses_answer_and_stream_the_same_text(&endpoint).await;
    responses_stream_a_named_function_call(&endpoint).await;
    responses_take_a_function_call_output(&endpoint, &call).await;
    the_token_limit_ends_with_length_and_incomplete(&endpoint).await;
    a_prompt_longer_than_the_context_is_context_length_exceeded(&endpoint).await;
    a_client_that_disconnects_cancels_its_generation(&endpoint, &model).await;
    server.abort();
}

async fn models_lists_the_loaded_model(endpoint: &Endpoint) {
    let response = endpoint
        .http
        .get(format!("{}/v1/models", endpoint.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let list: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["data"][0]["id"], endpoint.model_name.as_str());
    assert_eq!(list["data"][0]["object"], "model");
    assert_eq!(list["data"][0]["owned_by"], "nightshift");
}

async fn bad_requests_get_a_400_in_openai_shape(endpoint: &Endpoint) {
    let chat = "/v1/chat/completions";
    let error = endpoint
        .error(chat, "{\"messages\": [".to_owned(), 400)
        .await;
    assert!(error["param"].is_null(), "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{error}"
    );
    let error = endpoint
        .error(chat, json!({"model": "x"}).to_string(), 400)
        .await;
    assert_eq!(error["param"], "messages");
    let error = endpoint
        .error(
            chat,
            json!({"messages": [{"role": "wizard", "content": "hi"}]}).to_string(),
            400,
        )
        .await;
    assert_eq!(error["param"], "messages[0].role");
    assert!(
        error["message"].as_str().unwrap().contains("wizard"),
        "{error}"
    );
    let error = endpoint
        .error(
            chat,
            json!({"messages": [{"role": "user", "content": "hi"}],
                   "tools": [{"type": "function", "function": {"description": "no name"}}]})
            .to_string(),
            400,
        )
        .await;
    assert_eq!(error["param"], "tools[0].function.name");
    let error = endpoint
        .error(
            chat,
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]})
            .to_string(),
            400,
        )
        .await;
    assert_eq!(error["param"], "messages[0].content[0].type");
    let error = endpoint
        .error(
            chat,
            json!({"messages": [{"role": "user", "content": "hi"}], "tool_choice": "required"})
                .to_string(),
            400,
        )
        .await;
    assert_eq!(error["param"], "tool_choice");

    let responses = "/v1/responses";
    endpoint.error(responses, "not json".to_owned(), 400).await;
    let error = endpoint
        .error(responses, json!({"model": "x"}).to_string(), 400)
        .await;
    assert_eq!(error["param"], "input");
    let error = endpoint
        .error(
            responses,
            json!({"input": [{"type": "function_call_output", "output": "x"}]}).to_string(),
            400,
        )
        .await;
    assert_eq!(error["param"], "input[0].call_id");
    let error = endpoint
        .error(
            responses,
            json!({"input": "hi", "tools": [{"type": "web_search"}]}).to_string(),
            400,
        )
        .await;
    assert_eq!(error["param"], "tools[0].type");

    // Bodies past the 4 MiB limit are refused before they are parsed.
    let huge = json!({"messages": [{"role": "user", "content": "x".repeat(5 * 1024 * 1024)}]});
    let response = endpoint.post(chat, &huge).await;
    assert_eq!(response.status(), 413);
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("4 MiB"),
        "{body}"
    );
}

async fn chat_answers_greedily_and_echoes_the_loaded_model(endpoint: &Endpoint) -> String {
    let completion = endpoint
        .json(
            "/v1/chat/completions",
            &json!({
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": [{"type": "text", "text": SUM}]}],
                "temperature": 0,
                "max_tokens": 16,
            }),
        )
        .await;
    assert!(completion["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["model"], endpoint.model_name.as_str());
    let choice = &completion["choices"][0];
    assert_eq!(choice["finish_reason"], "stop", "{completion}");
    assert_eq!(choice["message"]["role"], "assistant");
    assert!(
        choice["message"].get("tool_calls").is_none(),
        "{completion}"
    );
    let content = choice["message"]["content"].as_str().unwrap().to_owned();
    assert!(content.contains("42"), "{completion}");
    let usage = &completion["usage"];
    let prompt = usage["prompt_tokens"].as_u64().unwrap();
    let generated = usage["completion_tokens"].as_u64().unwrap();
    assert!(prompt > 10 && generated >= 1, "{usage}");
    assert_eq!(usage["total_tokens"].as_u64().unwrap(), prompt + generated);
    content
}

async fn chat_streams_deltas_that_add_up_to_the_answer(endpoint: &Endpoint, answer: &str) {
    let events = endpoint
        .events(
            "/v1/chat/completions",
            &json!({
                "model": "anything",
                "messages": [{"role": "user", "content": SUM}],
                "temperature": 0,
                "max_completion_tokens": 16,
                "stream": true,
                "stream_options": {"include_usage": true},
            }),
        )
        .await;
    let (last, chunks) = events.split_last().unwrap();
    assert_eq!(last.1, "[DONE]");
    let chunks: Vec<Value> = chunks
        .iter()
        .map(|(_, data)| serde_json::from_str(data).unwrap())
        .collect();
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(
        chunks
            .iter()
            .all(|c| c["id"] == id && c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let (usage, answer_chunks) = chunks.split_last().unwrap();
    assert_eq!(usage["choices"], json!([]), "{usage}");
    assert!(
        usage["usage"]["completion_tokens"].as_u64().unwrap() >= 1,
        "{usage}"
    );
    assert!(answer_chunks.iter().all(|c| c["usage"].is_null()));
    let finish = answer_chunks.last().unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop", "{finish}");
    let streamed: String = answer_chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(
        streamed, answer,
        "greedy: the stream says what the plain answer said"
    );
    let deltas = answer_chunks
        .iter()
        .filter(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        })
        .count();
    assert!(deltas >= 1, "{chunks:?}");
}

/// The clients the agent uses for remote providers, both wire formats, streaming: what
/// `nightshift serve` offers, another Nightshift can use as its provider.
async fn nightshifts_own_provider_clients_understand_the_endpoint(endpoint: &Endpoint) {
    let config = ProviderConfig {
        base_url: format!("{}/v1", endpoint.base),
        model: "local".to_owned(),
        api_key: Some("unused".to_owned()),
        stream: true,
        max_output_tokens: Some(16),
        temperature: Some(0.0),
        max_retries: 0,
        ..ProviderConfig::default()
    };
    let request = ModelRequest {
        messages: vec![Message::user(SUM)],
        tools: Vec::new(),
    };
    let chat = ChatCompletionsClient::new(config.clone()).unwrap();
    let responses = ResponsesClient::new(config).unwrap();
    for client in [&chat as &dyn ModelClient, &responses] {
        let response = client.complete(&request, &|_| {}).await.unwrap();
        assert!(response.message.content.contains("42"), "{response:?}");
        assert_eq!(
            response.finish_reason.as_deref(),
            Some("stop"),
            "{response:?}"
        );
        assert!(response.usage.input_tokens > 10, "{response:?}");
        assert!(response.skipped_lines.is_empty(), "{response:?}");
    }
}

/// Returns the call, for the round trip.
async fn chat_required_tool_call_matches_the_schema(endpoint: &Endpoint) -> Value {
    let completion = endpoint
        .json(
            "/v1/chat/completions",
            &json!({
                "model": "local",
                "messages": [
                    {"role": "system", "content": "You are a coding agent. Use the tools."},
                    {"role": "user", "content": "Show me the file src/main.rs."},
                ],
                "tools": chat_tools(),
                "tool_choice": "required",
                "temperature": 0,
                // A call stops on its own after ~25 tokens; the limit only bounds it.
                "max_tokens": 48,
            }),
        )
        .await;
    let choice = &completion["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{completion}");
    assert!(choice["message"]["content"].is_null(), "{completion}");
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert!(!calls.is_empty());
    for call in calls {
        assert!(
            call["id"].as_str().is_some_and(|id| !id.is_empty()),
            "{call}"
        );
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], "read_file");
        assert_read_file_arguments(&call["function"]["arguments"]);
    }
    calls[0].clone()
}

async fn responses_answer_and_stream_the_same_text(endpoint: &Endpoint) {
    let request = json!({
        "model": "whatever",
        "input": SUM,
        "temperature": 0,
        "max_output_tokens": 16,
    });
    let response = endpoint.json("/v1/responses", &request).await;
    assert!(response["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(response["object"], "response");
    assert_eq!(response["status"], "completed", "{response}");
    assert_eq!(response["model"], endpoint.model_name.as_str());
    let output = response["output"].as_array().unwrap();
    assert_eq!(output.len(), 1, "{response}");
    assert_eq!(output[0]["type"], "message");
    assert_eq!(output[0]["role"], "assistant");
    assert_eq!(output[0]["content"][0]["type"], "output_text");
    let text = output[0]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("42"), "{response}");
    let usage = &response["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap()
    );

    let mut streaming = request.clone();
    streaming["stream"] = json!(true);
    let events = endpoint.events("/v1/responses", &streaming).await;
    let events: Vec<Value> = events
        .iter()
        .map(|(name, data)| {
            let event: Value = serde_json::from_str(data).unwrap();
            assert_eq!(
                name.as_deref(),
                event["type"].as_str(),
                "event: names the type"
            );
            event
        })
        .collect();
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event["sequence_number"], n, "{event}");
    }
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let deltas = kinds
        .iter()
        .filter(|k| **k == "response.output_text.delta")
        .count();
    assert!(deltas >= 1, "{kinds:?}");
    let mut expected = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ];
    expected.extend(std::iter::repeat_n("response.output_text.delta", deltas));
    expected.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(kinds, expected);
    let streamed: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    let done = events
        .iter()
        .find(|e| e["type"] == "response.output_text.done")
        .unwrap();
    assert_eq!(done["text"], streamed.as_str());
    let completed = &events.last().unwrap()["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(
        completed["output"][0]["content"][0]["text"],
        streamed.as_str()
    );
    assert_eq!(
        streamed, text,
        "greedy: the stream says what the plain answer said"
    );
    assert_eq!(events[0]["response"]["status"], "in_progress");
    assert!(completed["usage"]["output_tokens"].as_u64().unwrap() >= 1);
}

async fn responses_stream_a_named_function_call(endpoint: &Endpoint) {
    let events = endpoint
        .events(
            "/v1/responses",
            &json!({
                "model": "whatever",
                "instructions": "You are a coding agent. Use the tools.",
                "input": [{"role": "user", "content": [{"type": "input_text", "text": "Open the file README.md."}]}],
                "tools": responses_tools(),
                "tool_choice": {"type": "function", "name": "read_file"},
                "temperature": 0,
                "max_output_tokens": 48,
                "stream": true,
            }),
        )
        .await;
    let events: Vec<Value> = events
        .iter()
        .map(|(_, data)| serde_json::from_str(data).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds[..6],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
        ],
        "{kinds:?}"
    );
    assert_eq!(*kinds.last().unwrap(), "response.completed");
    let done = &events[4];
    assert_eq!(done["name"], "read_file");
    assert_read_file_arguments(&done["arguments"]);
    let item = &events[5]["item"];
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["status"], "completed");
    assert!(item["call_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(item["arguments"], done["arguments"]);
    let completed = &events.last().unwrap()["response"];
    assert_eq!(completed["output"][0], *item);
}

async fn responses_take_a_function_call_output(endpoint: &Endpoint, call: &Value) {
    let response = endpoint
        .json(
            "/v1/responses",
            &json!({
                "model": "whatever",
                "instructions": "You are a coding agent. Use the tools.",
                "input": [
                    {"role": "user", "content": "Show me the file src/main.rs, then tell me in one word what the program prints."},
                    {"type": "function_call", "call_id": call["id"], "name": "read_file",
                     "arguments": call["function"]["arguments"]},
                    {"type": "function_call_output", "call_id": call["id"],
                     "output": "fn main() {\n    println!(\"banana\");\n}\n"},
                ],
                "tools": responses_tools(),
                "tool_choice": "none",
                "temperature": 0,
                "max_output_tokens": 24,
            }),
        )
        .await;
    let output = response["output"].as_array().unwrap();
    assert_eq!(output[0]["type"], "message", "{response}");
    let text = output[0]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.to_lowercase().contains("banana"),
        "the answer uses the tool's output: {response}"
    );
}

async fn the_token_limit_ends_with_length_and_incomplete(endpoint: &Endpoint) {
    let count = "Count from 1 to 50, separated by commas.";
    let completion = endpoint
        .json(
            "/v1/chat/completions",
            &json!({"model": "m", "messages": [{"role": "user", "content": count}], "max_tokens": 4}),
        )
        .await;
    assert_eq!(
        completion["choices"][0]["finish_reason"], "length",
        "{completion}"
    );
    assert_eq!(completion["usage"]["completion_tokens"], 4);

    let response = endpoint
        .json(
            "/v1/responses",
            &json!({"model": "m", "input": count, "max_output_tokens": 4}),
        )
        .await;
    assert_eq!(response["status"], "incomplete", "{response}");
    assert_eq!(
        response["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(response["usage"]["output_tokens"], 4);

    let events = endpoint
        .events(
            "/v1/responses",
            &json!({"model": "m", "input": count, "max_output_tokens": 4, "stream": true}),
        )
        .await;
    let (name, data) = events.last().unwrap();
    assert_eq!(name.as_deref(), Some("response.incomplete"));
    let last: Value = serde_json::from_str(data).unwrap();
    assert_eq!(last["response"]["status"], "incomplete");
}

async fn a_prompt_longer_than_the_context_is_context_length_exceeded(endpoint: &Endpoint) {
    for stream in [false, true] {
        let body = json!({
            "model": "m",
            "messages": [{"role": "user", "content": "word ".repeat(5000)}],
            "stream": stream,
        });
        let error = endpoint
            .error("/v1/chat/completions", body.to_string(), 400)
            .await;
        assert_eq!(error["code"], "context_length_exceeded", "{error}");
        assert_eq!(error["param"], "messages");
        assert!(
            error["message"].as_str().unwrap().contains("hint:"),
            "{error}"
        );
    }
}

async fn a_client_that_disconnects_cancels_its_generation(
    endpoint: &Endpoint,
    model: &EmbeddedModel,
) {
    let before = model.tokens_generated();
    let mut response = endpoint
        .post(
            "/v1/chat/completions",
            &json!({
                "model": "m",
                "messages": [{"role": "user", "content": "Count from 1 to 500, one number per line."}],
                "max_tokens": 2000,
                "stream": true,
            }),
        )
        .await;
    assert_eq!(response.status(), 200);
    // Wait until the answer has started, then hang up.
    let mut seen = String::new();
    // The first `"content":"` is the role chunk's empty one.
    while seen.matches("\"content\":\"").count() < 2 {
        let chunk = response.chunk().await.unwrap().expect("the stream goes on");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(response);

    // The model's worker runs one generation at a time, so this request is answered only
    // after the abandoned one ends: at once if the hang-up cancelled it, after ~1500 tokens
    // if it did not. Counting tokens tells the two apart whatever the machine's speed.
    let completion = endpoint
        .json(
            "/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": "Reply with the word ok."}], "max_tokens": 4}),
        )
        .await;
    assert!(completion["choices"][0]["message"]["content"].is_string());
    let generated = model.tokens_generated() - before;
    assert!(
        generated < 200,
        "the abandoned generation went on after the client hung up: {generated} tokens"
    );
}
