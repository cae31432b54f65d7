//! The testkit's integration tests: the scripted server over real HTTP, real git fixtures.

// Helpers outside #[test] functions panic on failure by design, like the tests themselves.
#![allow(clippy::unwrap_used)]

mod suite;
