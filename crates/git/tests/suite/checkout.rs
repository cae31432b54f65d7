//! What `nightshift apply` and the daemon need from the user's repository: a task's diff,
//! the checkout's uncommitted paths, merging a task branch, continuing on an existing branch.

use std::path::Path;

use nightshift_git::{GitError, MergeKind, Repo};

use super::{Fixture, git, write};

/// A repository whose merge commits get a fixed identity without touching any config file.
fn open_with_identity(path: &Path) -> Repo {
    Repo::open_with_env(
        path,
        [
            ("GIT_AUTHOR_NAME", "Ada"),
            ("GIT_AUTHOR_EMAIL", "ada@example.com"),
            ("GIT_COMMITTER_NAME", "Ada"),
            ("GIT_COMMITTER_EMAIL", "ada@example.com"),
        ],
    )
    .expect("the fixture opens")
}

/// Makes branch `branch` from HEAD with `files` written and committed by a task worktree, and
/// removes the worktree again (as the worker does). Returns the branch's tip.
fn task_branch(fixture: &Fixture, repo: &Repo, branch: &str, files: &[(&str, &str)]) -> String {
    let path = fixture.workspace(&branch.replace('/', "-"));
    let wt = repo
        .add_worktree(&path, branch, "HEAD")
        .expect("task worktree");
    for (name, content) in files {
        write(&wt.path().join(name), content);
    }
    let commit = wt
        .commit_all("task work", None)
        .expect("commit")
        .expect("something to commit");
    repo.remove_worktree(&path).expect("remove the worktree");
    commit
}

#[test]
fn diff_is_the_unified_diff_between_two_commits_whatever_the_config_says() {
    let fixture = Fixture::new();
    let repo = Repo::open(&fixture.repo).unwrap();
    let base = repo.resolve_commit("HEAD").unwrap();
    // A user's config that would change or run things in `git diff`: no a/ b/ prefixes and a
    // textconv driver that leaves a marker when it runs.
    let marker = fixture.dir.path().join("textconv-ran");
    git(&fixture.repo, &["config", "diff.noprefix", "true"]);
    git(
        &fixture.repo,
        &[
            "config",
            "diff.evil.textconv",
            &format!("sh -c 'touch {}; cat \"$0\"'", marker.display()),
        ],
    );
    write(
        &fixture.repo.join(".git/info/attributes"),
        "*.rs diff=evil\n",
    );

    let tip = task_branch(
        &fixture,
        &repo,
        "nightshift/d1",
        &[
            ("src/lib.rs", "pub fn one() -> u32 {\n    2\n}\n"),
            ("docs/new.md", "new\n"),
        ],
    );
    let diff = repo.diff(&base, "nightshift/d1").unwrap();
    assert!(
        diff.contains("diff --git a/src/lib.rs b/src/lib.rs"),
        "{diff}"
    );
    assert!(diff.contains("-    1\n+    2\n"), "{diff}");
    assert!(
        diff.contains("+++ b/docs/new.md\n@@ -0,0 +1 @@\n+new\n"),
        "{diff}"
    );
    assert!(!marker.exists(), "a textconv driver ran");
    assert_eq!(repo.diff(&tip, &tip).unwrap(), "");

    // The text is a patch git itself applies to the base.
    let patch = fixture.dir.path().join("task.patch");
    std::fs::write(&patch, &diff).unwrap();
    git(
        &fixture.repo,
        &["apply", "--check", patch.to_str().unwrap()],
    );

    for (base, tip) in [("nope", "HEAD"), ("HEAD", "nightshift/missing")] {
        assert!(
            matches!(repo.diff(base, tip), Err(GitError::UnknownRef { .. })),
            "{base}..{tip}"
        );
    }
}

#[test]
fn uncommitted_names_modified_staged_renamed_and_untracked_paths_but_not_ignored_ones() {
    let fixture = Fixture::new();
    let repo = Repo::open(&fixture.repo).unwrap();
    assert_eq!(repo.uncommitted().unwrap(), Vec::<String>::new());

    // Hides untracked files from a plain `git status`; must not hide them from us.
    git(
        &fixture.repo,
        &["config", "status.showUntrackedFiles", "no"],
    );
    write(&fixture.repo.join("README.md"), "# changed\n");
    write(&fixture.repo.join("staged new.txt"), "s\n");
    git(&fixture.repo, &["add", "staged new.txt"]);
    git(&fixture.repo, &["mv", "src/lib.rs", "src/renamed.rs"]);
    write(&fixture.repo.join("untracked.txt"), "u\n");
    write(&fixture.repo.join("newdir/inner.txt"), "i\n");
    write(&fixture.repo.join("debug.log"), "ignored\n");
    write(&fixture.repo.join("target/out"), "ignored\n");

    let mut paths = repo.uncommitted().unwrap();
    paths.sort();
    assert_eq!(
        paths,
        vec![
            "README.md",
            "newdir/",
            "src/renamed.rs",
            "staged new.txt",
            "untracked.txt"
        ]
    );
}

#[test]
fn merge_fast_forwards_when_it_can_even_if_the_config_says_never() {
    let fixture = Fixture::new();
    git(&fixture.repo, &["config", "merge.ff", "false"]);
    let repo = open_with_identity(&fixture.repo);
    let tip = task_branch(&fixture, &repo, "nightshift/ff", &[("b.txt", "b\n")]);

    let outcome = repo.merge("nightshift/ff").unwrap();
    assert_eq!(outcome.kind, MergeKind::FastForward);
    assert_eq!(outcome.into, "main");
    assert_eq!(outcome.head, tip);
    assert_eq!(git(&fixture.repo, &["rev-parse", "main"]), tip);
    assert_eq!(
        std::fs::read_to_string(fixture.repo.join("b.txt")).unwrap(),
        "b\n"
    );
    assert_eq!(repo.uncommitted().unwrap(), Vec::<String>::new());

    let again = repo.merge("nightshift/ff").unwrap();
    assert_eq!(again.kind, MergeKind::AlreadyUpToDate);
    assert_eq!(again.head, tip);
}

#[test]
fn merge_makes_a_merge_commit_when_the_histories_diverged() {
    let fixture = Fixture::new();
    let repo = open_with_identity(&fixture.repo);
    let tip = task_branch(&fixture, &repo, "nightshift/mc", &[("b.txt", "b\n")]);
    write(&fixture.repo.join("c.txt"), "c\n");
    git(&fixture.repo, &["add", "c.txt"]);
    git(
        &fixture.repo,
        &["commit", "--quiet", "-m", "meanwhile on main"],
    );
    let main_before = git(&fixture.repo, &["rev-parse", "HEAD"]);

    let outcome = repo.merge("nightshift/mc").unwrap();
    assert_eq!(outcome.kind, MergeKind::MergeCommit);
    assert_eq!(outcome.head, git(&fixture.repo, &["rev-parse", "main"]));
    assert_eq!(
        git(&fixture.repo, &["log", "-1", "--format=%P|%an|%s"]),
        format!("{main_before} {tip}|Ada|Merge branch 'nightshift/mc'")
    );
    assert!(fixture.repo.join("b.txt").exists() && fixture.repo.join("c.txt").exists());
    assert_eq!(repo.uncommitted().unwrap(), Vec::<String>::new());
}

#[test]
fn a_conflicting_merge_is_aborted_and_names_the_files() {
    let fixture = Fixture::new();
    let repo = open_with_identity(&fixture.repo);
    task_branch(
        &fixture,
        &repo,
        "nightshift/cf",
        &[
            ("src/lib.rs", "pub fn one() -> u32 {\n    2\n}\n"),
            ("README.md", "# task\n"),
            ("fine.txt", "no conflict here\n"),
        ],
    );
    write(
        &fixture.repo.join("src/lib.rs"),
        "pub fn one() -> u32 {\n    3\n}\n",
    );
    write(&fixture.repo.join("README.md"), "# main\n");
    git(
        &fixture.repo,
        &["commit", "--quiet", "-am", "main diverges"],
    );
    let head = git(&fixture.repo, &["rev-parse", "HEAD"]);

    let err = repo.merge("nightshift/cf").unwrap_err();
    match &err {
        GitError::MergeConflict {
            branch,
            into,
            files,
        } => {
            assert_eq!((branch.as_str(), into.as_str()), ("nightshift/cf", "main"));
            assert_eq!(files, &["README.md", "src/lib.rs"]);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("README.md, src/lib.rs"), "{text}");
    assert!(text.contains("hint:"), "{text}");

    // Exactly as before: same HEAD, nothing staged or modified, no merge in progress.
    assert_eq!(git(&fixture.repo, &["rev-parse", "HEAD"]), head);
    assert_eq!(repo.uncommitted().unwrap(), Vec::<String>::new());
    assert!(!fixture.repo.join(".git/MERGE_HEAD").exists());
    assert!(!fixture.repo.join("fine.txt").exists());
    assert_eq!(
        std::fs::read_to_string(fixture.repo.join("src/lib.rs")).unwrap(),
        "pub fn one() -> u32 {\n    3\n}\n"
    );
}

#[test]
fn merge_refuses_a_detached_head_and_an_unknown_branch() {
    let fixture = Fixture::new();
    let repo = open_with_identity(&fixture.repo);
    assert!(matches!(
        repo.merge("nightshift/none"),
        Err(GitError::UnknownBranch { .. })
    ));
    task_branch(&fixture, &repo, "nightshift/dh", &[("b.txt", "b\n")]);
    git(&fixture.repo, &["checkout", "--quiet", "--detach", "HEAD"]);
    let head = git(&fixture.repo, &["rev-parse", "HEAD"]);
    let err = repo.merge("nightshift/dh").unwrap_err();
    assert!(matches!(err, GitError::DetachedHead { .. }), "{err:?}");
    assert!(err.to_string().contains("hint: check out"), "{err}");
    assert_eq!(git(&fixture.repo, &["rev-parse", "HEAD"]), head);
}

#[test]
fn a_worktree_on_an_existing_branch_continues_where_the_task_stopped() {
    let fixture = Fixture::new();
    let repo = Repo::open(&fixture.repo).unwrap();
    let first = task_branch(&fixture, &repo, "nightshift/t2", &[("b.txt", "b\n")]);

    let path = fixture.workspace("turn2");
    let wt = repo.add_worktree_on_branch(&path, "nightshift/t2").unwrap();
    assert_eq!(wt.path(), path.canonicalize().unwrap());
    assert_eq!(wt.branch(), "nightshift/t2");
    assert_eq!(wt.head().unwrap(), first);
    // On the branch itself, not on a detached HEAD at its tip (regression: a full ref name
    // made git detach, and the second turn's commit went nowhere).
    assert_eq!(
        git(wt.path(), &["symbolic-ref", "HEAD"]),
        "refs/heads/nightshift/t2"
    );
    assert_eq!(
        std::fs::read_to_string(wt.path().join("b.txt")).unwrap(),
        "b\n"
    );
    write(&wt.path().join("c.txt"), "c\n");
    let second = wt.commit_all("turn two", None).unwrap().unwrap();
    assert_eq!(repo.resolve_commit("nightshift/t2").unwrap(), second);
    assert_eq!(
        git(&fixture.repo, &["rev-parse", &format!("{second}^")]),
        first
    );

    // While that worktree has the branch, no second one may check it out; nor the main
    // checkout's branch.
    for branch in ["nightshift/t2", "main"] {
        let err = repo
            .add_worktree_on_branch(&fixture.workspace("again"), branch)
            .unwrap_err();
        assert!(
            matches!(err, GitError::BranchCheckedOut { .. }),
            "{branch}: {err:?}"
        );
    }
    assert!(!fixture.workspace("again").exists());

    repo.remove_worktree(&path).unwrap();
    assert!(matches!(
        repo.add_worktree_on_branch(&fixture.workspace("x"), "nightshift/missing"),
        Err(GitError::UnknownBranch { .. })
    ));
    let occupied = fixture.workspace("occupied");
    write(&occupied.join("f"), "x");
    assert!(matches!(
        repo.add_worktree_on_branch(&occupied, "nightshift/t2"),
        Err(GitError::WorktreePathExists { .. })
    ));
    assert!(matches!(
        repo.add_worktree_on_branch(&fixture.workspace("y"), "-b"),
        Err(GitError::InvalidBranch { .. })
    ));
}

#[test]
fn common_dir_tells_whether_two_paths_are_one_repository() {
    let fixture = Fixture::new();
    let repo = Repo::open(&fixture.repo).unwrap();
    let wt = repo
        .add_worktree(&fixture.workspace("cd"), "nightshift/cd", "HEAD")
        .unwrap();
    let from_worktree = Repo::open(wt.path()).unwrap();
    let from_subdir = Repo::open(&fixture.repo.join("src")).unwrap();
    let common = repo.common_dir().unwrap();
    assert_eq!(common, fixture.repo.join(".git").canonicalize().unwrap());
    assert_eq!(from_worktree.common_dir().unwrap(), common);
    assert_eq!(from_subdir.common_dir().unwrap(), common);

    let other = Fixture::new();
    assert_ne!(
        Repo::open(&other.repo).unwrap().common_dir().unwrap(),
        common
    );
}
