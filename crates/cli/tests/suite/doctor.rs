//! `nightshift doctor` tells the truth about isolation; `nightshift sandbox` runs one command
//! under the task policy.

use std::process::Command;

use super::harness::{World, run};

fn nightshift(world: &World) -> Command {
    world.command()
}

#[test]
fn doctor_reports_bubblewrap_and_what_will_be_used() {
    let world = World::new(&[("a.txt", "a\n")]);
    let out = run({
        let mut c = nightshift(&world);
        c.arg("doctor");
        c
    });
    assert_eq!(out.code(), 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("✓ bubblewrap installed"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("✓ bubblewrap works"), "{}", out.stdout);
    assert!(
        out.stdout.contains("✓ one sandbox per task"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("will run agent commands and checks in bubblewrap"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("no model provider is configured"),
        "{}",
        out.stdout
    );
}

#[test]
fn doctor_on_a_machine_without_bubblewrap_says_it_will_refuse_and_how_to_fix_it() {
    let world = World::new(&[("a.txt", "a\n")]);
    let empty = world.dir.path().join("empty-bin");
    std::fs::create_dir(&empty).unwrap();
    let out = run({
        let mut c = nightshift(&world);
        c.arg("doctor").env("PATH", &empty);
        c
    });
    assert_eq!(out.code(), 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("✗ bubblewrap installed"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("will REFUSE to run agent commands"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("apt-get install bubblewrap"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("--sandbox none"), "{}", out.stdout);
}

#[test]
fn a_run_without_bubblewrap_refuses_commands_unless_sandbox_none_is_chosen() {
    let shell = || super::harness::tool("shell", serde_json::json!({"command": "echo hi > b.txt"}));
    // The first run gets one answer before it is refused; the second gets the rest.
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![
        shell(),
        shell(),
        super::harness::finish("wrote b"),
    ]);
    // git and sh must still be found; only bwrap is missing.
    let bin = world.dir.path().join("bin-without-bwrap");
    std::fs::create_dir(&bin).unwrap();
    for tool in ["git", "sh"] {
        let found = which(tool);
        std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
    }
    let refused = run({
        let mut c = world.command();
        c.args(["run", "--json", "--repo"])
            .arg(&world.repo)
            .arg("Write b");
        c.env("PATH", &bin);
        c
    });
    assert_eq!(refused.code(), 5, "{}", refused.stderr);
    let result = refused.result();
    assert_eq!(result["status"], "error");
    let reason = result["reason"].as_str().unwrap();
    assert!(
        reason.contains("refusing to run agent commands"),
        "{reason}"
    );
    assert!(reason.contains("apt-get install bubblewrap"), "{reason}");
    assert_eq!(
        world.server().requests().len(),
        1,
        "no command ran after the refusal"
    );

    // Choosing no isolation explicitly runs the task, and the choice is on the record.
    let unisolated = run({
        let mut c = world.command();
        c.args(["run", "--json", "--sandbox", "none", "--repo"])
            .arg(&world.repo)
            .arg("Write b");
        c.env("PATH", &bin);
        c
    });
    assert_eq!(unisolated.code(), 0, "{}", unisolated.stderr);
    let notices = unisolated.events_of("notice");
    assert!(
        notices
            .iter()
            .any(|n| n["message"].as_str().unwrap().contains("WITHOUT isolation")),
        "{notices:?}"
    );
    let commands = unisolated.events_of("command_finished");
    assert_eq!(commands[0]["sandbox"], "none");
    let result = unisolated.result();
    assert_eq!(result["sandbox"], "none");
    let id = result["task_id"].as_str().unwrap();
    let show = world.nightshift(&["show", id]);
    assert!(show.stdout.contains("sandbox: NONE"), "{}", show.stdout);
}

fn which(tool: &str) -> std::path::PathBuf {
    for dir in ["/usr/local/bin", "/usr/bin", "/bin"] {
        let candidate = std::path::Path::new(dir).join(tool);
        if candidate.exists() {
            return candidate;
        }
    }
    panic!("{tool} not found");
}

#[test]
fn sandbox_runs_one_command_isolated_and_passes_its_exit_code() {
    let world = World::new(&[("a.txt", "a\n")]);
    let out = run({
        let mut c = nightshift(&world);
        c.args(["sandbox", "--dir"])
            .arg(&world.repo)
            .args([
                "--",
                "sh",
                "-c",
                "cat a.txt; echo key=$NIGHTSHIFT_API_KEY; ls $HOME | wc -l; exit 3",
            ])
            .env("NIGHTSHIFT_API_KEY", "sk-must-not-leak");
        c
    });
    assert_eq!(out.code(), 3, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "a\nkey=\n0\n");
    assert!(out.stderr.contains("exit 3"), "{}", out.stderr);
    assert!(out.stderr.contains("sandbox bwrap"), "{}", out.stderr);
}
