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
