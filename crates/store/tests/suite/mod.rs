//! One set of contract tests, each run against SQLite and PostgreSQL (see `backend`), plus
//! the tests that only make sense for one backend.

#[macro_use]
mod backend;
mod events;
mod listing;
mod postgres;
mod queue;
mod sqlite;
mod tasks;
mod tokens;

use nightshift_protocol::{Budget, TaskId, TaskSpec};

pub fn spec(goal: &str) -> TaskSpec {
    TaskSpec {
        repo: "/tmp/repo".into(),
        base_ref: Some("main".into()),
        goal: goal.into(),
        checks: vec!["cargo test".into()],
        budget: Budget::default(),
        max_verify_rounds: 3,
        labels: vec!["demo".into()],
        allow_domains: Vec::new(),
        env: Default::default(),
    }
}

pub fn id(n: u64) -> TaskId {
    TaskId::from_parts(1_764_000_000_000 + n, 0xbeef)
}
