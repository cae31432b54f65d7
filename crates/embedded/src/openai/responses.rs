//! `POST /v1/responses`: the OpenAI Responses API, stateless (nothing is stored, so
//! `previous_response_id` is refused), streaming or not.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use nightshift_model::ModelRequest;
use nightshift_protocol::{Message, Role, ToolCall, ToolSpec, Usage};
use serde_json::{Value, json};

use super::error::ApiError;
use super::input::{self, Object};
use super::stream::{self, Encoder};
use crate::{Completion, EmbeddedModel, EngineError, GenerateOptions};

/// Content part types read as text in input messages.
const TEXT_PARTS: &[&str] = &["input_text", "output_text"];

/// A request as the engine takes it, and what the response object repeats of it.
struct ResponsesRequest {
    request: ModelRequest,
    options: GenerateOptions,
    stream: bool,
    echo: Echo,
}

/// Request fields that OpenAI's response object carries back.
struct Echo {
    instructions: Option<String>,
    max_output_tokens: Option<u32>,
    temperature: Option<f32>,
    tool_choice: Value,
    tools: Vec<ToolSpec>,
}

pub(crate) async fn handle(
    State(model): State<Arc<EmbeddedModel>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| ApiError::body(&rejection))?;
    let parsed = parse(&input::body_object(&body)?)?;
    let meta = Meta {
        id: super::new_id("resp_"),
        created_at: super::unix_time(),
        model: model.info().name.clone(),
        echo: parsed.echo,
    };
    let mut generation = model.stream(parsed.request, parsed.options);
    if !parsed.stream {
        let completion = generation
            .finish()
            .await
            .map_err(|error| ApiError::engine(error, "input"))?;
        let message = &completion.response.message;
        let mut output = Vec::new();
        if !message.content.is_empty() || message.tool_calls.is_empty() {
            output.push(message_item(
                &super::new_id("msg_"),
                &message.content,
                "completed",
            ));
        }
        for call in &message.tool_calls {
            output.push(call_item(&super::new_id("fc_"), call, "completed"));
        }
        return Ok(Json(meta.response(&completion, output)).into_response());
    }
    let first = stream::first_event(&mut generation)
        .await
        .map_err(|error| ApiError::engine(error, "input"))?;
    let mut encoder = EventEncoder {
        meta,
        sequence: 0,
        message_id: None,
    };
    let in_progress = encoder.meta.in_progress();
    let opening = vec![
        encoder.event("response.created", json!({"response": in_progress})),
        encoder.event("response.in_progress", json!({"response": in_progress})),
    ];
    Ok(stream::sse(generation, first, encoder, opening))
}

fn parse(body: &Object) -> Result<ResponsesRequest, ApiError> {
    if input::field(body, "previous_response_id").is_some() {
        return Err(ApiError::invalid(
            "previous_response_id",
            "this server stores no responses, so `previous_response_id` cannot be used; send \
             the whole conversation in `input`",
        ));
    }
    if let Some(format) = body.get("text").and_then(|text| text.get("format"))
        && format.get("type").and_then(Value::as_str) != Some("text")
    {
        return Err(ApiError::invalid(
            "text.format",
            "structured output (`text.format`) is not supported by the embedded model; leave it \
             out or use {\"type\": \"text\"}",
        ));
    }
    let instructions = match input::field(body, "instructions") {
        None => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            return Err(ApiError::invalid(
                "instructions",
                "`instructions` must be a string",
            ));
        }
    };
    let mut messages = Vec::new();
    if let Some(instructions) = instructions.as_ref().filter(|text| !text.is_empty()) {
        messages.push(Message::system(instructions.clone()));
    }
    match input::field(body, "input") {
        None => {
            return Err(ApiError::invalid(
                "input",
                "`input` is missing: send the prompt as a string, or the conversation as a list \
                 of items",
            ));
        }
        Some(Value::String(text)) => messages.push(Message::user(text.clone())),
        Some(Value::Array(items)) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                parse_item(item, &format!("input[{i}]"), &mut messages)?;
            }
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "input",
                "`input` must be a string or a non-empty list of items",
            ));
        }
    }

    let tools = input::list(
        body,
        "tools",
        "tools",
        "{\"type\": \"function\", \"name\", \"parameters\"} objects",
        parse_tool,
    )?;
    input::check_unique(&tools)?;
    let echo_tools = tools.clone();
    let (tools, tool_calls) = input::apply_tool_choice(input::tool_choice(body)?, tools)?;
    let max_output_tokens = input::max_tokens(body, &["max_output_tokens"])?;
    let temperature = input::temperature(body)?;
    Ok(ResponsesRequest {
        request: ModelRequest { messages, tools },
        options: GenerateOptions {
            max_output_tokens,
            temperature,
            seed: input::seed(body)?,
            tool_calls,
            ..GenerateOptions::default()
        },
        stream: input::flag(body, "stream", "stream")?,
        echo: Echo {
            instructions,
            max_output_tokens,
            temperature,
            tool_choice: input::field(body, "tool_choice")
                .cloned()
                .unwrap_or_else(|| json!("auto")),
            tools: echo_tools,
        },
    })
}

/// One input item, appended to `messages`. Calls join the assistant message before them, so
/// that the template shows a turn's text and calls together, as the model wrote them.
fn parse_item(value: &Value, param: &str, messages: &mut Vec<Message>) -> Result<(), ApiError> {
    let item = input::object(value, param)?;
    // An item without a type is a message ("easy input message").
    let kind = match input::field(item, "type") {
        None => "message",
        Some(_) => input::string(item, "type", &format!("{param}.type"), "an item type")?,
    };
    match kind {
        "message" => {
            let role_param = format!("{param}.role");
            let role = input::string(item, "role", &role_param, "the author's role")?;
            let content = input::required_text(
                item,
                "content",
                &format!("{param}.content"),
                TEXT_PARTS,
                "a message needs text",
            )?;
            messages.push(match role {
                "user" => Message::user(content),
                "assistant" => Message::assistant(content, Vec::new()),
                "system" | "developer" => Message::system(content),
                other => {
                    return Err(ApiError::invalid(
                        role_param,
                        format!(
                            "the role `{other}` is not known; use user, assistant, system or \
                             developer"
                        ),
                    ));
                }
            });
        }
        "function_call" => {
            let call_id = input::string(
                item,
                "call_id",
                &format!("{param}.call_id"),
                "the call's id",
            )?;
            let name = input::string(
                item,
                "name",
                &format!("{param}.name"),
                "the function's name",
            )?;
            let arguments = match input::field(item, "arguments") {
                None => "{}".to_owned(),
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
            };
            let call = ToolCall {
                id: call_id.to_owned(),
                name: name.to_owned(),
                arguments,
            };
            match messages.last_mut() {
                Some(last) if last.role == Role::Assistant => last.tool_calls.push(call),
                _ => messages.push(Message::assistant("", vec![call])),
            }
        }
        "function_call_output" => {
            let call_param = format!("{param}.call_id");
            let call_id = input::string(
                item,
                "call_id",
                &call_param,
                "the id of the call this answers",
            )?;
            let output = input::required_text(
                item,
                "output",
                &format!("{param}.output"),
                TEXT_PARTS,
                "send the call's result as text",
            )?;
            messages.push(Message::tool(call_id, output));
        }
        // Reasoning from another model means nothing to this one.
        "reasoning" => {}
        other => {
            return Err(ApiError::invalid(
                format!("{param}.type"),
                format!(
                    "input items of type `{other}` are not supported; use message, \
                     function_call or function_call_output"
                ),
            ));
        }
    }
    Ok(())
}

/// `{"type": "function", "name", "description", "parameters"}`.
fn parse_tool(value: &Value, param: &str) -> Result<ToolSpec, ApiError> {
    let tool = input::object(value, param)?;
    let kind = input::string(tool, "type", &format!("{param}.type"), "\"function\"")?;
    if kind != "function" {
        return Err(ApiError::invalid(
            format!("{param}.type"),
            format!("tools of type `{kind}` are not supported; only \"function\" tools are"),
        ));
    }
    input::function_spec(tool, param)
}

/// What the response object holds besides its output.
struct Meta {
    id: String,
    created_at: u64,
    model: String,
    echo: Echo,
}

impl Meta {
    fn object(&self, status: &str, output: Vec<Value>) -> Value {
        let tools: Vec<Value> = self
            .echo
            .tools
            .iter()
            .map(|tool| {
                let mut tool = nightshift_model::responses_tool_json(tool);
                tool["strict"] = json!(false);
                tool
            })
            .collect();
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": null,
            "incomplete_details": null,
            "instructions": self.echo.instructions,
            "max_output_tokens": self.echo.max_output_tokens,
            "model": self.model,
            "output": output,
            "parallel_tool_calls": true,
            "previous_response_id": null,
            "store": false,
            "temperature": self.echo.temperature,
            "text": {"format": {"type": "text"}},
            "tool_choice": self.echo.tool_choice,
            "tools": tools,
            "usage": null,
        })
    }

    fn in_progress(&self) -> Value {
        self.object("in_progress", Vec::new())
    }

    /// The finished response: `completed`, or `incomplete` when the token limit cut it.
    fn response(&self, completion: &Completion, output: Vec<Value>) -> Value {
        let cut = completion.response.finish_reason.as_deref() == Some("length");
        let mut response = self.object(if cut { "incomplete" } else { "completed" }, output);
        if cut {
            response["incomplete_details"] = json!({"reason": "max_output_tokens"});
        }
        response["usage"] = usage_json(&completion.response.usage);
        response
    }
}

/// Streams OpenAI's event sequence: the message item (part added, text deltas, text done,
/// part done, item done) as the text comes, then each call item whole, then the response.
struct EventEncoder {
    meta: Meta,
    sequence: u64,
    /// The message item's id once its text has started.
    message_id: Option<String>,
}

impl EventEncoder {
    fn event(&mut self, kind: &str, mut data: Value) -> Event {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        Event::default().event(kind).data(data.to_string())
    }

    fn open_message(&mut self, out: &mut Vec<Event>) -> String {
        if let Some(id) = &self.message_id {
            return id.clone();
        }
        let id = super::new_id("msg_");
        // As OpenAI announces it: no content yet; the part is added by the next event.
        let mut item = message_item(&id, "", "in_progress");
        item["content"] = json!([]);
        out.push(self.event(
            "response.output_item.added",
            json!({"output_index": 0, "item": item}),
        ));
        out.push(self.event(
            "response.content_part.added",
            json!({"item_id": id, "output_index": 0, "content_index": 0, "part": text_part("")}),
        ));
        self.message_id = Some(id.clone());
        id
    }
}

impl Encoder for EventEncoder {
    fn text(&mut self, delta: &str, out: &mut Vec<Event>) {
        let id = self.open_message(out);
        out.push(self.event(
            "response.output_text.delta",
            json!({"item_id": id, "output_index": 0, "content_index": 0, "delta": delta, "logprobs": []}),
        ));
    }

    fn done(&mut self, result: Result<Completion, EngineError>, text: &str, out: &mut Vec<Event>) {
        let completion = match result {
            Ok(completion) => completion,
            Err(error) => {
                let error = ApiError::engine(error, "input").to_json();
                let mut response = self.meta.object("failed", Vec::new());
                response["error"] = json!({"code": "server_error", "message": error["message"]});
                out.push(self.event("response.failed", json!({"response": response})));
                return;
            }
        };
        let calls = &completion.response.message.tool_calls;
        let mut output = Vec::new();
        if self.message_id.is_some() || calls.is_empty() {
            let id = self.open_message(out);
            out.push(self.event(
                "response.output_text.done",
                json!({"item_id": id, "output_index": 0, "content_index": 0, "text": text, "logprobs": []}),
            ));
            out.push(self.event(
                "response.content_part.done",
                json!({"item_id": id, "output_index": 0, "content_index": 0, "part": text_part(text)}),
            ));
            let item = message_item(&id, text, "completed");
            out.push(self.event(
                "response.output_item.done",
                json!({"output_index": 0, "item": item}),
            ));
            output.push(item);
        }
        for call in calls {
            let index = output.len();
            let id = super::new_id("fc_");
            let mut item = call_item(&id, call, "in_progress");
            item["arguments"] = json!("");
            out.push(self.event(
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            ));
            out.push(self.event(
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": index, "delta": call.arguments}),
            ));
            out.push(self.event(
                "response.function_call_arguments.done",
                json!({"item_id": id, "output_index": index, "name": call.name, "arguments": call.arguments}),
            ));
            let item = call_item(&id, call, "completed");
            out.push(self.event(
                "response.output_item.done",
                json!({"output_index": index, "item": item}),
            ));
            output.push(item);
        }
        let response = self.meta.response(&completion, output);
        // OpenAI ends a response cut by the token limit with `response.incomplete`.
        let kind = if response["status"] == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        out.push(self.event(kind, json!({"response": response})));
    }
}

fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": []})
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "id": id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [text_part(text)],
    })
}

fn call_item(id: &str, call: &ToolCall, status: &str) -> Value {
    json!({
        "id": id,
        "type": "function_call",
        "status": status,
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
    })
}

fn usage_json(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total(),
    })
}
