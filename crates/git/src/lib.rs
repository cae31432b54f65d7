//! Git for Nightshift: the user's repository, task worktrees and branches, commits and diffs.
//! The only crate that runs git.
//!
//! Every git command goes through one private function that runs the `git` CLI with `-C <dir>`,
//! no pager, no prompts, the C locale, no hooks, no fsmonitor, a timeout, and stderr captured
//! into the error. Work happens in a separate worktree on its own branch: the user's own
//! checkout (working tree, index, current branch, uncommitted changes) is only ever read, with
//! one exception the user asks for by name: [`Repo::merge`] (`nightshift apply`), which refuses
//! to start over uncommitted work and leaves the checkout as it was when it cannot finish.
//!
//! It does not clone remote repositories, push, or talk to forges yet, and it never rewrites
//! history or moves a branch it did not create.

mod checkout;
mod error;
mod exec;
mod repo;
mod stat;
mod worktree;

pub use checkout::{MergeKind, MergeOutcome};
pub use error::GitError;
pub use repo::Repo;
pub use worktree::{Author, Worktree};
