//! What the scripted server answers, and how each reply is rendered on the Chat Completions
//! wire format (SSE chunks or one JSON body); `formats` renders the other wire formats.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

/// One scripted answer to one request, rendered in the wire format of the path it came on
/// (`/v1/chat/completions`, `/v1/responses` or `/v1/messages`).
#[derive(Clone, Debug, PartialEq)]
pub enum ScriptedReply {
    /// Answered as SSE if the request has `stream: true`, else as a JSON body. Usage included.
    Text(String),
    /// Tool calls with ids `call_1`, `call_2`, ... numbered across the whole server. A
    /// `Value::String` argument is sent verbatim as the arguments text (to script malformed
    /// arguments); any other value is serialized as JSON.
    ToolCalls(Vec<(String, Value)>),
    /// Some text followed by tool calls, as models often do.
    TextAndToolCalls(String, Vec<(String, Value)>),
    /// An HTTP error with this body, and a `Retry-After: <seconds>` header when given.
    Error {
        status: u16,
        body: String,
        retry_after: Option<u64>,
    },
    /// Raw SSE body sent verbatim with content-type `text/event-stream` (for malformed-stream
    /// tests).
    RawSse(String),
    /// Raw SSE body sent in pieces of bytes, each after its delay (for idle-timeout tests
    /// and for lines, or even characters, split across network reads).
    RawSseChunks(Vec<(Duration, Vec<u8>)>),
    /// Waits this long after the request arrives, then answers with the inner reply.
    Delayed(Duration, Box<ScriptedReply>),
}

/// A plain text answer.
pub fn text(content: &str) -> ScriptedReply {
    ScriptedReply::Text(content.to_owned())
}

/// A single tool call.
pub fn tool(name: &str, args: Value) -> ScriptedReply {
    ScriptedReply::ToolCalls(vec![(name.to_owned(), args)])
}

/// Several tool calls in one answer.
pub fn tools(calls: &[(&str, Value)]) -> ScriptedReply {
    ScriptedReply::ToolCalls(owned_calls(calls))
}

/// Text followed by tool calls in one answer.
pub fn text_and_tools(content: &str, calls: &[(&str, Value)]) -> ScriptedReply {
    ScriptedReply::TextAndToolCalls(content.to_owned(), owned_calls(calls))
}

/// An HTTP error without `Retry-After`.
pub fn error(status: u16, body: &str) -> ScriptedReply {
    ScriptedReply::Error {
        status,
        body: body.to_owned(),
        retry_after: None,
    }
}

/// An HTTP 429 with `Retry-After: <seconds>` and an OpenAI-style error body.
pub fn rate_limited(retry_after_secs: u64) -> ScriptedReply {
    ScriptedReply::Error {
        status: 429,
        body: json!({"error": {"message": "Rate limit reached (scripted)", "type": "rate_limit_exceeded"}})
            .to_string(),
        retry_after: Some(retry_after_secs),
    }
}

/// `reply` after `wait`.
pub fn delayed(wait: Duration, reply: ScriptedReply) -> ScriptedReply {
    ScriptedReply::Delayed(wait, Box::new(reply))
}

/// One SSE event carrying `value` as its data line: `data: {...}\n\n`. For building
/// [`ScriptedReply::RawSse`] bodies.
pub fn sse_data(value: &Value) -> String {
    format!("data: {value}\n\n")
}

fn owned_calls(calls: &[(&str, Value)]) -> Vec<(String, Value)> {
    calls
        .iter()
        .map(|(name, args)| ((*name).to_owned(), args.clone()))
        .collect()
}

/// The wire format a request was made in, from its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    ChatCompletions,
    Responses,
    Anthropic,
}

/// What the request asked for, as far as rendering a reply cares.
pub(crate) struct RequestInfo {
    pub format: Format,
    pub stream: bool,
    pub include_usage: bool,
    pub model: String,
    pub prompt_tokens: u64,
}

impl RequestInfo {
    pub fn from_body(format: Format, body: &Value, raw_len: usize) -> Self {
        RequestInfo {
            format,
            stream: body["stream"].as_bool().unwrap_or(false),
            include_usage: body["stream_options"]["include_usage"]
                .as_bool()
                .unwrap_or(false),
            model: body["model"].as_str().unwrap_or("scripted").to_owned(),
            prompt_tokens: estimate_tokens(raw_len),
        }
    }
}

/// One scripted tool call as sent: id, name, arguments text.
pub(crate) type Call = (String, String, String);

/// An HTTP answer ready to send: the body as pieces, each sent after its delay.
pub(crate) struct Rendered {
    pub status: u16,
    pub content_type: &'static str,
    pub retry_after: Option<u64>,
    pub chunks: Vec<(Duration, Vec<u8>)>,
}

/// Pause between generated SSE events, so they leave as separate network writes like a
/// real server's tokens do.
pub(crate) const EVENT_GAP: Duration = Duration::from_millis(1);

/// Renders `reply` (never `Delayed`: the server unwraps that) for `request`.
pub(crate) fn render(
    reply: ScriptedReply,
    request: &RequestInfo,
    call_ids: &AtomicU64,
) -> Rendered {
    match reply {
        ScriptedReply::Text(content) => completion(content, Vec::new(), request, call_ids),
        ScriptedReply::ToolCalls(calls) => completion(String::new(), calls, request, call_ids),
        ScriptedReply::TextAndToolCalls(content, calls) => {
            completion(content, calls, request, call_ids)
        }
        ScriptedReply::Error {
            status,
            body,
            retry_after,
        } => {
            let content_type = if serde_json::from_str::<Value>(&body).is_ok() {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            Rendered {
                status,
                content_type,
                retry_after,
                chunks: vec![(Duration::ZERO, body.into_bytes())],
            }
        }
        ScriptedReply::RawSse(body) => Rendered {
            status: 200,
            content_type: "text/event-stream",
            retry_after: None,
            chunks: vec![(Duration::ZERO, body.into_bytes())],
        },
        ScriptedReply::RawSseChunks(chunks) => Rendered {
            status: 200,
            content_type: "text/event-stream",
            retry_after: None,
            chunks,
        },
        ScriptedReply::Delayed(_, inner) => render(*inner, request, call_ids),
    }
}

fn completion(
    content: String,
    calls: Vec<(String, Value)>,
    request: &RequestInfo,
    call_ids: &AtomicU64,
) -> Rendered {
    let calls: Vec<Call> = calls
        .into_iter()
        .map(|(name, args)| {
            let id = format!("call_{}", call_ids.fetch_add(1, Ordering::SeqCst) + 1);
            let arguments = match args {
                Value::String(raw) => raw,
                other => other.to_string(),
            };
            (id, name, arguments)
        })
        .collect();
    match request.format {
        Format::ChatCompletions => {}
        Format::Responses => return crate::formats::responses(&content, &calls, request),
        Format::Anthropic => return crate::formats::anthropic(&content, &calls, request),
    }
    let finish_reason = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    let output_tokens = output_tokens(&content, &calls);
    let usage = json!({
        "prompt_tokens": request.prompt_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": request.prompt_tokens + output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
    });
    if request.stream {
        stream_completion(&content, &calls, finish_reason, usage, request)
    } else {
        let tool_calls: Vec<Value> = calls
            .iter()
            .map(|(id, name, args)| {
                json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}})
            })
            .collect();
        let mut message = json!({"role": "assistant", "content": content});
        if !tool_calls.is_empty() {
            if content.is_empty() {
                message["content"] = Value::Null;
            }
            message["tool_calls"] = Value::Array(tool_calls);
        }
        let body = json!({
            "id": "chatcmpl-scripted",
            "object": "chat.completion",
            "created": 0,
            "model": request.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": usage,
        });
        Rendered {
            status: 200,
            content_type: "application/json",
            retry_after: None,
            chunks: vec![(Duration::ZERO, body.to_string().into_bytes())],
        }
    }
}

fn stream_completion(
    content: &str,
    calls: &[Call],
    finish_reason: &str,
    usage: Value,
    request: &RequestInfo,
) -> Rendered {
    let chunk = |choices: Value| {
        json!({
            "id": "chatcmpl-scripted",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": request.model,
            "choices": choices,
        })
    };
    let delta = |delta: Value| chunk(json!([{"index": 0, "delta": delta, "finish_reason": null}]));
    let mut events = vec![delta(json!({"role": "assistant", "content": ""}))];
    for piece in pieces(content, 3) {
        events.push(delta(json!({"content": piece})));
    }
    for (index, (id, name, arguments)) in calls.iter().enumerate() {
        // As real servers do: id and name first with empty arguments, then arguments in pieces.
        events.push(delta(json!({"tool_calls": [{
            "index": index, "id": id, "type": "function",
            "function": {"name": name, "arguments": ""},
        }]})));
        for piece in pieces(arguments, 3) {
            events.push(delta(
                json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
            ));
        }
    }
    events.push(chunk(
        json!([{"index": 0, "delta": {}, "finish_reason": finish_reason}]),
    ));
    if request.include_usage {
        let mut last = chunk(json!([]));
        last["usage"] = usage;
        events.push(last);
    }
    let mut chunks: Vec<(Duration, Vec<u8>)> = events
        .iter()
        .map(|event| (EVENT_GAP, sse_data(event).into_bytes()))
        .collect();
    chunks.push((EVENT_GAP, b"data: [DONE]\n\n".to_vec()));
    Rendered {
        status: 200,
        content_type: "text/event-stream",
        retry_after: None,
        chunks,
    }
}

/// The scripted answer's output tokens, estimated from its text and calls.
pub(crate) fn output_tokens(content: &str, calls: &[Call]) -> u64 {
    let chars: usize = content.len()
        + calls
            .iter()
            .map(|(_, name, args)| name.len() + args.len())
            .sum::<usize>();
    estimate_tokens(chars)
}

/// Splits `s` into at most `n` pieces of about equal length, on character boundaries.
pub(crate) fn pieces(s: &str, n: usize) -> Vec<&str> {
    let chars = s.chars().count();
    if chars == 0 {
        return Vec::new();
    }
    let per_piece = chars.div_ceil(n.max(1));
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let cut = rest
            .char_indices()
            .nth(per_piece)
            .map_or(rest.len(), |(i, _)| i);
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out
}

/// Roughly four bytes per token, never zero for non-empty text.
fn estimate_tokens(bytes: usize) -> u64 {
    bytes.div_ceil(4) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_text_on_char_boundaries() {
        let s = "héllo ✓ wörld";
        let parts = pieces(s, 3);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), s);
        assert!(pieces("", 3).is_empty());
        assert_eq!(pieces("ab", 3), vec!["a", "b"]);
    }
}
