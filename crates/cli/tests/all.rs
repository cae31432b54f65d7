//! End-to-end tests of the `nightshift` binary: real git repositories, real bubblewrap, real
//! HTTP to the scripted model server.

#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "tests run the binary under test and git directly, and panic on failure"
)]

mod suite;
