use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::GitError;
use crate::exec::{Git, absolute, args, failed};
use crate::worktree::Worktree;

/// The user's repository, at its top level. Only read, except by [`Repo::merge`] (which the
/// user asks for with `nightshift apply`): work happens in worktrees.
#[derive(Clone, Debug)]
pub struct Repo {
    pub(crate) root: PathBuf,
    pub(crate) git: Git,
}

impl Repo {
    /// Opens the repository containing `path` (any directory inside it).
    ///
    /// Errors: [`GitError::PathMissing`], [`GitError::NotARepo`], [`GitError::BareRepo`],
    /// [`GitError::NoCommits`].
    pub fn open(path: &Path) -> Result<Repo, GitError> {
        Self::open_with_env(path, Vec::<(OsString, OsString)>::new())
    }

    /// Like [`Repo::open`], with extra environment variables for every git command run for
    /// this repository and its worktrees (e.g. `HOME` or `GIT_CONFIG_NOSYSTEM` to isolate it
    /// from the machine's git configuration) without touching the process environment.
    pub fn open_with_env<I, K, V>(path: &Path, env: I) -> Result<Repo, GitError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let git = Git::new(env.into_iter().map(|(k, v)| (k.into(), v.into())).collect());
        let path = absolute(path)?;
        if !path.exists() {
            return Err(GitError::PathMissing { path });
        }
        if !path.is_dir() {
            return Err(GitError::NotARepo { path });
        }

        let bare = git.run(&path, args!["rev-parse", "--is-bare-repository"], &[])?;
        if !bare.status.success() {
            if bare.stderr.contains("not a git repository") {
                return Err(GitError::NotARepo { path });
            }
            return Err(failed(
                &path,
                args!["rev-parse", "--is-bare-repository"],
                &bare,
            ));
        }
        if bare.text() == "true" {
            return Err(GitError::BareRepo { path });
        }

        let top = git.ok(&path, args!["rev-parse", "--show-toplevel"], &[])?;
        let mut root = top.stdout;
        while root.last() == Some(&b'\n') {
            root.pop();
        }
        let root = PathBuf::from(OsString::from_vec(root));

        let head = git.run(
            &root,
            args!["rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
            &[],
        )?;
        if !head.status.success() {
            return Err(GitError::NoCommits);
        }
        Ok(Repo { root, git })
    }

    /// Stops any single git command that runs longer than `timeout` (default: 10 minutes).
    pub fn with_timeout(mut self, timeout: Duration) -> Repo {
        self.git.set_timeout(timeout);
        self
    }

    /// The repository's top-level directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Full sha of a ref/commit-ish; [`GitError::UnknownRef`] when it names no commit.
    pub fn resolve_commit(&self, reference: &str) -> Result<String, GitError> {
        let unknown = || GitError::UnknownRef {
            reference: reference.to_owned(),
        };
        if reference.trim().is_empty() {
            return Err(unknown());
        }
        let spec = format!("{reference}^{{commit}}");
        let output = self.git.run(
            &self.root,
            args!["rev-parse", "--verify", "--quiet", "--end-of-options", spec],
            &[],
        )?;
        if !output.status.success() {
            return Err(unknown());
        }
        Ok(output.text())
    }

    /// The files of `commit`'s tree, as a worktree checked out at it would track them, read
    /// from the object database without a checkout (so it is instant even for huge trees).
    pub fn files_at(&self, commit: &str) -> Result<Vec<String>, GitError> {
        let output = self.git.ok(
            &self.root,
            args!["ls-tree", "-r", "-z", "--name-only", "--full-tree", commit],
            &[],
        )?;
        Ok(output.nul_separated())
    }

    /// A file's text at `commit` (lossy UTF-8), or `None` when the commit has no such file.
    pub fn read_file_at(&self, commit: &str, path: &str) -> Result<Option<String>, GitError> {
        let object = format!("{commit}:{path}");
        let exists = self
            .git
            .run(&self.root, args!["cat-file", "-e", object], &[])?;
        if !exists.status.success() {
            return Ok(None);
        }
        let output = self
            .git
            .ok(&self.root, args!["cat-file", "blob", object], &[])?;
        Ok(Some(String::from_utf8_lossy(&output.stdout).into_owned()))
    }

    /// The unified diff from `base` to `tip` (`git diff base tip`), as text (lossy UTF-8);
    /// empty when they have the same tree. No external diff or textconv driver runs, and the
    /// `a/` `b/` prefixes are fixed whatever the user's configuration says, so the text
    /// applies with `git apply`.
    pub fn diff(&self, base: &str, tip: &str) -> Result<String, GitError> {
        let base = self.resolve_commit(base)?;
        let tip = self.resolve_commit(tip)?;
        let output = self.git.ok(
            &self.root,
            args![
                "diff",
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                "--src-prefix=a/",
                "--dst-prefix=b/",
                base,
                tip,
                "--",
            ],
            &[],
        )?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The repository's shared git directory (canonical): the same for a checkout and all its
    /// linked worktrees, so two paths are one repository exactly when these are equal.
    pub fn common_dir(&self) -> Result<PathBuf, GitError> {
        let output = self.git.ok(
            &self.root,
            args!["rev-parse", "--path-format=absolute", "--git-common-dir"],
            &[],
        )?;
        let mut dir = output.stdout;
        while dir.last() == Some(&b'\n') {
            dir.pop();
        }
        let dir = PathBuf::from(OsString::from_vec(dir));
        dir.canonicalize().map_err(|source| GitError::Io {
            what: "the repository's git directory is not accessible at",
            path: dir.clone(),
            source,
        })
    }

    /// Whether `refs/heads/<branch>` exists. [`GitError::InvalidBranch`] for names git would
    /// refuse.
    pub fn branch_exists(&self, branch: &str) -> Result<bool, GitError> {
        self.check_branch_name(branch)?;
        let full = format!("refs/heads/{branch}");
        let cmd = args!["show-ref", "--verify", "--quiet", full];
        let output = self.git.run(&self.root, cmd, &[])?;
        match output.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(failed(&self.root, cmd, &output)),
        }
    }

    /// `git worktree add -b <branch> <path> <base>`; refuses ([`GitError::BranchExists`]) to
    /// reuse an existing branch, and refuses a `path` that exists and is not an empty directory.
    pub fn add_worktree(
        &self,
        path: &Path,
        branch: &str,
        base_commit: &str,
    ) -> Result<Worktree, GitError> {
        if self.branch_exists(branch)? {
            return Err(GitError::BranchExists {
                branch: branch.to_owned(),
            });
        }
        let base = self.resolve_commit(base_commit)?;
        // Relative to our working directory, not to the repository `-C` moves git into.
        let path = absolute(path)?;
        if path.exists() && !is_empty_dir(&path) {
            return Err(GitError::WorktreePathExists { path });
        }
        let lock = self.worktree_admin_lock();
        let _turn = lock.lock().unwrap_or_else(|e| e.into_inner());
        self.git.ok(
            &self.root,
            args!["worktree", "add", "--quiet", "-b", branch, path, base],
            &[],
        )?;
        Worktree::created(path, branch.to_owned(), self.git.clone())
    }

    /// `git worktree add <path> <branch>`: a worktree on an EXISTING branch, to continue a
    /// task's work where it stopped. [`GitError::UnknownBranch`] when the branch does not
    /// exist, [`GitError::BranchCheckedOut`] when another worktree has it checked out.
    pub fn add_worktree_on_branch(&self, path: &Path, branch: &str) -> Result<Worktree, GitError> {
        if !self.branch_exists(branch)? {
            return Err(GitError::UnknownBranch {
                branch: branch.to_owned(),
            });
        }
        let path = absolute(path)?;
        if path.exists() && !is_empty_dir(&path) {
            return Err(GitError::WorktreePathExists { path });
        }
        // The short name: given `refs/heads/<branch>` git would check out a detached HEAD at
        // the branch's tip instead of the branch. `branch_exists` vetted the name (no leading
        // dash) and `--no-guess-remote` keeps git from reaching for a remote-tracking branch.
        let cmd = args![
            "worktree",
            "add",
            "--quiet",
            "--no-guess-remote",
            path,
            branch
        ];
        let lock = self.worktree_admin_lock();
        let _turn = lock.lock().unwrap_or_else(|e| e.into_inner());
        let output = self.git.run(&self.root, cmd, &[])?;
        if !output.status.success() {
            // Without `--force` git refuses a branch another worktree (or the main checkout)
            // has checked out, and we never force: two checkouts of one branch corrupt each
            // other's view of it.
            if output.stderr.contains("already checked out")
                || output.stderr.contains("already used by worktree")
            {
                return Err(GitError::BranchCheckedOut {
                    branch: branch.to_owned(),
                });
            }
            return Err(failed(&self.root, cmd, &output));
        }
        Worktree::created(path, branch.to_owned(), self.git.clone())
    }

    /// Removes the worktree at `path` (even with uncommitted changes) and prunes stale
    /// worktree records; fine if it is already gone. Its branch is kept.
    pub fn remove_worktree(&self, path: &Path) -> Result<(), GitError> {
        let path = absolute(path)?;
        let lock = self.worktree_admin_lock();
        let _turn = lock.lock().unwrap_or_else(|e| e.into_inner());
        if path.exists() {
            // Twice `--force` also removes a locked worktree. git itself refuses to remove the
            // main working tree or a directory that is not one of this repository's worktrees.
            let cmd = args!["worktree", "remove", "--force", "--force", path];
            let output = self.git.run(&self.root, cmd, &[])?;
            if !output.status.success() {
                // git also refuses when the worktree's `.git` file no longer points back (the
                // agent can write to it). If git still lists the directory as one of our linked
                // worktrees it is ours to delete; anything else keeps git's refusal.
                if !self.is_linked_worktree(&path)? {
                    return Err(failed(&self.root, cmd, &output));
                }
                std::fs::remove_dir_all(&path).map_err(|source| GitError::Io {
                    what: "could not delete the worktree directory",
                    path: path.clone(),
                    source,
                })?;
            }
        }
        // Forgets worktrees whose directory was deleted behind git's back.
        self.git.ok(&self.root, args!["worktree", "prune"], &[])?;
        Ok(())
    }

    /// git's worktree bookkeeping (`.git/worktrees/`) is not safe against a concurrent `add`,
    /// `remove` and `prune` in one repository (seen: "could not open .git/worktrees/<id>/
    /// locked" under 8 tasks at once), so within this process they take turns per repository.
    fn worktree_admin_lock(&self) -> Arc<Mutex<()>> {
        static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
        let locks = LOCKS.get_or_init(Mutex::default);
        let mut locks = locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(self.root.clone()).or_default().clone()
    }

    /// Deletes a local branch (even if unmerged); fine if it does not exist. git refuses to
    /// delete a branch that is checked out, so the user's current branch is safe.
    pub fn delete_branch(&self, branch: &str) -> Result<(), GitError> {
        if !self.branch_exists(branch)? {
            return Ok(());
        }
        self.git
            .ok(&self.root, args!["branch", "--quiet", "-D", branch], &[])?;
        Ok(())
    }

    /// Whether `path` is one of this repository's linked worktrees (never the main one).
    fn is_linked_worktree(&self, path: &Path) -> Result<bool, GitError> {
        let Ok(path) = path.canonicalize() else {
            return Ok(false);
        };
        let output = self.git.ok(
            &self.root,
            args!["worktree", "list", "--porcelain", "-z"],
            &[],
        )?;
        let linked = output
            .stdout
            .split(|b| *b == 0)
            .filter_map(|field| field.strip_prefix(b"worktree "))
            .map(|p| PathBuf::from(OsString::from_vec(p.to_vec())))
            // The first entry is always the main working tree.
            .skip(1)
            .any(|p| p.canonicalize().is_ok_and(|p| p == path));
        Ok(linked)
    }

    fn check_branch_name(&self, branch: &str) -> Result<(), GitError> {
        let invalid = || GitError::InvalidBranch {
            branch: branch.to_owned(),
        };
        // A leading dash would read as an option; `HEAD` as a branch confuses every tool.
        if branch.is_empty() || branch.starts_with('-') || branch == "HEAD" {
            return Err(invalid());
        }
        let full = format!("refs/heads/{branch}");
        let output = self
            .git
            .run(&self.root, args!["check-ref-format", full], &[])?;
        if output.status.success() {
            Ok(())
        } else {
            Err(invalid())
        }
    }
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
}
