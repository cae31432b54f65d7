// The contract tests are plain functions called by generated #[test]s, so clippy's
// allowance for unwrap in tests does not reach them; a test should panic on the unexpected.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

mod suite;
