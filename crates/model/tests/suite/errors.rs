//! Errors that are not retried, and what their messages tell the user.

use std::time::Duration;

use nightshift_model::{ChatCompletionsClient, ModelError, ProviderConfig};
use nightshift_testkit::{ScriptedServer, error, text};
use serde_json::json;

use super::{complete, config_for, user_request};

#[tokio::test]
async fn unauthorized_is_not_retried_and_names_the_key_setting() {
    let body = json!({"error": {"message": "Incorrect API key provided: sk-wrong-key-123.", "type": "invalid_request_error"}});
    let server = ScriptedServer::start(vec![error(401, &body.to_string()), text("unused")]);
    let config = ProviderConfig {
        api_key: Some("sk-wrong-key-123".into()),
        ..config_for(&server)
    };
    let (result, notes) = complete(config, &user_request("hi")).await;
    let err = result.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, ModelError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert!(
        message.contains("check NIGHTSHIFT_API_KEY / api_key in config"),
        "{message}"
    );
    assert!(message.contains("Incorrect API key provided"), "{message}");
    // The server echoed the key; the error must not.
    assert!(!message.contains("sk-wrong-key-123"), "{message}");
    assert!(notes.is_empty());
    assert_eq!(server.remaining(), 1, "a 401 must not be retried");
}

#[tokio::test]
async fn other_client_errors_are_not_retried() {
    let server = ScriptedServer::start(vec![
        error(400, "{\"error\":{\"message\":\"tools are not supported\"}}"),
        text("unused"),
    ]);
    let (result, notes) = complete(config_for(&server), &user_request("hi")).await;
    let err = result.unwrap_err();
    assert!(
        matches!(err, ModelError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("tools are not supported"), "{err}");
    assert!(notes.is_empty());
    assert_eq!(server.remaining(), 1);
}

#[tokio::test]
async fn not_found_points_at_base_url_and_model() {
    let server = ScriptedServer::start(vec![text("unused")]);
    let config = ProviderConfig {
        // Missing the /v1 suffix: the server answers 404 for /chat/completions.
        base_url: server.base_url().trim_end_matches("/v1").to_owned(),
        ..config_for(&server)
    };
    let (result, notes) = complete(config, &user_request("hi")).await;
    let err = result.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ModelError::NotFound { .. }), "{err:?}");
    assert!(message.contains("check base_url"), "{message}");
    assert!(message.contains("`test-model`"), "{message}");
    assert!(notes.is_empty());
}

#[tokio::test]
async fn connection_refused_asks_whether_the_server_runs() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base_url = format!("http://127.0.0.1:{port}/v1");
    let config = ProviderConfig {
        base_url: base_url.clone(),
        max_retries: 1,
        retry_base_delay: Duration::from_millis(1),
        ..ProviderConfig::default()
    };
    let (result, notes) = complete(config, &user_request("hi")).await;
    let err = result.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ModelError::Connect { .. }), "{err:?}");
    assert!(
        message.contains(&format!("is the server at {base_url} running?")),
        "{message}"
    );
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert_eq!(notes.len(), 1, "connection errors are retried");
}

#[test]
fn bad_configs_are_refused_with_a_reason() {
    let refuse = |config: ProviderConfig| match ChatCompletionsClient::new(config) {
        Err(ModelError::Config(reason)) => reason,
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("config accepted"),
    };
    let reason = refuse(ProviderConfig {
        base_url: "api.openai.com/v1".into(),
        ..ProviderConfig::default()
    });
    assert!(
        reason.contains("must start with http:// or https://"),
        "{reason}"
    );
    let reason = refuse(ProviderConfig {
        model: " ".into(),
        ..ProviderConfig::default()
    });
    assert!(reason.contains("model is empty"), "{reason}");
    let reason = refuse(ProviderConfig {
        api_key: Some("sk-abc\u{7}def".into()),
        ..ProviderConfig::default()
    });
    assert!(reason.contains("api_key"), "{reason}");
    assert!(!reason.contains("sk-abc"), "{reason}");
}

#[test]
fn the_endpoint_ignores_a_trailing_slash() {
    let client = ChatCompletionsClient::new(ProviderConfig {
        base_url: "https://api.example.invalid/v1/".into(),
        ..ProviderConfig::default()
    })
    .unwrap();
    assert_eq!(
        client.endpoint(),
        "https://api.example.invalid/v1/chat/completions"
    );
}

/// A conversation too long for the window fails at once, recognisably, on every wire format,
/// whether the server says so with an HTTP status or inside the stream: the agent compacts
/// the conversation instead of sending the same request again.
#[tokio::test]
async fn context_length_errors_are_recognised_and_not_retried() {
    use nightshift_model::{AnthropicClient, ModelClient, ResponsesClient};
    use nightshift_testkit::ScriptedReply;

    fn sse(value: serde_json::Value) -> String {
        format!(
            "event: {}\ndata: {value}\n\n",
            value["type"].as_str().unwrap()
        )
    }
    let openai_400 = json!({"error": {
        "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9100 tokens.",
        "type": "invalid_request_error",
        "code": "context_length_exceeded"
    }});
    let responses_failed = sse(json!({"type": "response.failed", "response": {
        "id": "resp_1", "status": "failed",
        "error": {"code": "context_length_exceeded", "message": "Your input exceeds the context window of this model."}
    }}));
    let anthropic_error = sse(json!({"type": "error", "error": {
        "type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"
    }}));
    let llama_400 = json!({"error": {
        "code": 400, "type": "exceed_context_size_error",
        "message": "the request exceeds the available context size, try increasing it"
    }});
    type Make = fn(nightshift_model::ProviderConfig) -> Box<dyn ModelClient>;
    let chat: Make = |config| Box::new(ChatCompletionsClient::new(config).unwrap());
    let responses: Make = |config| Box::new(ResponsesClient::new(config).unwrap());
    let anthropic: Make = |config| Box::new(AnthropicClient::new(config).unwrap());
    let cases: Vec<(&str, Make, ScriptedReply)> = vec![
        ("chat 400", chat, error(400, &openai_400.to_string())),
        ("llama.cpp 400", chat, error(400, &llama_400.to_string())),
        (
            "responses 400",
            responses,
            error(400, &openai_400.to_string()),
        ),
        (
            "responses stream",
            responses,
            ScriptedReply::RawSse(responses_failed),
        ),
        (
            "anthropic stream",
            anthropic,
            ScriptedReply::RawSse(anthropic_error),
        ),
    ];
    for (name, make, reply) in cases {
        let server = ScriptedServer::start(vec![reply, text("unused")]);
        let client = make(config_for(&server));
        let (result, notes) = super::complete_with(client.as_ref(), &user_request("hi")).await;
        let err = result.unwrap_err();
        assert!(err.is_context_length(), "{name}: {err:?}");
        assert!(notes.is_empty(), "{name}: retried: {notes:?}");
        assert_eq!(
            server.remaining(),
            1,
            "{name}: the same request was sent again"
        );
    }
}
