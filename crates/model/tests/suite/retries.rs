//! What is retried, how long the client waits, and what it reports.

use std::time::{Duration, Instant};

use nightshift_model::{ModelError, ProviderConfig};
use nightshift_testkit::{ScriptedReply, ScriptedServer, error, rate_limited, sse_data, text};
use serde_json::json;

use super::{complete, config_for, user_request};

#[tokio::test]
async fn a_server_error_then_success_is_retried_and_recorded() {
    let server = ScriptedServer::start(vec![error(500, "upstream exploded"), text("recovered")]);
    let (result, notes) = complete(config_for(&server), &user_request("hi")).await;
    assert_eq!(result.unwrap().message.content, "recovered");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].attempt, 1);
    assert!(notes[0].error.contains("HTTP 500"), "{}", notes[0].error);
    assert!(
        notes[0].error.contains("upstream exploded"),
        "{}",
        notes[0].error
    );
    assert!(!notes[0].error.contains("hint:"), "{}", notes[0].error);
    // Base 10 ms, first retry: between half and all of it.
    assert!(
        notes[0].wait <= Duration::from_millis(10),
        "{:?}",
        notes[0].wait
    );
    assert_eq!(server.requests().len(), 2);
    assert_eq!(server.requests()[0], server.requests()[1]);
}

#[tokio::test]
async fn retry_after_on_a_429_is_honoured() {
    let server = ScriptedServer::start(vec![rate_limited(1), text("finally")]);
    let started = Instant::now();
    let (result, notes) = complete(config_for(&server), &user_request("hi")).await;
    assert_eq!(result.unwrap().message.content, "finally");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].wait, Duration::from_secs(1));
    assert!(notes[0].error.contains("429"), "{}", notes[0].error);
}

#[tokio::test]
async fn a_malformed_stream_then_success_is_retried() {
    let server = ScriptedServer::start(vec![
        ScriptedReply::RawSse("data: {\"choices\": [{\"delta\": {\"content\": \"Hel\n\n".into()),
        text("Hello"),
    ]);
    let (result, notes) = complete(config_for(&server), &user_request("hi")).await;
    assert_eq!(result.unwrap().message.content, "Hello");
    assert_eq!(notes.len(), 1);
    assert!(notes[0].error.contains("malformed"), "{}", notes[0].error);
}

#[tokio::test]
async fn a_stream_that_ends_before_done_is_retried() {
    let truncated = sse_data(
        &json!({"choices": [{"index": 0, "delta": {"content": "half an ans"}, "finish_reason": null}]}),
    );
    let server =
        ScriptedServer::start(vec![ScriptedReply::RawSse(truncated), text("whole answer")]);
    let (result, notes) = complete(config_for(&server), &user_request("hi")).await;
    assert_eq!(result.unwrap().message.content, "whole answer");
    assert_eq!(notes.len(), 1);
    assert!(notes[0].error.contains("[DONE]"), "{}", notes[0].error);
}

#[tokio::test]
async fn a_stream_that_stalls_past_the_idle_timeout_is_retried() {
    let first = sse_data(
        &json!({"choices": [{"index": 0, "delta": {"content": "thinking"}, "finish_reason": null}]}),
    );
    let server = ScriptedServer::start(vec![
        ScriptedReply::RawSseChunks(vec![
            (Duration::ZERO, first.into_bytes()),
            (Duration::from_secs(30), b"data: [DONE]\n\n".to_vec()),
        ]),
        text("fresh answer"),
    ]);
    let config = ProviderConfig {
        idle_timeout: Duration::from_millis(300),
        ..config_for(&server)
    };
    let started = Instant::now();
    let (result, notes) = complete(config, &user_request("hi")).await;
    assert_eq!(result.unwrap().message.content, "fresh answer");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].error.contains("sent nothing for 0.3s"),
        "{}",
        notes[0].error
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = ScriptedServer::start(vec![ScriptedReply::Delayed(
        Duration::from_secs(30),
        Box::new(text("too late")),
    )]);
    let config = ProviderConfig {
        idle_timeout: Duration::from_millis(200),
        max_retries: 0,
        stream: false,
        ..config_for(&server)
    };
    let (result, notes) = complete(config, &user_request("hi")).await;
    let err = result.unwrap_err();
    assert!(matches!(err, ModelError::IdleTimeout { .. }), "{err}");
    assert!(err.to_string().contains("raise idle_timeout"), "{err}");
    assert!(notes.is_empty());
}

#[tokio::test]
async fn exhausted_retries_return_the_last_error() {
    let server = ScriptedServer::start(vec![
        error(500, "first failure"),
        error(502, "second failure"),
        ScriptedReply::Error {
            status: 503,
            body: "third failure".into(),
            retry_after: Some(0),
        },
        text("never reached"),
    ]);
    let config = ProviderConfig {
        max_retries: 2,
        ..config_for(&server)
    };
    let (result, notes) = complete(config, &user_request("hi")).await;
    let err = result.unwrap_err();
    assert!(
        matches!(err, ModelError::Server { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("third failure"), "{err}");
    assert_eq!(
        notes.iter().map(|note| note.attempt).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.remaining(), 1);
}

#[tokio::test]
async fn an_exhausted_script_surfaces_its_message() {
    let server = ScriptedServer::start(vec![text("only one")]);
    let config = ProviderConfig {
        max_retries: 1,
        ..config_for(&server)
    };
    let (first, _) = complete(config.clone(), &user_request("one")).await;
    assert_eq!(first.unwrap().message.content, "only one");
    let (second, notes) = complete(config, &user_request("two")).await;
    let err = second.unwrap_err();
    assert!(
        err.to_string()
            .contains("scripted server: script exhausted after 1 replies"),
        "{err}"
    );
    assert_eq!(notes.len(), 1);
}

#[tokio::test]
async fn a_malformed_line_in_an_otherwise_complete_stream_is_skipped_and_reported() {
    let stream = [
        sse_data(&json!({"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}]})),
        "data: this line is not json\n\n".to_owned(),
        sse_data(&json!({"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]})),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    let server = ScriptedServer::start(vec![ScriptedReply::RawSse(stream)]);
    let (result, notes) = complete(config_for(&server), &user_request("hi")).await;
    let response = result.unwrap();
    assert_eq!(response.message.content, "Hello");
    assert!(notes.is_empty(), "no retry for one bad line: {notes:?}");
    assert_eq!(response.skipped_lines.len(), 1);
    assert!(
        response.skipped_lines[0].contains("this line is not json"),
        "{:?}",
        response.skipped_lines
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_stream_of_garbage_is_not_accepted_line_by_line() {
    let garbage = "data: nope\n\n".repeat(50);
    let server = ScriptedServer::start(vec![ScriptedReply::RawSse(garbage), text("whole answer")]);
    let (result, notes) = complete(config_for(&server), &user_request("hi")).await;
    assert_eq!(result.unwrap().message.content, "whole answer");
    assert_eq!(notes.len(), 1, "the garbage attempt was retried");
}
