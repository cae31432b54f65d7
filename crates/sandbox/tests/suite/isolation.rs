//! What the command can reach under bwrap, each checked against mode None where the same
//! command does reach it (so the assertion can fail).

use std::net::TcpListener;

use nightshift_sandbox::{BwrapSetup, Sandbox, SandboxMode};

use super::{Scratch, exists, sh};

#[tokio::test]
async fn writes_inside_the_workdir_are_visible_on_the_host() {
    let scratch = Scratch::new();
    for mode in super::MODES {
        let out = sh(
            &scratch.sandbox(mode),
            &format!("mkdir -p d && echo {mode} > d/f"),
        )
        .await;
        assert!(out.success(), "{mode}: {}", out.output);
        let written = std::fs::read_to_string(scratch.work().join("d/f")).unwrap();
        assert_eq!(written, format!("{mode}\n"));
    }
}

#[tokio::test]
async fn writes_outside_the_workdir_fail() {
    let scratch = Scratch::new();
    let outside = scratch.outside();
    let attempts = [
        format!("echo x > {}/abs", outside.display()),
        "echo x > ../outside/rel".to_owned(),
        "echo x > ../sibling".to_owned(),
    ];
    let bwrap = scratch.sandbox(SandboxMode::Bwrap);
    for attempt in &attempts {
        let out = sh(&bwrap, attempt).await;
        assert_ne!(out.exit_code, Some(0), "{attempt}");
        assert!(
            out.output.contains("Read-only file system"),
            "{attempt}: {}",
            out.output
        );
    }
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    assert!(!exists(&scratch.dir.path().join("sibling")));

    // The same commands without isolation do write: the test above can fail.
    let none = scratch.sandbox(SandboxMode::None);
    for attempt in &attempts {
        assert!(sh(&none, attempt).await.success(), "{attempt}");
    }
    assert!(exists(&outside.join("abs")) && exists(&outside.join("rel")));
}

#[tokio::test]
async fn system_directories_are_read_only() {
    let scratch = Scratch::new();
    let bwrap = scratch.sandbox(SandboxMode::Bwrap);
    for target in [
        "/etc/nightshift-escape",
        "/usr/nightshift-escape",
        "/var/tmp/nightshift-escape",
    ] {
        let out = sh(&bwrap, &format!("touch {target}")).await;
        assert_ne!(out.exit_code, Some(0), "{target}");
        assert!(
            !exists(std::path::Path::new(target)),
            "{target} was created on the host"
        );
    }
}

#[tokio::test]
async fn a_workdir_under_tmp_stays_writable_and_tmp_stays_private() {
    let host_tmp = tempfile::tempdir().unwrap(); // under the host's /tmp
    let work = host_tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let sandbox = Sandbox::new(&work, SandboxMode::Bwrap).unwrap();
    let sibling = host_tmp.path().join("leak");
    let out = sh(
        &sandbox,
        &format!(
            "echo in > inside && echo out > {} ; ls /tmp",
            sibling.display()
        ),
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(work.join("inside")).unwrap(),
        "in\n"
    );
    // Writing to the private /tmp may succeed, but never reaches the host's.
    assert!(!exists(&sibling), "{}", out.output);
}

#[tokio::test]
async fn host_home_is_hidden_with_its_secrets() {
    let scratch = Scratch::new();
    let fake_home = scratch.dir.path().join("home");
    std::fs::create_dir_all(fake_home.join(".ssh")).unwrap();
    std::fs::create_dir_all(fake_home.join(".aws")).unwrap();
    std::fs::write(fake_home.join(".ssh/id_ed25519"), "PRIVATE KEY").unwrap();
    std::fs::write(fake_home.join(".aws/credentials"), "aws_secret").unwrap();
    std::fs::write(fake_home.join(".bash_history"), "export TOKEN=x").unwrap();
    let fake_home = fake_home.canonicalize().unwrap();
    let setup = BwrapSetup {
        host_home: Some(fake_home.clone()),
        ..BwrapSetup::detect().unwrap()
    };
    let probe = format!(
        "ls -A {h}; cat {h}/.ssh/id_ed25519 {h}/.aws/credentials {h}/.bash_history; echo rc=$?",
        h = fake_home.display()
    );

    let sandbox = Sandbox::new_with_setup(&scratch.work(), &setup).unwrap();
    let out = sh(&sandbox, &probe).await;
    assert!(
        !out.output.contains("PRIVATE KEY") && !out.output.contains("aws_secret"),
        "{}",
        out.output
    );
    assert!(
        out.output.contains("No such file or directory"),
        "{}",
        out.output
    );
    assert!(out.output.ends_with("rc=1\n"), "{}", out.output);
    // Nothing of it is listed at all: the first line of output is already cat's error.
    assert!(out.output.starts_with("cat: "), "{}", out.output);

    // Without isolation the planted secrets are right there.
    let out = sh(&scratch.sandbox(SandboxMode::None), &probe).await;
    assert!(out.output.contains("PRIVATE KEY"), "{}", out.output);
}

#[tokio::test]
async fn a_workdir_inside_the_hidden_home_stays_writable() {
    let scratch = Scratch::new();
    std::fs::create_dir(scratch.dir.path().join("home")).unwrap();
    let home = scratch.dir.path().join("home").canonicalize().unwrap();
    let work = home.join("src/project");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(home.join(".netrc"), "password hunter2").unwrap();
    let setup = BwrapSetup {
        host_home: Some(home.clone()),
        ..BwrapSetup::detect().unwrap()
    };
    let sandbox = Sandbox::new_with_setup(&work, &setup).unwrap();
    let out = sh(
        &sandbox,
        &format!(
            "echo ok > made && ls -A {}; cat {}/.netrc",
            home.display(),
            home.display()
        ),
    )
    .await;
    assert_eq!(std::fs::read_to_string(work.join("made")).unwrap(), "ok\n");
    // Only the path down to the workdir exists in the hidden home.
    assert!(out.output.starts_with("src\n"), "{}", out.output);
    assert!(!out.output.contains("hunter2"), "{}", out.output);
}

#[tokio::test]
async fn real_home_and_root_show_nothing_but_the_toolchain() {
    let scratch = Scratch::new();
    let setup = BwrapSetup::detect().unwrap();
    let sandbox = Sandbox::new_with_setup(&scratch.work(), &setup).unwrap();
    let mut dirs = vec!["/root".to_owned(), "/home".to_owned()];
    dirs.extend(std::env::var("HOME"));
    for dir in dirs {
        let out = sh(&sandbox, &format!("ls -A {dir}")).await;
        assert!(out.success(), "{dir}: {}", out.output);
        let toolchain: Vec<_> = [&setup.cargo_home, &setup.rustup_home]
            .into_iter()
            .flatten()
            .filter_map(|p| p.strip_prefix(&dir).ok())
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        for entry in out.output.lines() {
            assert!(
                toolchain.iter().any(|t| t == entry),
                "{dir}/{entry} is visible"
            );
        }
    }
}

#[tokio::test]
async fn secret_files_are_masked() {
    let scratch = Scratch::new();
    assert!(
        exists(std::path::Path::new("/etc/shadow")),
        "the host has no /etc/shadow to hide"
    );
    let out = sh(
        &scratch.sandbox(SandboxMode::Bwrap),
        "cat /etc/shadow; echo rc=$?",
    )
    .await;
    assert!(!out.output.contains("root:"), "{}", out.output);
    assert!(out.output.ends_with("rc=1\n"), "{}", out.output);
    let out = sh(&scratch.sandbox(SandboxMode::None), "cat /etc/shadow").await;
    assert!(out.output.contains("root:"), "{}", out.output);
}

#[tokio::test]
async fn cargo_registry_tokens_are_masked() {
    let scratch = Scratch::new();
    let cargo_home = scratch.dir.path().join("cargo");
    std::fs::create_dir(&cargo_home).unwrap();
    std::fs::write(
        cargo_home.join("credentials.toml"),
        "token = \"cio-secret\"",
    )
    .unwrap();
    std::fs::write(cargo_home.join("config.toml"), "[net]\noffline = true\n").unwrap();
    let setup = BwrapSetup {
        cargo_home: Some(cargo_home.clone()),
        ..BwrapSetup::detect().unwrap()
    };
    let sandbox = Sandbox::new_with_setup(&scratch.work(), &setup).unwrap();
    let out = sh(
        &sandbox,
        "echo $CARGO_HOME; cat $CARGO_HOME/config.toml; cat $CARGO_HOME/credentials.toml",
    )
    .await;
    let cargo_home = cargo_home.canonicalize().unwrap();
    assert!(
        out.output.starts_with(&format!(
            "{}\n[net]\noffline = true\n",
            cargo_home.display()
        )),
        "{}",
        out.output
    );
    assert!(!out.output.contains("cio-secret"), "{}", out.output);
    assert_ne!(out.exit_code, Some(0));
}

#[tokio::test]
async fn there_is_no_network() {
    let scratch = Scratch::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = format!("bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' && echo connected");
    let out = sh(&scratch.sandbox(SandboxMode::Bwrap), &connect).await;
    assert_ne!(out.exit_code, Some(0), "{}", out.output);
    assert!(!out.output.contains("connected"), "{}", out.output);
    // Two header lines and the loopback device, nothing else.
    let out = sh(
        &scratch.sandbox(SandboxMode::Bwrap),
        "cat /proc/net/dev | wc -l",
    )
    .await;
    assert_eq!(out.output, "3\n");

    let out = sh(&scratch.sandbox(SandboxMode::None), &connect).await;
    assert_eq!(out.output, "connected\n");
}

#[tokio::test]
async fn only_sandbox_processes_are_visible() {
    let scratch = Scratch::new();
    let list = r#"for p in /proc/[0-9]*; do echo "${p#/proc/}"; done"#;
    let out = sh(&scratch.sandbox(SandboxMode::Bwrap), list).await;
    // bwrap's init and the shell.
    assert_eq!(out.output, "1\n2\n");
    let out = sh(&scratch.sandbox(SandboxMode::None), list).await;
    assert!(out.output.lines().count() > 2, "{}", out.output);
}

#[tokio::test]
async fn there_are_no_privileges_even_as_root() {
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    let out = sh(&sandbox, "grep CapEff /proc/self/status").await;
    assert_eq!(out.output, "CapEff:\t0000000000000000\n");
    let out = sh(
        &sandbox,
        "mount -o remount,rw / 2>&1; echo rc=$?; touch /etc/x 2>&1",
    )
    .await;
    assert!(!out.output.contains("rc=0"), "{}", out.output);
    assert!(
        out.output.contains("Read-only file system"),
        "{}",
        out.output
    );
}

#[tokio::test]
async fn git_works_in_a_worktree_whose_repository_is_hidden() {
    // Both under the host's /tmp, which the sandbox replaces with its own.
    let tmp = tempfile::tempdir().unwrap();
    let host = Sandbox::new(tmp.path(), SandboxMode::None).unwrap();
    let git = "git -c user.name=t -c user.email=t@example.invalid";
    let setup = format!(
        "{git} init -q repo && cd repo && echo one > a && {git} add a && {git} commit -qm first \\
         && {git} worktree add -q ../wt -b task"
    );
    let out = sh(&host, &setup).await;
    assert!(out.success(), "{}", out.output);

    let sandbox = Sandbox::new(&tmp.path().join("wt"), SandboxMode::Bwrap).unwrap();
    let out = sh(
        &sandbox,
        "echo two >> a && git log --format=%s && git diff --stat",
    )
    .await;
    assert!(out.success(), "{}", out.output);
    assert!(
        out.output.starts_with("first\n a | 1 +\n"),
        "{}",
        out.output
    );
    // History is read-only from inside.
    let out = sh(&sandbox, &format!("{git} commit -qam second")).await;
    assert!(!out.success(), "{}", out.output);
}
