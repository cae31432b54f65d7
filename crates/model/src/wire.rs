//! Pieces every wire format shares: token estimates for servers that report no usage,
//! argument and id normalisation, and short error texts.

use nightshift_protocol::Message;
use serde_json::Value;

use crate::ModelRequest;

/// About four characters per token, rounded up.
pub(crate) fn estimate_tokens(chars: usize) -> u64 {
    chars.div_ceil(4) as u64
}

pub(crate) fn message_chars(message: &Message) -> usize {
    message.content.chars().count()
        + message
            .tool_calls
            .iter()
            .map(|call| call.name.chars().count() + call.arguments.chars().count())
            .sum::<usize>()
}

/// An estimate of a request's input tokens: its messages and its tool definitions.
pub(crate) fn estimate_request_tokens(request: &ModelRequest) -> u64 {
    let messages: usize = request.messages.iter().map(message_chars).sum();
    let tools: usize = request
        .tools
        .iter()
        .map(|tool| {
            tool.name.chars().count()
                + tool.description.chars().count()
                + tool.parameters.to_string().chars().count()
        })
        .sum();
    estimate_tokens(messages + tools)
}

pub(crate) fn estimate_message_tokens(message: &Message) -> u64 {
    estimate_tokens(message_chars(message))
}

/// A model that calls a tool without arguments sometimes sends an empty string; the tools
/// expect a JSON object.
pub(crate) fn normalize_arguments(arguments: String) -> String {
    if arguments.trim().is_empty() {
        "{}".to_owned()
    } else {
        arguments
    }
}

/// Servers that omit a tool call's id still need one for the tool message that answers it.
pub(crate) fn call_id_or_generated(id: Option<String>, index: usize) -> String {
    match id {
        Some(id) if !id.is_empty() => id,
        _ => format!("call_{index}"),
    }
}

/// The readable part of an OpenAI-style error object (`{"message": ...}`), else the JSON.
///
/// A machine-readable `code` (`context_length_exceeded`, ...) is kept next to the message when
/// the message does not already name it: it is what [`crate::ModelError::is_context_length`]
/// and a reader of the logs can rely on when the wording changes.
pub(crate) fn error_message(error: &Value) -> String {
    let Some(message) = error.get("message").and_then(Value::as_str) else {
        return error.to_string();
    };
    match error.get("code").and_then(Value::as_str) {
        Some(code) if !code.is_empty() && !message.contains(code) => {
            format!("{message} (code: {code})")
        }
        _ => message.to_owned(),
    }
}

/// At most a few hundred characters of `bytes`, for error messages.
pub(crate) fn snippet(bytes: &[u8]) -> String {
    const MAX_CHARS: usize = 300;
    let lossy = String::from_utf8_lossy(bytes);
    // One line, so error messages (and their `hint:` line) stay readable.
    let text = lossy.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= MAX_CHARS {
        text
    } else {
        let cut: String = text.chars().take(MAX_CHARS).collect();
        format!("{cut}…")
    }
}

/// Usage from what the server reported, estimating what it left out (about four characters
/// per token) so budgets never see a free request.
pub(crate) fn usage_or_estimate(
    input: Option<u64>,
    output: Option<u64>,
    cached: Option<u64>,
    request: &ModelRequest,
    message: &Message,
) -> nightshift_protocol::Usage {
    nightshift_protocol::Usage {
        input_tokens: input.unwrap_or_else(|| estimate_request_tokens(request)),
        output_tokens: output.unwrap_or_else(|| estimate_message_tokens(message)),
        cached_tokens: cached.unwrap_or(0),
    }
}

/// An SSE data line as JSON; a line that is not JSON is a malformed stream (the transport may
/// skip it and record it).
pub(crate) fn data_json(data: &str) -> Result<serde_json::Value, crate::ModelError> {
    serde_json::from_str(data).map_err(|e| crate::ModelError::MalformedStream {
        detail: format!(
            "a data line is not JSON ({e}): {}",
            snippet(data.as_bytes())
        ),
    })
}

/// An event's type: the JSON's `type` field, else the SSE `event:` name.
pub(crate) fn event_type(value: &serde_json::Value, event: &crate::sse::SseEvent) -> String {
    value["type"]
        .as_str()
        .or(event.event.as_deref())
        .unwrap_or_default()
        .to_owned()
}
