use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong running git; each message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{path} does not exist\nhint: check the repository path (--repo)")]
    PathMissing { path: PathBuf },

    #[error(
        "{path} is not a git repository\n\
         hint: run `git init` there or pass --repo pointing at one"
    )]
    NotARepo { path: PathBuf },

    #[error(
        "{path} is a bare git repository, which has no working tree to start from\n\
         hint: pass --repo pointing at a clone with a working tree"
    )]
    BareRepo { path: PathBuf },

    #[error(
        "the repository has no commits yet\nhint: make a first commit (git add -A && git commit), or point --repo at a repository with history"
    )]
    NoCommits,

    #[error(
        "`{reference}` does not name a commit in this repository\n\
         hint: list branches with `git branch --all`, or pass a full commit sha"
    )]
    UnknownRef { reference: String },

    #[error(
        "branch `{branch}` already exists; nightshift never reuses a branch\n\
         hint: delete it with `git branch -D {branch}` if it is left over, or start a new task"
    )]
    BranchExists { branch: String },

    #[error(
        "branch `{branch}` does not exist\n\
         hint: list branches with `git branch`; the task's branch may have been deleted"
    )]
    UnknownBranch { branch: String },

    #[error(
        "branch `{branch}` is already checked out in another worktree\n\
         hint: see `git worktree list`; remove that worktree (git worktree remove PATH) first"
    )]
    BranchCheckedOut { branch: String },

    #[error(
        "`{branch}` is not a valid branch name\n\
         hint: see `git help check-ref-format` for what branch names may contain"
    )]
    InvalidBranch { branch: String },

    #[error(
        "{path} already exists and is not empty, so no worktree can be created there\n\
         hint: remove it, or choose another workspace directory"
    )]
    WorktreePathExists { path: PathBuf },

    #[error(
        "merging `{branch}` into `{into}` conflicts in: {}\n\
         hint: nothing was changed (the merge was aborted); merge it by hand with \
         `git merge {branch}` and resolve the conflicts, or rebase the branch first",
        files.join(", ")
    )]
    MergeConflict {
        branch: String,
        into: String,
        files: Vec<String>,
    },

    #[error(
        "the checkout at {path} is not on a branch (detached HEAD), so there is nothing to merge into\n\
         hint: check out the branch the work should land on (git switch BRANCH), then try again"
    )]
    DetachedHead { path: PathBuf },

    #[error("a commit message must not be empty")]
    EmptyCommitMessage,

    #[error("could not run git: {source}\nhint: install git and make sure it is on PATH")]
    Spawn {
        #[source]
        source: std::io::Error,
    },

    #[error(
        "`git {command}` in {dir} did not finish within {}s and was stopped\n\
         hint: a filter or a huge repository can make git slow; check `git config --list` \
         for filters (e.g. git-lfs) that reach the network",
        timeout.as_secs()
    )]
    Timeout {
        command: String,
        dir: PathBuf,
        timeout: Duration,
    },

    #[error("`git {command}` failed in {dir} ({status}): {stderr}")]
    Failed {
        command: String,
        dir: PathBuf,
        status: String,
        stderr: String,
    },

    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
