//! What this machine supports for isolation, and what Nightshift will use: the facts behind
//! `nightshift doctor` and the fallback ladder (bubblewrap, else refuse unless the user chose
//! `--sandbox none`).

use std::ffi::OsString;
use std::path::Path;

use crate::{Sandbox, locate_bwrap};

/// One fact about the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeCheck {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// Everything `nightshift doctor` reports about isolation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub checks: Vec<ProbeCheck>,
    /// True when bubblewrap works here, so agent commands will run isolated.
    pub isolation: bool,
    /// What to do when isolation cannot be had.
    pub fix: Option<String>,
}

/// Probes this machine, looking for `bwrap` on `search_path` (normally `$PATH`).
pub fn probe(search_path: Option<OsString>) -> Probe {
    let mut checks = Vec::new();
    let bwrap = match locate_bwrap(&search_path.unwrap_or_default()) {
        Ok(path) => {
            checks.push(check(
                "bubblewrap installed",
                true,
                path.display().to_string(),
            ));
            Some(path)
        }
        Err(error) => {
            checks.push(check(
                "bubblewrap installed",
                false,
                first_line(&error.to_string()),
            ));
            None
        }
    };
    checks.push(user_namespaces());
    let works = bwrap.as_deref().map(bwrap_works);
    match &works {
        Some(Ok(entered)) => {
            checks.push(check(
                "bubblewrap works",
                true,
                "ran `true` with new user, pid, net, ipc and uts namespaces".to_owned(),
            ));
            checks.push(if *entered {
                check(
                    "one sandbox per task",
                    true,
                    "bubblewrap builds it once; each command enters it (setns)".to_owned(),
                )
            } else {
                check(
                    "one sandbox per task",
                    false,
                    "setns is refused here: each command starts a bubblewrap of its own, \
                     a few ms slower but as isolated"
                        .to_owned(),
                )
            });
        }
        Some(Err(error)) => checks.push(check("bubblewrap works", false, error.clone())),
        None => checks.push(check("bubblewrap works", false, "not installed".to_owned())),
    }
    checks.extend(cgroups());
    let isolation = matches!(works, Some(Ok(_)));
    let fix = (!isolation).then(|| {
        if bwrap.is_none() {
            "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install \
             bubblewrap), or run with --sandbox none to run commands without isolation"
                .to_owned()
        } else {
            "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, or \
             on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0), or run with --sandbox \
             none to run commands without isolation"
                .to_owned()
        }
    });
    Probe {
        checks,
        isolation,
        fix,
    }
}

fn check(name: &'static str, ok: bool, detail: String) -> ProbeCheck {
    ProbeCheck { name, ok, detail }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

/// Whether a sandbox can be built, and if so whether commands enter it (else each command
/// gets a bubblewrap of its own).
fn bwrap_works(bwrap: &Path) -> Result<bool, String> {
    let dir =
        tempfile::tempdir().map_err(|e| format!("could not make a scratch directory: {e}"))?;
    Sandbox::new_with_bwrap(dir.path(), bwrap)
        .map(|sandbox| sandbox.sessions.is_some())
        .map_err(|error| first_line(&error.to_string()))
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn user_namespaces() -> ProbeCheck {
    let max = read_number("/proc/sys/user/max_user_namespaces");
    let unprivileged = read_number("/proc/sys/kernel/unprivileged_userns_clone");
    let ok = max.is_some_and(|m| m > 0) && unprivileged != Some(0);
    let detail = match (max, unprivileged) {
        (Some(0), _) => "disabled: /proc/sys/user/max_user_namespaces is 0".to_owned(),
        (_, Some(0)) => "unprivileged user namespaces are disabled \
                         (kernel.unprivileged_userns_clone = 0)"
            .to_owned(),
        (Some(max), _) => format!("available (up to {max})"),
        (None, _) => "unknown: /proc/sys/user/max_user_namespaces is unreadable".to_owned(),
    };
    check("user namespaces", ok, detail)
}

/// The cgroup limits Nightshift will actually use (the same detection the runs use).
fn cgroups() -> Vec<ProbeCheck> {
    let support = crate::cgroup_support();
    let fallback = |what: &str| format!("not available ({}); {what}", support.detail);
    vec![
        if support.memory {
            check("cgroup memory limit", true, support.detail.clone())
        } else {
            check(
                "cgroup memory limit",
                false,
                fallback("each process's address space is limited instead (RLIMIT_AS)"),
            )
        },
        if support.processes {
            check("cgroup process limit", true, support.detail.clone())
        } else {
            check(
                "cgroup process limit",
                false,
                fallback("RLIMIT_NPROC is used instead, which does not bind root"),
            )
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machine_without_bwrap_on_path_is_told_to_install_it() {
        let empty = tempfile::tempdir().unwrap();
        let probe = probe(Some(empty.path().as_os_str().to_owned()));
        assert!(!probe.isolation);
        assert!(
            probe
                .fix
                .as_deref()
                .unwrap()
                .contains("apt-get install bubblewrap")
        );
        let installed = &probe.checks[0];
        assert_eq!(installed.name, "bubblewrap installed");
        assert!(!installed.ok);
    }
}
