//! One integration-test binary for the crate.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::print_stderr)]

mod suite;
