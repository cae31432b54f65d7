//! One bubblewrap sandbox per `Sandbox`, entered by every command: what must still hold per
//! command, and what happens around it.

use std::time::Duration;

use nightshift_sandbox::SandboxMode;

use super::{Scratch, processes_with, sh};

/// Our own child processes whose command line contains `marker` (other tests run sandboxes
/// at the same time, each in a process of its own).
fn our_children_with(marker: &str) -> Vec<u32> {
    let ours = std::process::id().to_string();
    processes_with(marker)
        .into_iter()
        .filter(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            status
                .lines()
                .any(|line| line.strip_prefix("PPid:").map(str::trim) == Some(ours.as_str()))
        })
        .collect()
}

#[tokio::test]
async fn nothing_keeps_running_between_commands() {
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    // The sandbox outlives the bwrap that built it: its namespaces are held open, not a process.
    assert_eq!(our_children_with("echo ready; read _"), Vec::<u32>::new());
    let out = sh(&sandbox, "sleep 60.4242 & echo started").await;
    assert_eq!(out.output, "started\n");
    assert_eq!(processes_with("sleep 60.4242"), Vec::<u32>::new());
    assert_eq!(our_children_with("nightshift-init"), Vec::<u32>::new());
}

#[tokio::test]
async fn concurrent_commands_in_one_sandbox_each_have_their_own_tmp_and_processes() {
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    let list = r#"for p in /proc/[0-9]*; do printf '%s ' "${p#/proc/}"; done; ls -A /tmp"#;
    let writes = format!("echo mine > /tmp/first; sleep 0.5; {list}");
    let slow = sh(&sandbox, &writes);
    let quick = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        sh(&sandbox, list).await
    };
    let (slow, quick) = tokio::join!(slow, quick);
    assert_eq!(slow.output, "1 2 first\nhome\n");
    assert_eq!(quick.output, "1 2 home\n");
}

#[tokio::test]
async fn a_worktree_made_again_at_the_same_path_is_the_one_commands_see() {
    let scratch = Scratch::new();
    let work = scratch.work();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    assert_eq!(sh(&sandbox, "echo one > a; ls").await.output, "a\n");
    // What a worker does when a task's turn restarts on a clean worktree.
    std::fs::remove_dir_all(&work).unwrap();
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("b"), "two\n").unwrap();
    let out = sh(&sandbox, "ls; echo three > c").await;
    assert_eq!(out.output, "b\n");
    assert_eq!(std::fs::read_to_string(work.join("c")).unwrap(), "three\n");
}

#[tokio::test]
async fn a_worktree_that_is_gone_is_a_clear_error() {
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    std::fs::remove_dir_all(scratch.work()).unwrap();
    let error = sandbox.run("true", &super::limits()).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("it is gone"), "{text}");
    assert!(text.contains("hint:"), "{text}");
}

#[tokio::test]
async fn the_user_and_groups_inside_are_bwraps() {
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    let out = sh(&sandbox, "id -u; id -g; cat /proc/self/uid_map").await;
    let uid = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid()
    });
    let uid = uid.unwrap();
    let mut lines = out.output.lines();
    assert_eq!(
        lines.next(),
        Some(uid.to_string().as_str()),
        "{}",
        out.output
    );
    assert!(lines.next().is_some(), "{}", out.output);
    // A user namespace maps exactly one id: ours.
    let map: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        map.first(),
        Some(&uid.to_string().as_str()),
        "{}",
        out.output
    );
    assert_eq!(map.last(), Some(&"1"), "{}", out.output);
}

#[tokio::test]
async fn nothing_of_nightshift_is_visible_inside() {
    // The process that joins the sandbox is a copy of ours: it must be gone before the command
    // runs, so that neither its environment nor its memory can be read through /proc.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    let out = sh(
        &sandbox,
        r#"for p in /proc/[0-9]*; do tr '\0' ' ' < $p/cmdline; echo; tr '\0' '\n' < $p/environ; done"#,
    )
    .await;
    assert!(out.success(), "{}", out.output);
    assert!(
        out.output
            .starts_with("/bin/sh -c /bin/sh -c \"$1\"; exit $? nightshift-init "),
        "{}",
        out.output
    );
    assert!(out.output.contains("USER=nightshift\n"), "{}", out.output);
    assert!(!out.output.contains("CARGO_MANIFEST_DIR"), "{}", out.output);
}

#[tokio::test]
async fn no_file_or_shared_memory_is_left_for_the_next_command() {
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    let out = sh(
        &sandbox,
        "echo x > /dev/shm/left; ipcmk -M 4096 >/dev/null && echo made; \
         for f in /dev/x /run/x /root/x /home/x; do { : > $f; } 2>/dev/null && echo wrote $f; done",
    )
    .await;
    assert_eq!(out.output, "made\n");
    let out = sh(&sandbox, "ls -A /dev/shm; ipcs -m | grep -c '^0x'").await;
    assert_eq!(out.output, "0\n");
}

#[tokio::test]
async fn sysctls_the_init_and_descriptors_give_nothing_away() {
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    // As uid 0 a sysctl needs no capability: kernel.core_pattern would run a program as the
    // host's root, and the hostname is shared by the task's commands.
    let out = sh(
        &sandbox,
        "[ -w /proc/sys/kernel/core_pattern ] && echo writable; \
         { echo x > /proc/sys/kernel/hostname; } 2>&1; \
         grep -E '^(CapEff|NoNewPrivs)' /proc/1/status; ls /proc/self/fd; ls -A /dev/pts",
    )
    .await;
    assert_eq!(
        out.output,
        "/bin/sh: 1: cannot create /proc/sys/kernel/hostname: Read-only file system\n\
         CapEff:\t0000000000000000\nNoNewPrivs:\t1\n0\n1\n2\n3\nptmx\n"
    );
}

/// Prints the caller's session keyring id (keyctl's KEYCTL_GET_KEYRING_ID of
/// KEY_SPEC_SESSION_KEYRING), with Python's ctypes: no keyutils on these machines.
const SESSION_KEYRING: &str = "python3 -c 'import ctypes; \
    print(ctypes.CDLL(None).syscall(250, 0, -3, 0))'";

#[tokio::test]
async fn each_command_has_a_session_keyring_of_its_own() {
    #[expect(
        clippy::disallowed_methods,
        reason = "our own keyring, read outside any sandbox on purpose"
    )]
    let ours = std::process::Command::new("/bin/sh")
        .args(["-c", SESSION_KEYRING])
        .output()
        .unwrap();
    let ours = String::from_utf8(ours.stdout).unwrap();
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    let first = sh(&sandbox, SESSION_KEYRING).await.output;
    let second = sh(&sandbox, SESSION_KEYRING).await.output;
    assert!(ours.trim().parse::<i64>().unwrap() > 0, "{ours}");
    assert!(first.trim().parse::<i64>().unwrap() > 0, "{first}");
    assert_ne!(first, ours);
    assert_ne!(first, second);
}

#[tokio::test]
async fn a_sandbox_without_namespaces_of_its_own_is_never_entered() {
    // A bwrap that answers --info-fd with its own pid, whose namespaces are ours: entering
    // them would run commands on the host. Nightshift must see that and give each command a
    // bubblewrap of its own instead.
    let scratch = Scratch::new();
    let real = nightshift_sandbox::locate_bwrap(&std::env::var_os("PATH").unwrap()).unwrap();
    let fake = scratch.dir.path().join("bwrap");
    std::fs::write(
        &fake,
        format!(
            r#"#!/bin/sh
fd=; prev=
for a in "$@"; do
  shift
  if [ "$prev" = --info-fd ]; then fd=$a; prev=; continue; fi
  prev=$a
  [ "$a" = --info-fd ] && continue
  set -- "$@" "$a"
done
[ -n "$fd" ] && printf '{{"child-pid": %d}}' $$ > /proc/self/fd/$fd
exec {} "$@"
"#,
            real.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sandbox = nightshift_sandbox::Sandbox::new_with_bwrap(&scratch.work(), &fake).unwrap();
    let out = sh(
        &sandbox,
        "tr '\\0' ' ' < /proc/1/cmdline | cut -d' ' -f1; wc -l < /proc/net/dev",
    )
    .await;
    // pid 1 is bwrap itself (not our entered init), and the network is the sandbox's own.
    assert_eq!(out.output, format!("{}\n3\n", real.display()));
}
