//! Shared helpers for the model tests.

mod anthropic;
mod chat;
mod errors;
mod responses;
mod retries;
mod text_tools;

use std::sync::Mutex;
use std::time::Duration;

use nightshift_model::{
    ChatCompletionsClient, ModelClient, ModelError, ModelRequest, ModelResponse, ProviderConfig,
    RetryNote,
};
use nightshift_protocol::{Message, ToolSpec};
use nightshift_testkit::ScriptedServer;
use serde_json::json;

/// A config pointing at `server`, with retries fast enough for tests.
pub fn config_for(server: &ScriptedServer) -> ProviderConfig {
    ProviderConfig {
        base_url: server.base_url(),
        model: "test-model".into(),
        idle_timeout: Duration::from_secs(10),
        retry_base_delay: Duration::from_millis(10),
        ..ProviderConfig::default()
    }
}

pub fn user_request(text: &str) -> ModelRequest {
    ModelRequest {
        messages: vec![Message::system("You are terse."), Message::user(text)],
        tools: Vec::new(),
    }
}

/// Runs one completion, collecting the retry notes it reported.
pub async fn complete(
    config: ProviderConfig,
    request: &ModelRequest,
) -> (Result<ModelResponse, ModelError>, Vec<RetryNote>) {
    let client = ChatCompletionsClient::new(config).expect("valid config");
    complete_with(&client, request).await
}

/// Runs one completion with `client`, collecting the retry notes it reported.
pub async fn complete_with(
    client: &dyn ModelClient,
    request: &ModelRequest,
) -> (Result<ModelResponse, ModelError>, Vec<RetryNote>) {
    let notes = Mutex::new(Vec::new());
    let record = |note: &RetryNote| notes.lock().unwrap().push(note.clone());
    let result = client.complete(request, &record).await;
    (result, notes.into_inner().unwrap())
}

/// A tool offered to the model, with a one-property schema.
pub fn tool_spec(name: &str) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: format!("The {name} tool."),
        parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
    }
}

/// The value of header `name` in one recorded request's headers.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}
