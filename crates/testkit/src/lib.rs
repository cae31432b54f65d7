//! Test support for Nightshift: a scripted model server that speaks the OpenAI Chat
//! Completions, OpenAI Responses and Anthropic Messages wire formats over real HTTP, and
//! fixture git repositories.
//!
//! [`ScriptedServer`] answers each `POST /v1/chat/completions`, `POST /v1/responses` or
//! `POST /v1/messages` with the next [`ScriptedReply`] of its one script, rendered in the wire
//! format of the path it was asked on (as SSE when the request asks for `stream: true`, as a
//! JSON body otherwise), records every request body and path for assertions, and answers a
//! clear HTTP 500 once the script is exhausted. [`fixture_repo`] builds a small committed repository with a fixed author and date.
//!
//! This crate is for tests only: it panics with a descriptive message instead of returning
//! errors, and it is not a model server anyone should run for real.

mod fixture;
mod formats;
mod reply;
mod server;

pub use fixture::fixture_repo;
pub use reply::{
    ScriptedReply, delayed, error, rate_limited, sse_data, text, text_and_tools, tool, tools,
};
pub use server::{RequestTiming, ScriptedServer};
