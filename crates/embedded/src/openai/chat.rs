//! `POST /v1/chat/completions`: OpenAI Chat Completions, streaming or not.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use nightshift_model::ModelRequest;
use nightshift_protocol::{Message, ToolCall, Usage};
use serde_json::{Value, json};

use super::error::ApiError;
use super::input::{self, Object};
use super::stream::{self, Encoder};
use crate::{Completion, EmbeddedModel, EngineError, GenerateOptions};

/// A request as the engine takes it.
struct ChatRequest {
    request: ModelRequest,
    options: GenerateOptions,
    stream: bool,
    include_usage: bool,
}

pub(crate) async fn handle(
    State(model): State<Arc<EmbeddedModel>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| ApiError::body(&rejection))?;
    let chat = parse(&input::body_object(&body)?)?;
    let meta = Meta {
        id: super::new_id("chatcmpl-"),
        created: super::unix_time(),
        model: model.info().name.clone(),
    };
    let mut generation = model.stream(chat.request, chat.options);
    if !chat.stream {
        let completion = generation
            .finish()
            .await
            .map_err(|error| ApiError::engine(error, "messages"))?;
        return Ok(Json(meta.completion(&completion)).into_response());
    }
    let first = stream::first_event(&mut generation)
        .await
        .map_err(|error| ApiError::engine(error, "messages"))?;
    let opening = vec![meta.chunk(
        json!({"role": "assistant", "content": ""}),
        None,
        chat.include_usage,
    )];
    let encoder = ChunkEncoder {
        meta,
        include_usage: chat.include_usage,
    };
    Ok(stream::sse(generation, first, encoder, opening))
}

fn parse(body: &Object) -> Result<ChatRequest, ApiError> {
    let Some(messages) = input::field(body, "messages") else {
        return Err(ApiError::invalid(
            "messages",
            "`messages` is missing: send the conversation as a list of {\"role\", \"content\"} objects",
        ));
    };
    let Some(messages) = messages.as_array().filter(|m| !m.is_empty()) else {
        return Err(ApiError::invalid(
            "messages",
            "`messages` must be a non-empty list of {\"role\", \"content\"} objects",
        ));
    };
    let messages = messages
        .iter()
        .enumerate()
        .map(|(i, message)| parse_message(message, &format!("messages[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;

    let tools = input::list(
        body,
        "tools",
        "tools",
        "{\"type\": \"function\", \"function\": {...}} objects",
        parse_tool,
    )?;
    input::check_unique(&tools)?;
    let (tools, tool_calls) = input::apply_tool_choice(input::tool_choice(body)?, tools)?;

    if let Some(n) = input::field(body, "n")
        && n.as_u64() != Some(1)
    {
        return Err(ApiError::invalid(
            "n",
            "only one choice per request is supported; leave `n` out or set it to 1",
        ));
    }
    if let Some(format) = input::field(body, "response_format")
        && format.get("type").and_then(Value::as_str) != Some("text")
    {
        return Err(ApiError::invalid(
            "response_format",
            "structured output (`response_format`) is not supported by the embedded model; \
             leave it out or use {\"type\": \"text\"}",
        ));
    }
    let include_usage = match input::field(body, "stream_options") {
        None => false,
        Some(Value::Object(options)) => {
            input::flag(options, "include_usage", "stream_options.include_usage")?
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "stream_options",
                "`stream_options` must be an object such as {\"include_usage\": true}",
            ));
        }
    };
    Ok(ChatRequest {
        request: ModelRequest { messages, tools },
        options: GenerateOptions {
            // `max_tokens` is the older name; OpenAI prefers the newer when both are sent.
            max_output_tokens: input::max_tokens(body, &["max_completion_tokens", "max_tokens"])?,
            temperature: input::temperature(body)?,
            seed: input::seed(body)?,
            tool_calls,
            ..GenerateOptions::default()
        },
        stream: input::flag(body, "stream", "stream")?,
        include_usage,
    })
}

fn parse_message(value: &Value, param: &str) -> Result<Message, ApiError> {
    let message = input::object(value, param)?;
    let role_param = format!("{param}.role");
    let role = input::string(message, "role", &role_param, "the author's role")?;
    let content_param = format!("{param}.content");
    let content = || input::text(message.get("content"), &content_param, &["text"]);
    let required = || {
        input::required_text(
            message,
            "content",
            &content_param,
            &["text"],
            &format!("a {role} message needs text"),
        )
    };
    Ok(match role {
        // `developer` is what newer OpenAI models call the system role.
        "system" | "developer" => Message::system(required()?),
        "user" => Message::user(required()?),
        "assistant" => {
            let calls = input::list(
                message,
                "tool_calls",
                &format!("{param}.tool_calls"),
                "calls",
                parse_call,
            )?;
            Message::assistant(content()?, calls)
        }
        "tool" => {
            let id_param = format!("{param}.tool_call_id");
            let id = input::string(
                message,
                "tool_call_id",
                &id_param,
                "the id of the call this answers",
            )?;
            Message::tool(id, content()?)
        }
        other => {
            return Err(ApiError::invalid(
                role_param,
                format!(
                    "the role `{other}` is not known; use system, developer, user, assistant or tool"
                ),
            ));
        }
    })
}

/// An assistant's earlier call: `{"id", "type": "function", "function": {"name", "arguments"}}`.
fn parse_call(value: &Value, param: &str) -> Result<ToolCall, ApiError> {
    let call = input::object(value, param)?;
    let id = input::string(call, "id", &format!("{param}.id"), "the call's id")?;
    let function_param = format!("{param}.function");
    let function = input::object(
        call.get("function").unwrap_or(&Value::Null),
        &function_param,
    )?;
    let name = input::string(
        function,
        "name",
        &format!("{function_param}.name"),
        "the function's name",
    )?;
    // OpenAI sends arguments as JSON text; some clients send the object itself.
    let arguments = match input::field(function, "arguments") {
        None => "{}".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    };
    Ok(ToolCall {
        id: id.to_owned(),
        name: name.to_owned(),
        arguments,
    })
}

fn parse_tool(value: &Value, param: &str) -> Result<nightshift_protocol::ToolSpec, ApiError> {
    let tool = input::object(value, param)?;
    let kind = input::string(tool, "type", &format!("{param}.type"), "\"function\"")?;
    if kind != "function" {
        return Err(ApiError::invalid(
            format!("{param}.type"),
            format!("tools of type `{kind}` are not supported; only \"function\" tools are"),
        ));
    }
    let function_param = format!("{param}.function");
    let function = input::object(
        tool.get("function").unwrap_or(&Value::Null),
        &function_param,
    )?;
    input::function_spec(function, &function_param)
}

/// What every object of one answer repeats.
struct Meta {
    id: String,
    created: u64,
    model: String,
}

impl Meta {
    fn completion(&self, completion: &Completion) -> Value {
        let response = &completion.response;
        let calls = &response.message.tool_calls;
        let content = &response.message.content;
        let mut message = json!({
            "role": "assistant",
            // OpenAI sends null rather than "" when the answer is only tool calls.
            "content": if content.is_empty() && !calls.is_empty() { Value::Null } else { json!(content) },
            "refusal": null,
        });
        if !calls.is_empty() {
            message["tool_calls"] = calls.iter().map(call_json).collect();
        }
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": finish_reason(completion),
            }],
            "usage": usage_json(&response.usage),
        })
    }

    /// A `chat.completion.chunk` with one choice. With `include_usage`, OpenAI puts
    /// `"usage": null` in every chunk but the last.
    fn chunk(&self, delta: Value, finish_reason: Option<&str>, include_usage: bool) -> Event {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "delta": delta,
                "logprobs": null,
                "finish_reason": finish_reason,
            }],
        });
        if include_usage {
            chunk["usage"] = Value::Null;
        }
        Event::default().data(chunk.to_string())
    }
}

struct ChunkEncoder {
    meta: Meta,
    include_usage: bool,
}

impl Encoder for ChunkEncoder {
    fn text(&mut self, delta: &str, out: &mut Vec<Event>) {
        out.push(
            self.meta
                .chunk(json!({"content": delta}), None, self.include_usage),
        );
    }

    fn done(&mut self, result: Result<Completion, EngineError>, _text: &str, out: &mut Vec<Event>) {
        let completion = match result {
            Ok(completion) => completion,
            Err(error) => {
                // Headers are gone: the error goes in the stream, and no [DONE] follows.
                let error = ApiError::engine(error, "messages");
                out.push(Event::default().data(json!({"error": error.to_json()}).to_string()));
                return;
            }
        };
        let calls = &completion.response.message.tool_calls;
        if !calls.is_empty() {
            let calls: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(index, call)| {
                    let mut call = call_json(call);
                    call["index"] = json!(index);
                    call
                })
                .collect();
            out.push(
                self.meta
                    .chunk(json!({"tool_calls": calls}), None, self.include_usage),
            );
        }
        out.push(self.meta.chunk(
            json!({}),
            Some(finish_reason(&completion)),
            self.include_usage,
        ));
        if self.include_usage {
            let usage = json!({
                "id": self.meta.id,
                "object": "chat.completion.chunk",
                "created": self.meta.created,
                "model": self.meta.model,
                "choices": [],
                "usage": usage_json(&completion.response.usage),
            });
            out.push(Event::default().data(usage.to_string()));
        }
        out.push(Event::default().data("[DONE]"));
    }
}

fn call_json(call: &ToolCall) -> Value {
    json!({
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    })
}

fn finish_reason(completion: &Completion) -> &str {
    completion
        .response
        .finish_reason
        .as_deref()
        .unwrap_or("stop")
}

fn usage_json(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total(),
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    })
}
