//! Runs one shell command (`/bin/sh -c CMD`) in a task's worktree, isolated, bounded and
//! accounted. It is the only crate that spawns agent commands: the agent's `shell` tool and the
//! task's checks both come through [`Sandbox::run`].
//!
//! With [`SandboxMode::Bwrap`] the command runs under bubblewrap: the host is read-only, the
//! worktree is the one writable host path, `/tmp` and `HOME` are private and empty, the host's
//! homes, `/run` and secret files are hidden, there is no network, no capability, its own pid
//! namespace, and an environment scrubbed down to an allowlist. bubblewrap builds that sandbox
//! once per `Sandbox` (a task) and each command enters it with a /proc, /tmp and pid namespace
//! of its own, which saves most of bubblewrap's start-up per command (see session.rs). A
//! [`NetworkPolicy`] lets allowed hosts be reached through a proxy this process runs outside
//! the sandbox, which records every request; the sandbox still has no network of its own. The Rust toolchain
//! (`CARGO_HOME`, `RUSTUP_HOME`) and, for a git worktree, its repository stay readable so that
//! builds and `git log`/`diff`/`status` work; neither is writable. [`SandboxMode::None`] runs the
//! same command with the same environment scrubbing and limits but **no isolation at all**; it
//! exists for machines where bubblewrap cannot work, and the user must ask for it.
//!
//! Every run is bounded: a wall-clock timeout that kills the whole process tree, output capped
//! to its head and tail, file size, CPU time, memory and number of processes (the last two for
//! the whole tree, in a per-command cgroup where the machine has one), and dropping the future
//! kills everything it started. Every run is accounted: exit status or signal, duration, CPU
//! time, peak memory, bytes of output, and which limit ended it.
//!
//! It does not decide *what* may run (that is the tools' and the task's business), does not
//! trim output for a model's context (only caps it), and does not redact secrets from output.
//! Linux only.

mod capture;
mod cgroup;
mod probe;
mod run;
mod session;
mod setup;
mod sys;
// Network policy (proxy outside, bridge inside).
mod bridge;
mod network;
mod proxy;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub use bridge::run_bridge;
pub use cgroup::{CgroupSupport, cgroup_support};
pub use network::{
    BRIDGE_SUBCOMMAND, NetworkPolicy, NetworkPolicyError, NetworkRequest, PROXY_ADDR,
};
pub use probe::{Probe, ProbeCheck, probe};
pub use run::{CommandOutput, LimitKind};

/// How a command is isolated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SandboxMode {
    /// bubblewrap namespaces: read-only host, writable worktree, no network.
    Bwrap,
    /// No isolation: the command runs on the host as the current user (environment still
    /// scrubbed, limits still applied).
    None,
}

impl SandboxMode {
    /// The name used on the command line and in events: `bwrap` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::Bwrap => "bwrap",
            SandboxMode::None => "none",
        }
    }
}

impl fmt::Display for SandboxMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SandboxMode {
    type Err = SandboxError;

    fn from_str(s: &str) -> Result<SandboxMode, SandboxError> {
        match s {
            "bwrap" => Ok(SandboxMode::Bwrap),
            "none" => Ok(SandboxMode::None),
            other => Err(SandboxError::UnknownMode(other.to_owned())),
        }
    }
}

/// Bounds on one run. Build it as `Limits { timeout, ..Limits::default() }` to keep the other
/// defaults. Memory and process limits hold for the whole command (all its processes together)
/// where a cgroup can be had, else per process with rlimits; see [`cgroup_support`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time after which the whole process tree is killed.
    pub timeout: Duration,
    /// Bytes of output kept (head and tail halves); the rest is counted, not stored.
    pub output_cap: usize,
    /// CPU time (user + system) the command may use: each process gets SIGXCPU past it
    /// (RLIMIT_CPU, whole seconds) and, with a cgroup, the whole tree is killed once their sum
    /// passes it. `None` (the default): only the timeout bounds it, so parallel builds may
    /// use every core for the whole timeout.
    pub cpu_time: Option<Duration>,
    /// Memory the command may use (default 4 GiB): a cgroup's limit (the kernel's OOM killer
    /// ends the command) or, without one, each process's address space (RLIMIT_AS).
    pub memory_bytes: Option<u64>,
    /// Processes (and threads) the command may have at once (default 512, or 64 per core on
    /// machines with more than 8, where parallel builds run that many compiler threads): a
    /// cgroup's `pids.max`, so a fork bomb is contained; without one, RLIMIT_NPROC, which root
    /// ignores.
    pub max_processes: Option<u32>,
    /// Largest file the command may write (default 1 GiB): RLIMIT_FSIZE, so one runaway file
    /// cannot fill the disk.
    pub file_size_bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            timeout: Duration::from_secs(600),
            output_cap: 1024 * 1024,
            cpu_time: None,
            memory_bytes: Some(4 << 30),
            max_processes: Some(default_max_processes()),
            file_size_bytes: Some(1 << 30),
        }
    }
}

fn default_max_processes() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    u32::try_from(cores.saturating_mul(64))
        .unwrap_or(u32::MAX)
        .max(512)
}

/// Why a command could not be run (a command that ran and failed is a [`CommandOutput`]).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// bubblewrap is missing or cannot create a sandbox on this machine.
    #[error("the bubblewrap sandbox is unavailable: {reason}\nhint: {fix}")]
    Unavailable { reason: String, fix: String },
    /// The worktree to run in is missing or unusable.
    #[error("cannot run commands in {}: {reason}\nhint: {fix}", path.display())]
    Workdir {
        path: PathBuf,
        reason: String,
        fix: String,
    },
    /// A variable from [`Sandbox::with_env`] cannot be put in an environment.
    #[error(
        "environment variable {name:?} cannot be passed to the command: {reason}\nhint: fix the task's env declaration"
    )]
    Env { name: String, reason: &'static str },
    /// The command (or bwrap) could not be started.
    #[error(
        "could not start the command: {0}\nhint: check that /bin/sh exists and that the worktree is still there"
    )]
    Spawn(std::io::Error),
    /// Reading the command's output or waiting for it failed.
    #[error("I/O error while running the command: {0}")]
    Io(std::io::Error),
    /// A sandbox mode name that does not exist.
    #[error(
        "unknown sandbox mode {0:?}\nhint: use \"bwrap\" (isolated) or \"none\" (no isolation)"
    )]
    UnknownMode(String),
    /// The network policy's proxy or bridge cannot be set up for this run.
    #[error("the network policy cannot be applied: {reason}\nhint: {fix}")]
    Network { reason: String, fix: String },
}

const FIX_INSTALL: &str = "install it: apt-get install bubblewrap (or dnf/pacman install bubblewrap), \
     or pass --sandbox none to run without isolation";
const FIX_NAMESPACES: &str = "bubblewrap needs user namespaces: enable them \
     (sysctl kernel.unprivileged_userns_clone=1; on Ubuntu 24.04+ also \
     kernel.apparmor_restrict_unprivileged_userns=0; in a container, allow them in its seccomp/AppArmor profile), \
     or pass --sandbox none to run without isolation";

/// What a bwrap sandbox is built from. [`BwrapSetup::detect`] reads it from this process's
/// environment, which is what [`Sandbox::new`] uses; build it by hand to use another bwrap or
/// to hide another HOME.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BwrapSetup {
    /// The bubblewrap program.
    pub bwrap: PathBuf,
    /// The host HOME to hide (besides /root, /home and /run, which are always hidden).
    pub host_home: Option<PathBuf>,
    /// Cargo's home: bound read-only at the same path and passed as `CARGO_HOME`, with its
    /// registry tokens (`credentials.toml`) masked.
    pub cargo_home: Option<PathBuf>,
    /// Rustup's home: bound read-only at the same path and passed as `RUSTUP_HOME`.
    pub rustup_home: Option<PathBuf>,
}

impl BwrapSetup {
    /// `bwrap` from PATH, HOME, and the Rust toolchain (`CARGO_HOME`/`RUSTUP_HOME`, else
    /// `~/.cargo`/`~/.rustup`).
    pub fn detect() -> Result<BwrapSetup, SandboxError> {
        let bwrap = locate_bwrap(&std::env::var_os("PATH").unwrap_or_default())?;
        let host_home = setup::host_home();
        let toolchain = setup::Toolchain::detect(host_home.as_deref());
        Ok(BwrapSetup {
            bwrap,
            host_home,
            cargo_home: toolchain.cargo_home,
            rustup_home: toolchain.rustup_home,
        })
    }
}

/// Runs commands in one worktree; cheap to clone. See the crate documentation.
#[derive(Clone, Debug)]
pub struct Sandbox {
    mode: SandboxMode,
    workdir: PathBuf,
    /// The program that is spawned: bwrap, or /bin/sh for mode None.
    program: PathBuf,
    /// Arguments before `-c CMD` (bwrap's, ending in `-- /bin/sh`; empty for mode None).
    prefix: Arc<[OsString]>,
    env: Arc<[(OsString, OsString)]>,
    extra_env: Vec<(String, String)>,
    /// Mode None's private HOME, removed when the last clone is dropped.
    _home: Option<Arc<tempfile::TempDir>>,
    /// The network policy, if any (see network.rs).
    network: Option<Arc<network::Network>>,
    /// The task's sandbox, built once and entered by each command (see session.rs); `None` in
    /// mode None and with a network policy, where each command gets a bubblewrap of its own.
    sessions: Option<Arc<session::Sessions>>,
}

impl Sandbox {
    /// Prepares to run commands in `workdir`. For `Bwrap`, finds `bwrap` on PATH and checks that
    /// it actually works here by running `true` in the same sandbox; on failure the error says
    /// why and how to fix it. Blocks for the few milliseconds that takes.
    pub fn new(workdir: &Path, mode: SandboxMode) -> Result<Sandbox, SandboxError> {
        match mode {
            SandboxMode::Bwrap => Sandbox::new_with_setup(workdir, &BwrapSetup::detect()?),
            SandboxMode::None => Sandbox::unisolated(workdir),
        }
    }

    /// Like `new` with `Bwrap`, using the bubblewrap program at `bwrap` instead of PATH's.
    pub fn new_with_bwrap(workdir: &Path, bwrap: &Path) -> Result<Sandbox, SandboxError> {
        let host_home = setup::host_home();
        let toolchain = setup::Toolchain::detect(host_home.as_deref());
        let setup = BwrapSetup {
            bwrap: bwrap.to_path_buf(),
            host_home,
            cargo_home: toolchain.cargo_home,
            rustup_home: toolchain.rustup_home,
        };
        Sandbox::new_with_setup(workdir, &setup)
    }

    /// Like `new` with `Bwrap`, from an explicit description of the host.
    pub fn new_with_setup(workdir: &Path, setup: &BwrapSetup) -> Result<Sandbox, SandboxError> {
        let workdir = check_workdir(workdir)?;
        if !is_executable(&setup.bwrap) {
            return Err(SandboxError::Unavailable {
                reason: format!("there is no bwrap program at {}", setup.bwrap.display()),
                fix: FIX_INSTALL.to_owned(),
            });
        }
        let host_home = setup::existing_dir(setup.host_home.clone());
        let toolchain = setup::Toolchain {
            cargo_home: setup.cargo_home.clone(),
            rustup_home: setup.rustup_home.clone(),
        }
        .resolved();
        let mut prefix = setup::bwrap_args(&workdir, host_home.as_deref(), &toolchain);
        prefix.push("/bin/sh".into());
        let env: Arc<[(OsString, OsString)]> = setup::base_env(
            Path::new(setup::SANDBOX_HOME),
            Path::new("/tmp"),
            &toolchain,
        )
        .into();
        let sessions = session::Sessions::start(
            &setup.bwrap,
            setup::shared_bwrap_args(&workdir, host_home.as_deref(), &toolchain),
            env.clone(),
            &workdir,
            setup::binds_in_tmp(&workdir, host_home.as_deref(), &toolchain),
        );
        let mut sandbox = Sandbox {
            mode: SandboxMode::Bwrap,
            workdir,
            program: setup.bwrap.clone(),
            prefix: prefix.into(),
            env,
            extra_env: Vec::new(),
            _home: None,
            network: None,
            sessions: None,
        };
        // Entering a sandbox needs setns, which some container profiles forbid although bwrap
        // itself works: then each command gets a bubblewrap of its own, slower but as isolated.
        let entered = sessions.and_then(|sessions| {
            sandbox.sessions = Some(Arc::new(sessions));
            run::probe(&sandbox)
        });
        if let Err(error) = entered {
            sandbox.sessions = None;
            // This one's error says whether bwrap works here at all.
            run::probe(&sandbox)?;
            let reason = match error {
                SandboxError::Unavailable { reason, .. } => reason,
                other => other.to_string(),
            };
            tracing::warn!(
                reason,
                "commands cannot enter the task's sandbox; each gets a bubblewrap of its own"
            );
        }
        Ok(sandbox)
    }

    fn unisolated(workdir: &Path) -> Result<Sandbox, SandboxError> {
        let workdir = check_workdir(workdir)?;
        let home = tempfile::Builder::new()
            .prefix("nightshift-home-")
            .tempdir()
            .map_err(SandboxError::Io)?;
        let toolchain = setup::Toolchain::detect(setup::host_home().as_deref());
        let env = setup::base_env(home.path(), &std::env::temp_dir(), &toolchain);
        Ok(Sandbox {
            mode: SandboxMode::None,
            workdir,
            program: PathBuf::from("/bin/sh"),
            prefix: Arc::from([]),
            env: env.into(),
            extra_env: Vec::new(),
            _home: Some(Arc::new(home)),
            network: None,
            sessions: None,
        })
    }

    /// The isolation in force.
    pub fn mode(&self) -> SandboxMode {
        self.mode
    }

    /// The worktree commands run in (canonical: symlinks resolved).
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// Extra env vars the task declares (added to the scrubbed allowlist; they win over it).
    pub fn with_env(mut self, vars: Vec<(String, String)>) -> Sandbox {
        self.extra_env.extend(vars);
        self
    }

    /// Runs `sh -c command` in the workdir. Dropping the returned future kills the whole
    /// process tree.
    pub async fn run(&self, command: &str, limits: &Limits) -> Result<CommandOutput, SandboxError> {
        run::run(self, command, limits).await
    }

    /// The task's sandbox to enter, when commands enter one rather than start bwrap each.
    fn session_entry(&self) -> Result<Option<Arc<sys::Entry>>, SandboxError> {
        self.sessions.as_ref().map(|s| s.entry()).transpose()
    }

    /// The full command line and environment for `sh -c command`, before stdio and limits.
    /// `entering`: the command will enter the task's sandbox itself ([`sys::enter`]), so this
    /// is `/bin/sh` alone and the directory is changed inside.
    fn command(
        &self,
        command: &str,
        entering: bool,
    ) -> Result<std::process::Command, SandboxError> {
        for (name, value) in &self.extra_env {
            let reason = if name.is_empty() {
                Some("the name is empty")
            } else if name.contains('=') {
                Some("the name contains '='")
            } else if name.contains('\0') || value.contains('\0') {
                Some("it contains a NUL byte")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(SandboxError::Env {
                    name: name.clone(),
                    reason,
                });
            }
        }
        let mut cmd = if entering {
            // The entered process is its pid namespace's init, which ignores the signals it
            // has no handler for (`kill $$` would do nothing): so a first shell runs the
            // command's shell as its child and exits with its status (128+N for signal N, as
            // bwrap reports it).
            let mut cmd = spawn_site(Path::new("/bin/sh"));
            cmd.args([
                "-c",
                "/bin/sh -c \"$1\"; exit $?",
                "nightshift-init",
                command,
            ]);
            cmd
        } else {
            let mut cmd = spawn_site(&self.program);
            cmd.args(self.prefix.iter())
                .arg("-c")
                .args(network::command_args(self, command))
                .current_dir(&self.workdir);
            cmd
        };
        cmd.env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)));
        Ok(cmd)
    }
}

/// The one place this crate creates a process: everything it runs is built here.
#[expect(
    clippy::disallowed_methods,
    reason = "the sandbox is the one place that spawns agent commands"
)]
pub(crate) fn spawn_site(program: &Path) -> std::process::Command {
    std::process::Command::new(program)
}

/// Runs `spawn` on the one thread this crate forks from, and waits for it. The kernel ties a
/// process's parent-death signal (which kills a command, or bwrap, when Nightshift dies) to the
/// *thread* that forked it, and tokio retires its threads (a worker that ran `block_in_place`
/// ends up in the blocking pool, which lets idle threads go after ten seconds): a command
/// forked there would be killed mid-run. This thread lives as long as the process.
pub(crate) fn on_spawner<T: Send + 'static>(
    spawn: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<T> {
    type Job = Box<dyn FnOnce() + Send>;
    static JOBS: std::sync::OnceLock<Option<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    let jobs = JOBS.get_or_init(|| {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("nightshift-spawner".to_owned())
            .spawn(move || {
                for job in queue {
                    job();
                }
            })
            .ok()
            .map(|_| jobs)
    });
    let gone = || std::io::Error::other("the thread that starts commands is gone");
    let jobs = jobs.as_ref().ok_or_else(gone)?;
    let (reply, answer) = std::sync::mpsc::sync_channel(1);
    jobs.send(Box::new(move || {
        let _ = reply.send(spawn());
    }))
    .map_err(|_| gone())?;
    answer.recv().map_err(|_| gone())
}

/// Finds `bwrap` in a PATH-style list of directories.
pub fn locate_bwrap(search_path: &OsStr) -> Result<PathBuf, SandboxError> {
    std::env::split_paths(search_path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join("bwrap"))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| SandboxError::Unavailable {
            reason: "bwrap (bubblewrap) is not on PATH".to_owned(),
            fix: FIX_INSTALL.to_owned(),
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn check_workdir(workdir: &Path) -> Result<PathBuf, SandboxError> {
    let fail = |reason: String| SandboxError::Workdir {
        path: workdir.to_path_buf(),
        reason,
        fix: "pass the path of the task's worktree, which must be an existing directory".to_owned(),
    };
    let canonical = workdir
        .canonicalize()
        .map_err(|e| fail(format!("it cannot be resolved: {e}")))?;
    if !canonical.is_dir() {
        return Err(fail("it is not a directory".to_owned()));
    }
    if canonical == Path::new("/") {
        return Err(fail(
            "it is the root directory, which would make the whole host writable".to_owned(),
        ));
    }
    Ok(canonical)
}

pub(crate) fn unavailable_after_probe(bwrap: &Path, detail: &str) -> SandboxError {
    let detail = detail.trim();
    let detail = if detail.is_empty() {
        "no message"
    } else {
        detail
    };
    SandboxError::Unavailable {
        reason: format!(
            "{} cannot create a sandbox on this machine: {detail}",
            bwrap.display()
        ),
        fix: FIX_NAMESPACES.to_owned(),
    }
}
