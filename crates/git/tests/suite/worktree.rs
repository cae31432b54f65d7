use std::sync::Arc;

use nightshift_git::{Author, GitError, Repo};

use super::{Fixture, git, write};

#[test]
fn add_worktree_commit_and_diff_stat() {
    let fixture = Fixture::new();
    let repo = Repo::open(&fixture.repo).unwrap();
    let base = repo.resolve_commit("HEAD").unwrap();
    let path = fixture.workspace("task1");
    let wt = repo.add_worktree(&path, "nightshift/task1", &base).unwrap();

    assert_eq!(wt.path(), path.canonicalize().unwrap());
    assert_eq!(wt.branch(), "nightshift/task1");
    assert_eq!(wt.head().unwrap(), base);
    let mut files = wt.tracked_files().unwrap();
    files.sort();
    assert_eq!(files, vec![".gitignore", "README.md", "src/lib.rs"]);

    write(
        &wt.path().join("src/lib.rs"),
        "pub fn one() -> u32 {\n    2\n}\n",
    );
    write(&wt.path().join("src/new file.rs"), "a\nb\nc\n");
    let commit = wt
        .commit_all("Change one and add a file", None)
        .unwrap()
        .unwrap();
    assert_eq!(commit.len(), 40);
    assert_eq!(wt.head().unwrap(), commit);
    assert_eq!(repo.resolve_commit("nightshift/task1").unwrap(), commit);
    assert_eq!(
        git(
            &fixture.repo,
            &["log", "-1", "--format=%s|%an <%ae>|%cn <%ce>", &commit]
        ),
        "Change one and add a file|Nightshift <nightshift@localhost>|Nightshift <nightshift@localhost>"
    );
    assert_eq!(
        git(&fixture.repo, &["rev-parse", &format!("{commit}^")]),
        base
    );
    assert!(
        wt.tracked_files()
            .unwrap()
            .contains(&"src/new file.rs".to_owned())
    );

    let stat = wt.diff_stat(&base).unwrap();
    assert_eq!(
        (stat.files_changed, stat.insertions, stat.deletions),
        (2, 4, 1)
    );
    assert!(stat.text.contains("src/lib.rs"), "{}", stat.text);
    assert!(stat.text.contains("src/new file.rs"), "{}", stat.text);
    assert!(
        stat.text
            .contains("2 files changed, 4 insertions(+), 1 deletion(-)"),
        "{}",
        stat.text
    );

    // Nothing changed since: the stat against HEAD is empty.
    let none = wt.diff_stat("HEAD").unwrap();
    assert_eq!(
        (none.files_changed, none.insertions, none.deletions),
        (0, 0, 0)
    );
    assert_eq!(none.text, "");
    assert!(matches!(
        wt.diff_stat("nope"),
        Err(GitError::UnknownRef { .. })
    ));
}

#[test]
fn commit_all_uses_the_given_author_for_author_and_committer() {
    let fixture = Fixture::new();
    let repo = Repo::open(&fixture.repo).unwrap();
    let wt = repo
        .add_worktree(&fixture.workspace("t"), "nightshift/t", "HEAD")
        .unwrap();
    write(&wt.path().join("x.txt"), "x\n");
    let author = Author {
        name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
    };
    let commit = wt.commit_all("Add x", Some(&author)).unwrap().unwrap();
    assert_eq!(
        git(
            &fixture.repo,
            &["log", "-1", "--format=%an <%ae>|%cn <%ce>", &commit]
        ),
        "Ada Lovelace <ada@example.com>|Ada Lovelace <ada@example.com>"
    );
}

#[test]
fn commit_all_with_no_changes_returns_none_and_makes_no_commit() {
    let fixture = Fixture::new();
    let repo = Repo::open(&fixture.repo).unwrap();
    let wt = repo
        .add_worktree(&fixture.workspace("t"), "nightshift/t", "main")
        .unwrap();
    let before = wt.head().unwrap();
    assert_eq!(wt.commit_all("nothing", None).unwrap(), None);
    // Only ignored files changed: still nothing to commit.
    write(&wt.path().join("target/debug/out"), "binary");
    write(&wt.path().join("build.log"), "log");
    assert_eq!(wt.commit_all("nothing", None).unwrap(), None);
    assert_eq!(wt.head().unwrap(), before);
    assert!(matches!(
        wt.commit_all("  \n", None),
        Err(GitError::EmptyCommitMessage)
    ));
}

#[test]
fn gitignored_files_are_not_committed_but_deletions_are() {
    let fixture = Fixture::new();
    let repo = Repo::open(&fixture.repo).unwrap();
    let wt = repo
        .add_worktree(&fixture.workspace("t"), "nightshift/t", "main")
        .unwrap();
    write(&wt.path().join("target/debug/app"), "binary");
    write(&wt.path().join("run.log"), "log");
    write(&wt.path().join("notes.md"), "kept\n");
    std::fs::remove_file(wt.path().join("README.md")).unwrap();
    let commit = wt.commit_all("Notes", None).unwrap().unwrap();
    let files = git(&fixture.repo, &["ls-tree", "-r", "--name-only", &commit]);
    let mut files: Vec<_> = files.lines().collect();
    files.sort();
    assert_eq!(files, vec![".gitignore", "notes.md", "src/lib.rs"]);
}

#[test]
fn an_existing_branch_is_never_reused() {
    let fixture = Fixture::new();
    let repo = Repo::open(&fixture.repo).unwrap();
    git(&fixture.repo, &["branch", "nightshift/taken"]);
    let path = fixture.workspace("t");
    let err = repo
        .add_worktree(&path, "nightshift/taken", "HEAD")
        .unwrap_err();
    assert!(
        matches!(&err, GitError::BranchExists { branch } if branch == "nightshift/taken"),
        "{err:?}"
    );
    assert!(err.to_string().contains("git branch -D nightshift/taken"));
    assert!(!path.exists());

    // Nor a branch created by an earlier worktree.
    repo.add_worktree(&fixture.workspace("a"), "nightshift/a", "HEAD")
        .unwrap();
    assert!(matches!(
        repo.add_worktree(&fixture.workspace("b"), "nightshift/a", "HEAD"),
        Err(GitError::BranchExists { .. })
    ));
}

#[test]
fn add_worktree_refuses_bad_bases_and_occupied_paths() {
    let fixture = Fixture::new();
    let repo = Repo::open(&fixture.repo).unwrap();
    let path = fixture.workspace("t");
    assert!(matches!(
        repo.add_worktree(&path, "nightshift/t", "no-such-ref"),
        Err(GitError::UnknownRef { .. })
    ));
    write(&path.join("leftover.txt"), "mine");
    let err = repo
        .add_worktree(&path, "nightshift/t", "HEAD")
        .unwrap_err();
    assert!(
        matches!(err, GitError::WorktreePathExists { .. }),
        "{err:?}"
    );
    assert_eq!(
        std::fs::read_to_string(path.join("leftover.txt")).unwrap(),
        "mine"
    );
    // Neither refusal left a branch behind.
    assert!(!repo.branch_exists("nightshift/t").unwrap());
    // An empty directory is fine.
    let empty = fixture.workspace("empty");
    std::fs::create_dir_all(&empty).unwrap();
    repo.add_worktree(&empty, "nightshift/t", "HEAD").unwrap();
}

#[test]
fn two_worktrees_on_one_repository_do_not_collide() {
    let fixture = Fixture::new();
    let repo = Arc::new(Repo::open(&fixture.repo).unwrap());
    let base = repo.resolve_commit("HEAD").unwrap();
    // Same final directory name, created at the same time from two threads.
    let handles: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let repo = Arc::clone(&repo);
            let base = base.clone();
            let path = fixture.dir.path().join(name).join("workspace");
            std::thread::spawn(move || {
                let wt = repo
                    .add_worktree(&path, &format!("nightshift/{name}"), &base)
                    .unwrap();
                write(&wt.path().join(format!("{name}.txt")), name);
                let commit = wt
                    .commit_all(&format!("Add {name}"), None)
                    .unwrap()
                    .unwrap();
                (wt, commit)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ((a, commit_a), (b, commit_b)) = (&results[0], &results[1]);
    assert_ne!(a.path(), b.path());
    assert_ne!(commit_a, commit_b);
    for (wt, name, other) in [(a, "a", "b"), (b, "b", "a")] {
        let files = wt.tracked_files().unwrap();
        assert!(files.contains(&format!("{name}.txt")));
        assert!(!files.contains(&format!("{other}.txt")));
        assert!(!wt.path().join(format!("{other}.txt")).exists());
        assert_eq!(wt.diff_stat(&base).unwrap().files_changed, 1);
    }
    assert_eq!(repo.resolve_commit("nightshift/a").unwrap(), *commit_a);
    assert_eq!(repo.resolve_commit("nightshift/b").unwrap(), *commit_b);
}

#[test]
fn remove_worktree_cleans_up_even_with_changes_and_is_idempotent() {
    let fixture = Fixture::new();
    let repo = Repo::open(&fixture.repo).unwrap();
    let path = fixture.workspace("t");
    let wt = repo.add_worktree(&path, "nightshift/t", "HEAD").unwrap();
    write(&wt.path().join("uncommitted.txt"), "dirty");
    write(&wt.path().join("target/ignored"), "ignored");
    write(&wt.path().join("README.md"), "changed");
    let listed = || git(&fixture.repo, &["worktree", "list", "--porcelain"]);
    assert!(listed().contains("nightshift/t"));

    repo.remove_worktree(&path).unwrap();
    assert!(!path.exists());
    assert!(!listed().contains("nightshift/t"));
    // The branch (and any work committed on it) is kept until deleted explicitly.
    assert!(repo.branch_exists("nightshift/t").unwrap());
    repo.remove_worktree(&path).unwrap();

    repo.delete_branch("nightshift/t").unwrap();
    assert!(!repo.branch_exists("nightshift/t").unwrap());
    repo.delete_branch("nightshift/t").unwrap();

    // A worktree whose directory was deleted behind git's back is pruned, and its path and
    // branch name can then be used again.
    let wt = repo.add_worktree(&path, "nightshift/t", "HEAD").unwrap();
    std::fs::remove_dir_all(wt.path()).unwrap();
    repo.remove_worktree(&path).unwrap();
    assert!(!listed().contains("nightshift/t"));
    repo.delete_branch("nightshift/t").unwrap();
    repo.add_worktree(&path, "nightshift/t", "HEAD").unwrap();
}

#[test]
fn remove_worktree_refuses_directories_that_are_not_its_worktrees() {
    let fixture = Fixture::new();
    let repo = Repo::open(&fixture.repo).unwrap();
    let stranger = fixture.dir.path().join("stranger");
    write(&stranger.join("precious.txt"), "keep me");
    assert!(matches!(
        repo.remove_worktree(&stranger),
        Err(GitError::Failed { .. })
    ));
    assert!(stranger.join("precious.txt").exists());
    // Nor the user's own checkout.
    assert!(repo.remove_worktree(&fixture.repo).is_err());
    assert!(fixture.repo.join("README.md").exists());
}

#[test]
fn worktree_paths_are_relative_to_the_current_directory_not_the_repository() {
    let fixture = Fixture::new();
    // A relative path from the test's working directory to a fresh directory in the temp dir,
    // so the test leaves nothing behind in the source tree.
    let cwd = std::env::current_dir().unwrap();
    let mut relative = std::path::PathBuf::new();
    for _ in 1..cwd.components().count() {
        relative.push("..");
    }
    relative.push(fixture.dir.path().strip_prefix("/").unwrap());
    relative.push("relative-ws");
    assert!(relative.is_relative());
    // A repository nested deeper than the working directory, so that the same relative path
    // read from inside it would name a different place.
    let mut deep = fixture.dir.path().to_path_buf();
    for _ in 0..cwd.components().count() {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep).unwrap();
    git(
        &deep,
        &["clone", "--quiet", fixture.repo.to_str().unwrap(), "repo"],
    );
    let deep = deep.join("repo");
    let repo = Repo::open(&deep).unwrap();

    let wt = repo
        .add_worktree(&relative, "nightshift/rel", "HEAD")
        .unwrap();
    let expected = fixture.dir.path().join("relative-ws");
    assert_eq!(wt.path(), expected.canonicalize().unwrap());
    assert!(!deep.join(&relative).exists());
    repo.remove_worktree(&relative).unwrap();
    assert!(!expected.exists());
}

#[test]
fn files_and_contents_at_a_commit_are_read_without_a_checkout() {
    let fixture = Fixture::new();
    let repo = Repo::open(&fixture.repo).unwrap();
    let base = repo.resolve_commit("HEAD").unwrap();
    // The user's uncommitted state must not leak into what a task starting at `base` sees.
    write(&fixture.repo.join("README.md"), "# dirty, not committed\n");
    write(&fixture.repo.join("untracked.txt"), "x\n");

    let mut files = repo.files_at(&base).unwrap();
    files.sort();
    assert_eq!(files, vec![".gitignore", "README.md", "src/lib.rs"]);
    assert_eq!(
        repo.read_file_at(&base, "README.md").unwrap().as_deref(),
        Some("# demo\n")
    );
    assert_eq!(repo.read_file_at(&base, "AGENTS.md").unwrap(), None);
    assert_eq!(repo.read_file_at(&base, "untracked.txt").unwrap(), None);
}
