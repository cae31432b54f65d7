mod engine;
mod openai;
mod pull;

use std::path::PathBuf;

/// The GGUF model the engine and endpoint tests run against (`NIGHTSHIFT_TEST_MODEL`). Without
/// it they skip loudly on a developer machine and fail in CI (`CI` set), where it is required.
pub fn model_path() -> Option<PathBuf> {
    match std::env::var_os("NIGHTSHIFT_TEST_MODEL") {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "NIGHTSHIFT_TEST_MODEL={} is not a file",
                path.display()
            );
            Some(path)
        }
        _ if std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false") => panic!(
            "the real-model tests need a GGUF model in CI: set NIGHTSHIFT_TEST_MODEL to its path \
             (e.g. qwen2.5-coder-1.5b-instruct-q4_k_m.gguf from `nightshift model pull`)"
        ),
        _ => {
            eprintln!(
                "\n*** SKIPPED: real-model test; set NIGHTSHIFT_TEST_MODEL=/path/to/model.gguf to run it ***\n"
            );
            None
        }
    }
}
