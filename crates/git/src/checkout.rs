//! The two operations on the user's own checkout: what is uncommitted there, and merging a
//! task's branch into it (`nightshift apply`).

use crate::GitError;
use crate::exec::{args, failed};
use crate::repo::Repo;

/// What [`Repo::merge`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeOutcome {
    /// The checkout's branch the work landed on.
    pub into: String,
    pub kind: MergeKind,
    /// The checkout's HEAD afterwards (full sha).
    pub head: String,
}

/// How a branch came into the checkout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeKind {
    /// Every commit of the branch was already there; nothing changed.
    AlreadyUpToDate,
    /// The checkout's branch moved forward to the branch's tip.
    FastForward,
    /// The histories had diverged: a merge commit joins them.
    MergeCommit,
}

impl Repo {
    /// Paths with uncommitted changes in the main checkout, untracked files included (ignored
    /// ones not), as `git status` names them (an untracked directory as `dir/`). Empty when the
    /// checkout is clean.
    pub fn uncommitted(&self) -> Result<Vec<String>, GitError> {
        // Explicit `--untracked-files`: `status.showUntrackedFiles=no` in the user's config
        // would otherwise hide exactly the files a merge can trip over.
        let output = self.git.ok(
            &self.root,
            args![
                "status",
                "--porcelain=v1",
                "-z",
                "--untracked-files=normal",
                "--ignore-submodules=none",
            ],
            &[],
        )?;
        let mut paths = Vec::new();
        let mut entries = output.stdout.split(|b| *b == 0);
        while let Some(entry) = entries.next() {
            // Each entry is `XY PATH`; a rename or copy is followed by its source path as an
            // entry of its own.
            if entry.len() < 4 {
                continue;
            }
            let (x, path) = (entry[0], &entry[3..]);
            paths.push(String::from_utf8_lossy(path).into_owned());
            if matches!(x, b'R' | b'C') {
                entries.next();
            }
        }
        Ok(paths)
    }

    /// Merges `branch` into the checkout's current branch (`git merge --no-edit`),
    /// fast-forwarding when possible. On a conflict the merge is aborted, leaving the checkout
    /// as it was, and [`GitError::MergeConflict`] names the conflicting files.
    ///
    /// The caller makes sure the checkout is clean first ([`Repo::uncommitted`]); the merge
    /// commit (if any) carries the user's own git identity, as their own `git merge` would.
    pub fn merge(&self, branch: &str) -> Result<MergeOutcome, GitError> {
        if !self.branch_exists(branch)? {
            return Err(GitError::UnknownBranch {
                branch: branch.to_owned(),
            });
        }
        let into = self.current_branch()?;
        let tip = self.resolve_commit(branch)?;
        let before = self.resolve_commit("HEAD")?;
        // Each option pinned so the user's `merge.ff`, `merge.autoStash` or a
        // `branch.<name>.mergeOptions` with `--squash`/`--no-commit` cannot turn this into
        // something else. Hooks never run (see exec.rs).
        let cmd = args![
            "merge",
            "--no-edit",
            "--ff",
            "--commit",
            "--no-squash",
            "--no-autostash",
            "--no-stat",
            "--quiet",
            branch,
        ];
        let output = self.git.run(&self.root, cmd, &[])?;
        if !output.status.success() {
            return Err(self.abort_merge(branch, &into, failed(&self.root, cmd, &output)));
        }
        let head = self.resolve_commit("HEAD")?;
        let kind = if head == before {
            MergeKind::AlreadyUpToDate
        } else if head == tip {
            MergeKind::FastForward
        } else {
            MergeKind::MergeCommit
        };
        Ok(MergeOutcome { into, kind, head })
    }

    /// The short name of the branch checked out in the main checkout.
    fn current_branch(&self) -> Result<String, GitError> {
        let output = self.git.run(
            &self.root,
            args!["symbolic-ref", "--quiet", "--short", "HEAD"],
            &[],
        )?;
        if !output.status.success() {
            return Err(GitError::DetachedHead {
                path: self.root.clone(),
            });
        }
        Ok(output.text())
    }

    /// After a failed `git merge`: when it stopped half-way (conflicts), collects the
    /// conflicting files and aborts, so the checkout is back where it was. Returns the error to
    /// report: the conflict, or git's own error when the merge never started.
    fn abort_merge(&self, branch: &str, into: &str, merge_error: GitError) -> GitError {
        let in_progress = self.git.run(
            &self.root,
            args!["rev-parse", "--quiet", "--verify", "MERGE_HEAD"],
            &[],
        );
        if !in_progress.is_ok_and(|o| o.status.success()) {
            return merge_error;
        }
        let files = self
            .git
            .ok(
                &self.root,
                args!["diff", "--name-only", "-z", "--diff-filter=U"],
                &[],
            )
            .map(|o| o.nul_separated())
            .unwrap_or_default();
        if let Err(abort) = self.git.ok(&self.root, args!["merge", "--abort"], &[]) {
            // The checkout is mid-merge and we could not undo it: say so, git's words included.
            return abort;
        }
        if files.is_empty() {
            return merge_error;
        }
        GitError::MergeConflict {
            branch: branch.to_owned(),
            into: into.to_owned(),
            files,
        }
    }
}
