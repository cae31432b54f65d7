//! Per-command control groups: the memory and process limits of the whole process tree, its
//! CPU time and peak memory, and the one reliable way to kill everything it started (a
//! `setsid` or a double fork escapes a process group, never its cgroup).
//!
//! Where the cgroups are is found once per process: cgroup v2 when this process's own cgroup
//! can delegate the `memory`/`pids` controllers to a child, else the v1 `memory`, `pids` and
//! `cpuacct` hierarchies (a "hybrid" machine). A `nightshift` directory is created under this
//! process's own cgroup in each, and one child per command under it; the command's first
//! process joins it between fork and exec, so nothing it forks can start outside. When no
//! cgroup can be had, the caller falls back to rlimits (and [`cgroup_support`] says so).

use std::fs;
use std::io::{self, ErrorKind};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::Limits;

/// Which controllers Nightshift can use on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupSupport {
    /// 1 or 2 when a cgroup hierarchy is used, `None` when limits fall back to rlimits.
    pub version: Option<u8>,
    /// Memory is limited for the whole command (else per process with RLIMIT_AS).
    pub memory: bool,
    /// The number of processes is limited for the whole command (else RLIMIT_NPROC, which
    /// does not apply to root).
    pub processes: bool,
    /// CPU time of the whole command is measured (else from wait4 of its first process).
    pub cpu_accounting: bool,
    /// One line for humans: what is used, or why not and what to do.
    pub detail: String,
}

/// What this machine offers; detected on first use, then cached for the process.
pub fn cgroup_support() -> CgroupSupport {
    let Some(h) = hierarchies() else {
        return CgroupSupport {
            version: None,
            memory: false,
            processes: false,
            cpu_accounting: false,
            detail: "no usable cgroup (none mounted, or this process may not create one under \
                     its own): memory is limited per process with RLIMIT_AS, processes with \
                     RLIMIT_NPROC (not effective for root); run as root or in a cgroup with \
                     delegated memory and pids controllers to limit the whole command"
                .to_owned(),
        };
    };
    let show = |dir: &Option<PathBuf>| {
        dir.as_ref()
            .map_or_else(|| "-".to_owned(), |d| d.display().to_string())
    };
    CgroupSupport {
        version: Some(if h.v2 { 2 } else { 1 }),
        memory: h.memory.is_some(),
        processes: h.pids.is_some(),
        cpu_accounting: h.cpu.is_some(),
        detail: format!(
            "cgroup v{}: memory {}, pids {}, cpu {}",
            if h.v2 { 2 } else { 1 },
            show(&h.memory),
            show(&h.pids),
            show(&h.cpu)
        ),
    }
}

/// The `nightshift` parent directory of each controller we may use.
#[derive(Debug)]
struct Hierarchies {
    v2: bool,
    memory: Option<PathBuf>,
    pids: Option<PathBuf>,
    cpu: Option<PathBuf>,
}

fn hierarchies() -> Option<&'static Hierarchies> {
    static FOUND: OnceLock<Option<Hierarchies>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let found = detect();
            match &found {
                Some(h) if h.memory.is_some() && h.pids.is_some() => {
                    tracing::debug!(?h, "limits are enforced with cgroups")
                }
                Some(h) => tracing::warn!(
                    ?h,
                    "only some cgroup controllers are usable; the others fall back to rlimits"
                ),
                None => tracing::warn!(
                    "no usable cgroup: memory and process limits fall back to rlimits \
                     (per process; the process limit does not apply to root)"
                ),
            }
            found
        })
        .as_ref()
}

fn detect() -> Option<Hierarchies> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let membership = fs::read_to_string("/proc/self/cgroup").ok()?;
    let mounts = parse_mounts(&mountinfo);
    let own = parse_membership(&membership);
    // Find the directory of our own cgroup in a hierarchy: its mount point plus our path
    // relative to the mount's root.
    let own_dir = |controller: &str| -> Option<PathBuf> {
        let mount = mounts
            .iter()
            .find(|m| m.controllers.iter().any(|c| c == controller))?;
        let path = own
            .iter()
            .find(|(c, _)| c.iter().any(|c| c == controller))?
            .1
            .clone();
        let rel = Path::new(&path).strip_prefix(&mount.root).ok()?;
        Some(mount.point.join(rel))
    };

    if let Some(h) = own_dir("").and_then(|dir| detect_v2(&dir)) {
        return Some(h);
    }
    let usable = |controller: &str| -> Option<PathBuf> {
        let parent = own_dir(controller)?.join("nightshift");
        prepare_parent(&parent).ok()?;
        Some(parent)
    };
    let h = Hierarchies {
        v2: false,
        memory: usable("memory"),
        pids: usable("pids"),
        cpu: usable("cpuacct"),
    };
    (h.memory.is_some() || h.pids.is_some() || h.cpu.is_some()).then_some(h)
}

/// cgroup v2: usable when our cgroup offers memory or pids and lets us enable them for a
/// child (the "no internal processes" rule forbids that in a non-root cgroup that holds
/// processes, unless it was delegated with them already enabled).
fn detect_v2(own: &Path) -> Option<Hierarchies> {
    let available = fs::read_to_string(own.join("cgroup.controllers")).ok()?;
    let has = |c: &str| available.split_whitespace().any(|x| x == c);
    if !has("memory") && !has("pids") {
        return None;
    }
    for c in ["memory", "pids"] {
        if has(c) {
            // Fails when already enabled or not allowed: the read below tells which.
            let _ = fs::write(own.join("cgroup.subtree_control"), format!("+{c}"));
        }
    }
    let parent = own.join("nightshift");
    prepare_parent(&parent).ok()?;
    for c in ["memory", "pids"] {
        let _ = fs::write(parent.join("cgroup.subtree_control"), format!("+{c}"));
    }
    let enabled = fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
    let on = |c: &str| enabled.split_whitespace().any(|x| x == c);
    if !on("memory") && !on("pids") {
        return None;
    }
    Some(Hierarchies {
        v2: true,
        memory: on("memory").then(|| parent.clone()),
        pids: on("pids").then(|| parent.clone()),
        // cpu.stat's usage is there in every v2 cgroup, controller or not.
        cpu: Some(parent),
    })
}

/// Creates `parent`, proves we can create and remove a child in it, and removes children left
/// by Nightshift processes that are gone (a crash skips their cleanup).
fn prepare_parent(parent: &Path) -> io::Result<()> {
    match fs::create_dir(parent) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let probe = parent.join(format!("probe-{}", std::process::id()));
    fs::create_dir(&probe)?;
    fs::remove_dir(&probe)?;
    if let Ok(entries) = fs::read_dir(parent) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.split('-').next()) else {
                continue;
            };
            let owner_gone = pid
                .parse::<u32>()
                .is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
            if owner_gone && entry.path().is_dir() {
                kill_all(&entry.path());
                let _ = fs::remove_dir(entry.path());
            }
        }
    }
    Ok(())
}

struct Mount {
    point: PathBuf,
    root: PathBuf,
    /// v1 controllers from the super options; `[""]` for the v2 hierarchy.
    controllers: Vec<String>,
}

fn parse_mounts(mountinfo: &str) -> Vec<Mount> {
    let mut mounts = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(point), Some(fstype)) = (left.get(3), left.get(4), right.first())
        else {
            continue;
        };
        let controllers = match *fstype {
            "cgroup2" => vec![String::new()],
            "cgroup" => right
                .get(2)
                .map(|opts| opts.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            _ => continue,
        };
        mounts.push(Mount {
            point: PathBuf::from(unescape(point)),
            root: PathBuf::from(unescape(root)),
            controllers,
        });
    }
    mounts
}

/// mountinfo writes space, tab, newline and backslash as octal escapes.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// `/proc/self/cgroup` lines `ID:controllers:path`; v2's controller list is empty.
fn parse_membership(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?.split(',').map(str::to_owned).collect();
            Some((controllers, parts.next()?.to_owned()))
        })
        .collect()
}

/// One command's cgroup(s): created before the spawn, torn down (everything in it killed) on
/// drop.
#[derive(Debug)]
pub(crate) struct CommandCgroup {
    v2: bool,
    memory: Option<PathBuf>,
    pids: Option<PathBuf>,
    cpu: Option<PathBuf>,
    /// Each directory once (in v2 the three are the same).
    dirs: Vec<PathBuf>,
}

/// What the cgroup saw of the command.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Usage {
    pub(crate) cpu: Option<Duration>,
    pub(crate) peak_memory: Option<u64>,
    pub(crate) oom_killed: bool,
    pub(crate) pids_limited: bool,
}

impl CommandCgroup {
    /// A fresh cgroup with `limits` applied, or `None` when this machine has none to give.
    pub(crate) fn create(limits: &Limits) -> Option<CommandCgroup> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let h = hierarchies()?;
        let name = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut cg = CommandCgroup {
            v2: h.v2,
            memory: None,
            pids: None,
            cpu: None,
            dirs: Vec::new(),
        };
        let mut make = |parent: &Option<PathBuf>| -> Option<PathBuf> {
            let dir = parent.as_ref()?.join(&name);
            if !cg.dirs.contains(&dir) {
                if let Err(e) = fs::create_dir(&dir) {
                    tracing::warn!(dir = %dir.display(), "cannot create the command's cgroup: {e}");
                    return None;
                }
                cg.dirs.push(dir.clone());
            }
            Some(dir)
        };
        let (memory, pids, cpu) = (make(&h.memory), make(&h.pids), make(&h.cpu));
        cg.memory = memory;
        cg.pids = pids;
        cg.cpu = cpu;
        if cg.dirs.is_empty() {
            return None;
        }
        if let Err(e) = cg.apply(limits) {
            tracing::warn!("cannot set the command's cgroup limits, using rlimits: {e}");
            return None;
        }
        Some(cg)
    }

    fn apply(&mut self, limits: &Limits) -> io::Result<()> {
        if let Some(dir) = &self.memory {
            match (limits.memory_bytes, self.v2) {
                (Some(bytes), true) => {
                    fs::write(dir.join("memory.max"), bytes.to_string())?;
                    // Swap would let the command go past the limit, only slower.
                    let _ = fs::write(dir.join("memory.swap.max"), "0");
                }
                (Some(bytes), false) => {
                    fs::write(dir.join("memory.limit_in_bytes"), bytes.to_string())?;
                    // Memory plus swap no more than memory alone: absent without swap accounting.
                    let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), bytes.to_string());
                }
                (None, _) => {}
            }
        }
        if let (Some(dir), Some(max)) = (&self.pids, limits.max_processes) {
            fs::write(dir.join("pids.max"), max.to_string())?;
        }
        Ok(())
    }

    pub(crate) fn limits_memory(&self) -> bool {
        self.memory.is_some()
    }

    pub(crate) fn limits_processes(&self) -> bool {
        self.pids.is_some()
    }

    pub(crate) fn measures_cpu(&self) -> bool {
        self.cpu.is_some()
    }

    /// `cgroup.procs` of each directory, opened now (close-on-exec) so that joining after fork
    /// is one `write` per file, which is async-signal-safe.
    pub(crate) fn procs_files(&self) -> io::Result<Vec<OwnedFd>> {
        self.dirs
            .iter()
            .map(|dir| {
                fs::OpenOptions::new()
                    .write(true)
                    .open(dir.join("cgroup.procs"))
                    .map(OwnedFd::from)
            })
            .collect()
    }

    /// CPU time of everything that ran in the cgroup so far.
    pub(crate) fn cpu_time(&self) -> Option<Duration> {
        let dir = self.cpu.as_ref()?;
        if self.v2 {
            let stat = fs::read_to_string(dir.join("cpu.stat")).ok()?;
            field(&stat, "usage_usec").map(Duration::from_micros)
        } else {
            read_u64(&dir.join("cpuacct.usage")).map(Duration::from_nanos)
        }
    }

    pub(crate) fn usage(&self) -> Usage {
        let mut usage = Usage {
            cpu: self.cpu_time(),
            ..Usage::default()
        };
        if let Some(dir) = &self.memory {
            let (peak, events, counter) = if self.v2 {
                ("memory.peak", "memory.events", "oom_kill")
            } else {
                (
                    "memory.max_usage_in_bytes",
                    "memory.oom_control",
                    "oom_kill",
                )
            };
            usage.peak_memory = read_u64(&dir.join(peak));
            usage.oom_killed = fs::read_to_string(dir.join(events))
                .ok()
                .and_then(|text| field(&text, counter))
                .is_some_and(|n| n > 0);
        }
        if let Some(dir) = &self.pids {
            usage.pids_limited = fs::read_to_string(dir.join("pids.events"))
                .ok()
                .and_then(|text| field(&text, "max"))
                .is_some_and(|n| n > 0);
        }
        usage
    }

    /// SIGKILL to everything in the cgroup, repeated until it is empty (or a second passed:
    /// the process limit bounds how many a fork bomb can add between two rounds).
    pub(crate) fn kill_all(&self) {
        let v2_killed = self.v2
            && self
                .dirs
                .first()
                .is_some_and(|dir| fs::write(dir.join("cgroup.kill"), "1").is_ok());
        if v2_killed {
            return;
        }
        // In v1 every hierarchy holds every process of the command: one is enough.
        if let Some(dir) = self.pids.as_ref().or(self.dirs.first()) {
            kill_all(dir);
        }
    }
}

impl Drop for CommandCgroup {
    fn drop(&mut self) {
        self.kill_all();
        let mut busy = Vec::new();
        for dir in self.dirs.drain(..) {
            if fs::remove_dir(&dir).is_err() {
                busy.push(dir);
            }
        }
        if busy.is_empty() {
            return;
        }
        // Killed processes take a moment to leave; do not make the caller wait for that.
        let v2 = self.v2;
        let spawned = std::thread::Builder::new()
            .name("nightshift-cgroup-cleanup".into())
            .spawn(move || remove_when_empty(busy, v2));
        if let Err(e) = spawned {
            tracing::warn!("cannot start the cgroup cleanup thread: {e}");
        }
    }
}

fn remove_when_empty(mut dirs: Vec<PathBuf>, v2: bool) {
    let started = Instant::now();
    while !dirs.is_empty() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
        dirs.retain(|dir| {
            if v2 {
                let _ = fs::write(dir.join("cgroup.kill"), "1");
            } else {
                kill_all(dir);
            }
            fs::remove_dir(dir).is_err()
        });
    }
    for dir in dirs {
        tracing::warn!(dir = %dir.display(), "could not remove the command's cgroup");
    }
}

/// SIGKILL to every process listed in `dir`'s `cgroup.procs`, until none is left.
fn kill_all(dir: &Path) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1) {
        let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) else {
            return;
        };
        let pids: Vec<u32> = procs
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            crate::sys::kill_process(pid);
        }
        std::thread::yield_now();
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The number after `name` in a "name value" per line file (memory.events, cpu.stat, ...).
fn field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_and_membership_of_a_hybrid_machine() {
        let mountinfo = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
            35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
            32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let mounts = parse_mounts(mountinfo);
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[0].point, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(mounts[0].controllers, ["rw", "memory"]);
        assert!(mounts[1].controllers.iter().any(|c| c == "cpuacct"));
        assert_eq!(mounts[2].controllers, [""]);

        let own = parse_membership("4:memory:/a/b\n2:cpu,cpuacct:/\n0::/\n");
        assert_eq!(own[0], (vec!["memory".to_owned()], "/a/b".to_owned()));
        assert_eq!(own[1].0, ["cpu", "cpuacct"]);
        assert_eq!(own[2], (vec![String::new()], "/".to_owned()));
    }

    #[test]
    fn fields_are_read_by_name() {
        let text = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(field(text, "oom_kill"), Some(3));
        assert_eq!(field(text, "oom"), None);
        assert_eq!(field("max 0\n", "max"), Some(0));
    }
}
