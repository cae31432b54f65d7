use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use nightshift_protocol::DiffStat;

use crate::GitError;
use crate::exec::{Git, args, failed};
use crate::stat::summary_counts;

/// Who a commit is attributed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Author {
    pub name: String,
    pub email: String,
}

impl Author {
    /// The identity commits get when the caller names none.
    pub fn nightshift() -> Author {
        Author {
            name: "Nightshift".to_owned(),
            email: "nightshift@localhost".to_owned(),
        }
    }
}

/// A task's own checkout of the repository, on its own branch.
#[derive(Clone, Debug)]
pub struct Worktree {
    path: PathBuf,
    /// The worktree's private git directory (`<repo>/.git/worktrees/<name>`), recorded at
    /// creation. Commands name it explicitly instead of following the `.git` file inside the
    /// worktree, which the agent can write to and could point at another repository.
    git_dir: PathBuf,
    branch: String,
    git: Git,
}

impl Worktree {
    /// Wraps a worktree `git worktree add` just created at `path`.
    pub(crate) fn created(path: PathBuf, branch: String, git: Git) -> Result<Worktree, GitError> {
        let path = path.canonicalize().map_err(|source| GitError::Io {
            what: "the new worktree is not accessible at",
            path: path.clone(),
            source,
        })?;
        let output = git.ok(&path, args!["rev-parse", "--absolute-git-dir"], &[])?;
        let mut git_dir = output.stdout;
        while git_dir.last() == Some(&b'\n') {
            git_dir.pop();
        }
        Ok(Worktree {
            path,
            git_dir: PathBuf::from(OsString::from_vec(git_dir)),
            branch,
            git,
        })
    }

    /// The worktree's directory (absolute, symlinks resolved).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The branch checked out in this worktree.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// Tracked files (git ls-files), relative to the worktree, for the repository map.
    pub fn tracked_files(&self) -> Result<Vec<String>, GitError> {
        let output = self.ok(&["ls-files", "-z"], &[])?;
        Ok(output.nul_separated())
    }

    /// Stages everything (git add -A, respecting .gitignore) and commits if anything changed.
    /// Returns the new commit's sha, or `None` when there is nothing to commit. Author and
    /// committer are `author`, else "Nightshift <nightshift@localhost>", so no git identity
    /// needs to be configured. The user's hooks do not run and no signature is required.
    pub fn commit_all(
        &self,
        message: &str,
        author: Option<&Author>,
    ) -> Result<Option<String>, GitError> {
        if message.trim().is_empty() {
            return Err(GitError::EmptyCommitMessage);
        }
        self.ok(&["add", "-A"], &[])?;
        let staged = ["diff", "--cached", "--quiet", "--no-ext-diff"];
        let output = self.run(&staged, &[])?;
        match output.status.code() {
            Some(0) => return Ok(None),
            Some(1) => {}
            _ => return Err(self.failed(&staged, &output)),
        }
        let default_author = Author::nightshift();
        let who = author.unwrap_or(&default_author);
        let identity = [
            ("GIT_AUTHOR_NAME", who.name.as_str()),
            ("GIT_AUTHOR_EMAIL", who.email.as_str()),
            ("GIT_COMMITTER_NAME", who.name.as_str()),
            ("GIT_COMMITTER_EMAIL", who.email.as_str()),
        ];
        self.ok(
            &[
                "-c",
                "commit.gpgsign=false",
                "commit",
                "--quiet",
                "--no-verify",
                "-m",
                message,
            ],
            &identity,
        )?;
        self.head().map(Some)
    }

    /// Diff stat between `base` and HEAD: files changed, insertions, deletions, and the
    /// `git diff --stat` text.
    pub fn diff_stat(&self, base: &str) -> Result<DiffStat, GitError> {
        let spec = format!("{base}^{{commit}}");
        let resolved = self.run(
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &spec,
            ],
            &[],
        )?;
        if !resolved.status.success() {
            return Err(GitError::UnknownRef {
                reference: base.to_owned(),
            });
        }
        let base = resolved.text();
        let output = self.ok(
            &[
                "diff",
                "--stat",
                "--no-color",
                "--no-ext-diff",
                &base,
                "HEAD",
                "--",
            ],
            &[],
        )?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (files_changed, insertions, deletions) = summary_counts(&text);
        Ok(DiffStat {
            files_changed,
            insertions,
            deletions,
            text,
        })
    }

    /// Full sha of the worktree's HEAD.
    pub fn head(&self) -> Result<String, GitError> {
        Ok(self.ok(&["rev-parse", "--verify", "HEAD"], &[])?.text())
    }

    /// Runs git against this worktree's own git dir and working tree.
    fn run(
        &self,
        args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Result<crate::exec::Output, GitError> {
        let (git_dir, work_tree) = self.locations();
        let mut full = vec![git_dir.as_os_str(), work_tree.as_os_str()];
        full.extend(args.iter().map(|a| std::ffi::OsStr::new(*a)));
        self.git.run(&self.path, &full, extra_env)
    }

    fn ok(
        &self,
        args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Result<crate::exec::Output, GitError> {
        let output = self.run(args, extra_env)?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(self.failed(args, &output))
        }
    }

    fn failed(&self, args: &[&str], output: &crate::exec::Output) -> GitError {
        let args: Vec<_> = args.iter().map(std::ffi::OsStr::new).collect();
        failed(&self.path, &args, output)
    }

    fn locations(&self) -> (OsString, OsString) {
        let mut git_dir = OsString::from("--git-dir=");
        git_dir.push(&self.git_dir);
        let mut work_tree = OsString::from("--work-tree=");
        work_tree.push(&self.path);
        (git_dir, work_tree)
    }
}
