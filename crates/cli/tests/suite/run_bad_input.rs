//! A bad task spec is refused at the door: exit code 2, a message naming the problem and a hint.

use super::harness::{World, run};

fn assert_refused(run: &super::harness::Run, needle: &str) {
    assert_eq!(
        run.code(),
        2,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stderr.contains(needle),
        "stderr should mention {needle:?}:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hint:"),
        "stderr should give a hint:\n{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "nothing on stdout: {}", run.stdout);
}

fn world() -> World {
    World::new(&[("README.md", "hello\n")]).with_script(vec![])
}

#[test]
fn not_a_git_repository() {
    let world = world();
    let plain = world.dir.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let mut command = world.command();
    command
        .args(["run", "--repo"])
        .arg(&plain)
        .arg("Do something");
    assert_refused(&run(command), "not a git repository");
}

#[test]
fn a_repository_that_does_not_exist() {
    let world = world();
    let mut command = world.command();
    command
        .args(["run", "--repo"])
        .arg(world.dir.path().join("nope"))
        .arg("Do something");
    let run = run(command);
    assert_eq!(run.code(), 2, "{}", run.stderr);
    assert!(run.stderr.contains("nope"), "{}", run.stderr);
}

#[test]
fn a_repository_without_commits() {
    let world = world();
    let empty = world.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    super::harness::git(&empty, &["init", "-q"]);
    let mut command = world.command();
    command
        .args(["run", "--repo"])
        .arg(&empty)
        .arg("Do something");
    assert_refused(&run(command), "no commits");
}

#[test]
fn an_unknown_base_ref() {
    let world = world();
    assert_refused(
        &world.run(&["--base", "no-such-branch"], "Do something"),
        "no-such-branch",
    );
}

#[test]
fn an_empty_goal() {
    let world = world();
    assert_refused(&world.run(&[], "   "), "goal is empty");
}

#[test]
fn an_empty_check() {
    let world = world();
    assert_refused(
        &world.run(&["--check", " "], "Do something"),
        "check 1 is empty",
    );
}

#[test]
fn zero_budgets() {
    let world = world();
    assert_refused(
        &world.run(&["--max-steps", "0"], "Do something"),
        "--max-steps",
    );
    assert_refused(
        &world.run(&["--timeout", "0s"], "Do something"),
        "--timeout",
    );
}

#[test]
fn no_model_provider_configured() {
    let world = World::new(&[("README.md", "hello\n")]);
    let run = world.run(&[], "Do something");
    assert_refused(&run, "no model provider is configured");
    assert!(run.stderr.contains("NIGHTSHIFT_BASE_URL"));
}

#[test]
fn a_broken_config_file_names_the_file() {
    let world = world();
    std::fs::create_dir_all(world.home()).unwrap();
    std::fs::write(
        world.home().join("config.toml"),
        "[model]\nbase_ulr = \"x\"\n",
    )
    .unwrap();
    let run = world.run(&[], "Do something");
    assert_refused(&run, "config.toml");
    assert!(run.stderr.contains("base_ulr"), "{}", run.stderr);
}

#[test]
fn nothing_is_created_for_a_refused_spec() {
    let world = world();
    let _ = world.run(&[], "");
    assert!(!world.home().join("nightshift.db").exists());
    assert_eq!(world.git(&["branch", "--list", "nightshift/*"]), "");
    assert!(world.server().requests().is_empty());
}

#[test]
fn a_context_window_too_small_to_hold_the_instructions() {
    let world = world();
    assert_refused(
        &world.run(&["--context-window", "100"], "Do something"),
        "too small",
    );
}

#[test]
fn zero_timeouts_in_the_config_file() {
    let world = world();
    std::fs::create_dir_all(world.home()).unwrap();
    std::fs::write(
        world.home().join("config.toml"),
        "[sandbox]\ncheck_timeout = \"0s\"\n",
    )
    .unwrap();
    let run = world.run(&[], "Do something");
    assert_refused(&run, "check_timeout must be longer than zero");
}

#[test]
fn with_no_provider_the_embedded_model_is_chosen_and_its_absence_explained() {
    let world = World::new(&[("README.md", "hello\n")]);
    let mut command = world.command();
    command
        .env_remove("NIGHTSHIFT_MODEL")
        .args(["run", "--repo"])
        .arg(&world.repo)
        .arg("Do something");
    let run = super::harness::run(command);
    assert_eq!(run.code(), 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("embedded model qwen2.5-coder-1.5b is not installed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("nightshift model pull"),
        "{}",
        run.stderr
    );

    let mut ls = world.command();
    ls.env_remove("NIGHTSHIFT_MODEL").args(["model", "ls"]);
    let ls = super::harness::run(ls);
    assert_eq!(ls.code(), 0, "{}", ls.stderr);
    assert!(
        ls.stdout
            .contains("(none; `nightshift model pull` fetches qwen2.5-coder-1.5b)"),
        "{}",
        ls.stdout
    );
    assert!(
        ls.stdout.contains("default  embedded qwen2.5-coder-1.5b"),
        "{}",
        ls.stdout
    );

    let unknown = world.nightshift(&["model", "pull", "gpt-5"]);
    assert_eq!(unknown.code(), 2, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("qwen2.5-coder-0.5b"),
        "{}",
        unknown.stderr
    );
}
