//! Test support for Nightshift: a scripted model server that speaks the OpenAI Chat
//! Completions wire format over real HTTP, and fixture git repositories.
//!
//! [`ScriptedServer`] answers each `POST /v1/chat/completions` with the next [`ScriptedReply`]
//! of its script (as SSE when the request asks for `stream: true`, as a JSON body otherwise),
//! records every request body for assertions, and answers a clear HTTP 500 once the script is
//! exhausted. [`fixture_repo`] builds a small committed repository with a fixed author and date.
//!
//! This crate is for tests only: it panics with a descriptive message instead of returning
//! errors, and it is not a model server anyone should run for real.

mod fixture;
mod reply;
mod server;

pub use fixture::fixture_repo;
pub use reply::{
    ScriptedReply, delayed, error, rate_limited, sse_data, text, text_and_tools, tool, tools,
};
pub use server::{RequestTiming, ScriptedServer};
