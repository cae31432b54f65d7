//! The one integration test binary of nightshift-tools (see tests/suite).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions fail the test by panicking on bad setup"
)]

mod suite;
