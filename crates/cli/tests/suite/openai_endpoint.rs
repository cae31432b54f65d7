//! `nightshift serve` with the embedded model: its OpenAI-compatible endpoint is mounted and
//! sits behind the daemon's token. Needs a real model (`NIGHTSHIFT_TEST_MODEL`; skipped loudly
//! without it, failing in CI); the endpoint itself is tested in depth in nightshift-embedded.

use std::path::PathBuf;

use serde_json::json;

use super::daemon::Daemon;
use super::harness::World;
use super::http;

fn test_model() -> Option<PathBuf> {
    match std::env::var_os("NIGHTSHIFT_TEST_MODEL") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ if std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false") => {
            panic!("this test needs the embedded model in CI: set NIGHTSHIFT_TEST_MODEL")
        }
        _ => {
            eprintln!(
                "\n*** SKIPPED: the daemon's OpenAI endpoint test; set \
                 NIGHTSHIFT_TEST_MODEL=/path/to/model.gguf to run it ***\n"
            );
            None
        }
    }
}

#[test]
fn the_embedded_models_openai_endpoint_needs_the_daemons_token() {
    let Some(model) = test_model() else {
        return;
    };
    let file_name = model.file_name().unwrap().to_str().unwrap();
    let catalog = nightshift_embedded::catalog::MODELS
        .iter()
        .find(|m| m.file_name == file_name)
        .unwrap_or_else(|| panic!("NIGHTSHIFT_TEST_MODEL must be a catalog model: {file_name}"));
    // Installed the way `model pull` leaves it (the file and its verified marker), linked
    // rather than copied: it is a gigabyte.
    let world = World::new(&[("a.txt", "a\n")]);
    let models = world.home().join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::os::unix::fs::symlink(&model, models.join(file_name)).unwrap();
    std::fs::write(
        models.join(format!("{file_name}.sha256")),
        format!("{}  {file_name}\n", catalog.sha256),
    )
    .unwrap();
    let daemon = Daemon::start(
        &world,
        &[
            "--workers",
            "1",
            "--model",
            catalog.name,
            "--context-window",
            "2048",
        ],
    );

    let body = json!({"model": "any", "messages": [{"role": "user", "content": "Count from 1 to 20."}], "max_tokens": 2})
        .to_string();
    for headers in [vec![], vec!["Authorization: Bearer not-a-token"]] {
        for (method, path) in [
            ("POST", "/v1/chat/completions"),
            ("POST", "/v1/responses"),
            ("GET", "/v1/models"),
        ] {
            let response =
                http::request(daemon.addr, method, path, &headers, Some(body.as_bytes()));
            assert_eq!(response.status, 401, "{method} {path} {headers:?}");
        }
    }

    let auth = format!("Authorization: Bearer {}", daemon.token);
    let models = http::request(daemon.addr, "GET", "/v1/models", &[&auth], None);
    assert_eq!(models.status, 200, "{}", models.body);
    let stem = file_name.trim_end_matches(".gguf");
    assert_eq!(models.json()["data"][0]["id"], stem);

    let completion = http::request(
        daemon.addr,
        "POST",
        "/v1/chat/completions",
        &[&auth, "Content-Type: application/json"],
        Some(body.as_bytes()),
    );
    assert_eq!(completion.status, 200, "{}", completion.body);
    let completion = completion.json();
    assert_eq!(completion["model"], stem);
    assert_eq!(completion["usage"]["completion_tokens"], 2, "{completion}");
    let status = daemon.stop();
    assert!(status.success(), "{status:?}");
}
