//! The model crate's integration tests: a real client against a scripted server over HTTP.

// Helpers outside #[test] functions panic on failure by design, like the tests themselves.
#![allow(clippy::unwrap_used)]

mod suite;
