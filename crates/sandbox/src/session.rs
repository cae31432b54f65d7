//! One bubblewrap sandbox per [`Sandbox`](crate::Sandbox) (per task), built once and entered by
//! every command.
//!
//! Starting bubblewrap costs several milliseconds (a user, network, mount, pid, ipc and uts
//! namespace, twenty-odd mounts, /dev and /proc), and every command of a task asks for the
//! same sandbox. So bubblewrap builds it once with a holder inside (`sh`, which says "ready"
//! and waits); we open the holder's namespaces (`/proc/PID/ns/*`), which keeps them alive after
//! it exits, and let it go. Each command then enters those namespaces between fork and exec
//! ([`sys::enter`]) and gets a mount, pid and IPC namespace of its own on top: its own /proc,
//! a fresh /tmp and /dev/shm (so each run still starts from an empty HOME), and everything it
//! started killed when its shell exits. What commands share beyond the worktree (/dev, the
//! hidden homes, /run) is read-only. The network namespace, loopback only, is shared: two
//! commands of one task running at once see each other's listening ports, as two shells of one
//! machine would. Commands with a network policy still get a bubblewrap of their own (their
//! proxy socket is bound per run).
//!
//! A worktree that is removed and made again at the same path is a different directory: the
//! sandbox's bind would still show the old one (or, once the kernel drops a bind whose
//! directory was removed, the host's read-only view). So the sandbox holds the worktree it was
//! built on open, and each run builds it again when that directory was removed or another one
//! took its path. (Its inode number alone would not tell: file systems reuse them at once.)

use std::ffi::{CString, OsString};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::{SandboxError, sys};

/// How long building the sandbox may take before we call bwrap broken.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The holder: tells us the sandbox is ready, then waits until we close its stdin.
const HOLDER: &str = "echo ready; read _";
/// The namespaces a command joins, after the user namespace that owns them. (IPC is not
/// shared: each command gets its own, so no shared memory or queue outlives it.)
const NAMESPACES: [(&str, libc::c_int); 4] = [
    ("mnt", libc::CLONE_NEWNS),
    ("net", libc::CLONE_NEWNET),
    ("uts", libc::CLONE_NEWUTS),
    ("cgroup", libc::CLONE_NEWCGROUP),
];

/// What builds a task's sandbox, and the one currently built.
#[derive(Debug)]
pub(crate) struct Sessions {
    bwrap: PathBuf,
    /// bwrap's arguments, ending in `--`.
    args: Vec<OsString>,
    env: Arc<[(OsString, OsString)]>,
    workdir: PathBuf,
    /// The host directories to bind again over each command's fresh /tmp; `None`: no fresh
    /// /tmp (the host's /tmp is the worktree).
    tmp_binds: Option<Vec<PathBuf>>,
    /// Built by `start`; `None` only after a rebuild failed.
    current: Mutex<Option<Session>>,
}

#[derive(Debug)]
struct Session {
    entry: Arc<sys::Entry>,
    /// The worktree this sandbox was built on, held open to tell whether it is still there.
    workdir: std::fs::File,
}

impl Session {
    /// Whether the worktree at `path` is still the directory this sandbox binds.
    fn still_binds(&self, path: &Path) -> bool {
        let Ok(held) = self.workdir.metadata() else {
            return false;
        };
        held.nlink() > 0
            && path
                .metadata()
                .is_ok_and(|now| (now.dev(), now.ino()) == (held.dev(), held.ino()))
    }
}

impl Sessions {
    /// Builds the sandbox once; an error says why bwrap cannot work here.
    pub(crate) fn start(
        bwrap: &Path,
        args: Vec<OsString>,
        env: Arc<[(OsString, OsString)]>,
        workdir: &Path,
        tmp_binds: Option<Vec<PathBuf>>,
    ) -> Result<Sessions, SandboxError> {
        // More binds under /tmp than the child can hold: keep the sandbox's own /tmp instead.
        let tmp_binds = tmp_binds.filter(|binds| binds.len() <= sys::MAX_TMP_BINDS);
        let sessions = Sessions {
            bwrap: bwrap.to_path_buf(),
            args,
            env,
            workdir: workdir.to_path_buf(),
            tmp_binds,
            current: Mutex::new(None),
        };
        sessions.entry()?;
        Ok(sessions)
    }

    /// The sandbox to enter, built again if the worktree was replaced since.
    pub(crate) fn entry(&self) -> Result<Arc<sys::Entry>, SandboxError> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let session = match current.take() {
            Some(session) if session.still_binds(&self.workdir) => session,
            stale => {
                if stale.is_some() {
                    tracing::debug!(workdir = %self.workdir.display(), "worktree replaced; new sandbox");
                }
                self.build()?
            }
        };
        let entry = session.entry.clone();
        *current = Some(session);
        Ok(entry)
    }

    fn build(&self) -> Result<Session, SandboxError> {
        let held = open_workdir(&self.workdir)?;
        let (namespaces, final_user) = self.start_holder()?;
        let fresh_tmp = self.tmp_binds.as_ref().map(|binds| sys::FreshTmp {
            home: c_path(Path::new(crate::setup::SANDBOX_HOME)),
            binds: binds
                .iter()
                .map(|path| sys::TmpBind {
                    path: c_path(path),
                    make: path
                        .ancestors()
                        .filter(|dir| dir.starts_with("/tmp") && *dir != Path::new("/tmp"))
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .map(c_path)
                        .collect(),
                })
                .collect(),
        });
        let entry = Arc::new(sys::Entry {
            namespaces,
            final_user,
            workdir: c_path(&self.workdir),
            fresh_tmp,
        });
        self.make_private(&entry)?;
        Ok(Session {
            entry,
            workdir: held,
        })
    }

    /// See [`sys::make_private`].
    fn make_private(&self, entry: &Arc<sys::Entry>) -> Result<(), SandboxError> {
        let fail = |detail: String| crate::unavailable_after_probe(&self.bwrap, &detail);
        let mut cmd = crate::spawn_site(Path::new("/bin/true"));
        cmd.env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        sys::make_private(&mut cmd, entry.clone());
        let status = crate::on_spawner(move || cmd.status())
            .and_then(|status| status)
            .map_err(|e| fail(format!("its mounts could not be made private: {e}")))?;
        if !status.success() {
            return Err(fail(format!(
                "its mounts could not be made private ({status})"
            )));
        }
        Ok(())
    }

    /// Runs bwrap with the holder inside and returns its namespaces, open.
    fn start_holder(&self) -> Result<Namespaces, SandboxError> {
        let fail = |detail: &str| crate::unavailable_after_probe(&self.bwrap, detail);
        let (info_read, info_write) = sys::pipe().map_err(SandboxError::Io)?;
        let (to_bwrap, from_bwrap) = self.args.split_at(self.args.len().saturating_sub(1));
        let mut cmd = crate::spawn_site(&self.bwrap);
        cmd.args(to_bwrap)
            .arg("--info-fd")
            .arg(info_write.as_raw_fd().to_string())
            .args(from_bwrap)
            .args(["/bin/sh", "-c", HOLDER])
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        sys::keep_open_on_exec(&mut cmd, info_write.as_raw_fd());
        let mut holder = crate::on_spawner(move || cmd.spawn())
            .and_then(|spawned| spawned)
            .map_err(|e| fail(&format!("it could not be started: {e}")))?;
        drop(info_write);
        let deadline = Instant::now() + START_TIMEOUT;
        let opened = (|| {
            let stdout = holder.stdout.as_ref().ok_or("no stdout")?;
            let ready = sys::read_until(stdout.as_fd(), deadline, |b| b.contains(&b'\n'))
                .map_err(|e| format!("waiting for it to start: {e}"))?;
            if ready != b"ready\n" {
                return Err(format!(
                    "the command inside did not start ({})",
                    String::from_utf8_lossy(&ready).trim()
                ));
            }
            let info = sys::read_until(info_read.as_fd(), deadline, |b| b.contains(&b'}'))
                .map_err(|e| format!("reading its --info-fd: {e}"))?;
            let pid = child_pid(&String::from_utf8_lossy(&info))
                .ok_or_else(|| format!("no child-pid in its --info-fd output: {info:?}"))?;
            open_namespaces(pid).map_err(|e| format!("opening the sandbox's namespaces: {e}"))
        })();
        // Closing its stdin ends the holder; the namespaces live on in our descriptors.
        drop(holder.stdin.take());
        if opened.is_err() {
            let _ = holder.kill();
        }
        let status = holder.wait().map_err(SandboxError::Io)?;
        opened.map_err(|detail| {
            let mut stderr = String::new();
            if let Some(mut pipe) = holder.stderr.take() {
                // The holder has exited, so this read ends.
                let _ = pipe.by_ref().take(64 * 1024).read_to_string(&mut stderr);
            }
            if stderr.trim().is_empty() {
                fail(&format!("{detail} ({status})"))
            } else {
                fail(&stderr)
            }
        })
    }
}

/// The `child-pid` of bwrap's `--info-fd` JSON: the sandbox's first process, as the host sees
/// it.
fn child_pid(info: &str) -> Option<u32> {
    let after = info.split_once("\"child-pid\"")?.1;
    let digits = after.trim_start().strip_prefix(':')?.trim_start();
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// The sandbox's namespaces to join, and the user namespace to end in (see [`sys::Entry`]).
type Namespaces = (Vec<(OwnedFd, libc::c_int)>, Option<OwnedFd>);

/// The namespaces of `pid` that differ from ours (bwrap may not have made a user or cgroup
/// namespace, and joining the one we are in is an error), the user namespace that owns its
/// mount namespace first.
fn open_namespaces(pid: u32) -> std::io::Result<Namespaces> {
    let theirs = |name: &str| std::fs::File::open(format!("/proc/{pid}/ns/{name}"));
    let ours = |name: &str| std::fs::metadata(format!("/proc/self/ns/{name}"));
    let id = |meta: std::fs::Metadata| (meta.dev(), meta.ino());
    let mut open = Vec::new();
    let mnt = theirs("mnt")?;
    let owner = std::fs::File::from(sys::owning_user_namespace(mnt.as_fd())?);
    let owner_id = id(owner.metadata()?);
    if owner_id != id(ours("user")?) {
        open.push((OwnedFd::from(owner), libc::CLONE_NEWUSER));
    }
    for (name, kind) in NAMESPACES {
        let file = theirs(name)?;
        if id(file.metadata()?) != id(ours(name)?) {
            open.push((OwnedFd::from(file), kind));
        } else if matches!(name, "mnt" | "net") {
            // Never run a command on the host's file system or network by mistake.
            return Err(std::io::Error::other(format!(
                "the sandbox has no {name} namespace of its own"
            )));
        }
    }
    let user = theirs("user")?;
    let user_id = id(user.metadata()?);
    let final_user =
        (user_id != owner_id && user_id != id(ours("user")?)).then(|| OwnedFd::from(user));
    Ok((open, final_user))
}

fn open_workdir(workdir: &Path) -> Result<std::fs::File, SandboxError> {
    std::fs::File::open(workdir).map_err(|e| SandboxError::Workdir {
        path: workdir.to_path_buf(),
        reason: format!("it is gone: {e}"),
        fix: "the task's worktree was removed while commands still ran in it; start the task again"
            .to_owned(),
    })
}

/// A path as C wants it. Paths from the OS have no NUL byte; an empty string is the safe
/// fallback (the system call then fails with ENOENT instead of acting on a wrong path).
fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_pid_is_read_from_bwrap_info() {
        let info = "{\n    \"child-pid\": 8709,\n    \"ipc-namespace\": 4026532180\n}";
        assert_eq!(child_pid(info), Some(8709));
        assert_eq!(child_pid("{}"), None);
    }
}
