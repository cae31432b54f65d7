//! The sandbox's one integration test binary: real commands under real bubblewrap.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions fail the test by panicking on bad setup"
)]

mod suite;
