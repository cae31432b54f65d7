//! The few raw libc calls the sandbox needs: a pipe for the command's output, killing a process
//! group, and resource limits applied between fork and exec. Every `unsafe` block of the crate
//! lives here, each with the reason it is sound.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// A pipe whose two ends close on exec (the child gets the write end through `Stdio`, which
/// dup2s it onto fds 1 and 2 without the flag). Returns `(read end, write end)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds: [libc::c_int; 2] = [-1, -1];
    // SAFETY: `fds` is a valid, writable array of two c_ints, which is what pipe2 expects.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and nothing else owns them.
    let ends = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok(ends)
}

/// Sends SIGKILL to every process of the group `pgid` (errors such as "no such group" are
/// ignored: the point is only that nothing of the group survives).
pub(crate) fn kill_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    // 0 would mean our own group and 1 would be init's: never ours to kill.
    if pgid <= 1 {
        return;
    }
    // SAFETY: killpg takes plain integers and has no memory-safety preconditions.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

/// Largest file the command may write (larger writes fail with EFBIG / SIGXFSZ): stops a
/// runaway command from filling the disk with one file.
const MAX_FILE_SIZE: libc::rlim_t = 1 << 30;
/// Process count cap for non-root users. The kernel counts all processes of the real user, so
/// this stays well above what a desktop session runs; it only stops a fork bomb early.
const MAX_PROCESSES: libc::rlim_t = 8192;

/// Lowers resource limits in the child before exec: file size, no core dumps, and (when not
/// root, for whom the kernel ignores it) the number of processes. Limits are only ever lowered,
/// hard limit included, so the command cannot raise them back.
pub(crate) fn limit_resources(cmd: &mut Command) -> io::Result<()> {
    let fsize = lowered(libc::RLIMIT_FSIZE, MAX_FILE_SIZE)?;
    let core = lowered(libc::RLIMIT_CORE, 0)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let nproc = if root {
        None
    } else {
        Some(lowered(libc::RLIMIT_NPROC, MAX_PROCESSES)?)
    };
    let hook = move || -> io::Result<()> {
        set(libc::RLIMIT_FSIZE, fsize)?;
        set(libc::RLIMIT_CORE, core)?;
        if let Some(nproc) = nproc {
            set(libc::RLIMIT_NPROC, nproc)?;
        }
        Ok(())
    };
    // SAFETY: the hook runs between fork and exec, where only async-signal-safe calls are
    // allowed; it calls setrlimit only (and builds an io::Error from errno on failure, which
    // does not allocate for OS errors). The limit values were computed before the fork.
    unsafe {
        cmd.pre_exec(hook);
    }
    Ok(())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Resource = libc::c_int;

/// The current limit of `resource` with both soft and hard lowered to at most `max`.
fn lowered(resource: Resource, max: libc::rlim_t) -> io::Result<libc::rlimit> {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `current` is a valid, writable rlimit struct.
    if unsafe { libc::getrlimit(resource, &mut current) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(libc::rlimit {
        rlim_cur: current.rlim_cur.min(max),
        rlim_max: current.rlim_max.min(max),
    })
}

fn set(resource: Resource, limit: libc::rlimit) -> io::Result<()> {
    // SAFETY: `limit` is a valid rlimit struct that setrlimit only reads.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
