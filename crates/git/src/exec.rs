//! The one place that runs git.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::GitError;

/// How long one git command may run before it is stopped. Local operations take milliseconds;
/// this only catches the pathological ones (a filter waiting on the network, a stuck lock).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Variables that would point git at another repository, index or object store than the one
/// we name with `-C` / `--git-dir`; inherited from e.g. a hook that runs nightshift.
const REDIRECTING_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
];

/// Settings shared by every git command of one repository and its worktrees.
#[derive(Clone)]
pub(crate) struct Git {
    /// Extra environment for every command, applied after our own (tests isolate HOME here).
    env: Arc<[(OsString, OsString)]>,
    timeout: Duration,
}

/// What a finished git command left behind.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: String,
}

impl Output {
    /// Stdout as text, without the trailing newline git ends its answers with.
    /// stdout as a list of NUL-terminated names (`-z` output), lossy UTF-8.
    pub(crate) fn nul_separated(&self) -> Vec<String> {
        self.stdout
            .split(|b| *b == 0)
            .filter(|name| !name.is_empty())
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect()
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim_end().to_owned()
    }
}

impl std::fmt::Debug for Git {
    // Only the names of the extra variables: their values may be credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Git")
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Git {
    pub(crate) fn new(env: Vec<(OsString, OsString)>) -> Git {
        Git {
            env: env.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Runs git and returns its output whatever the exit status; `extra_env` is for this
    /// command only.
    #[expect(
        clippy::disallowed_methods,
        reason = "the git crate is the one place that runs git"
    )]
    pub(crate) fn run(
        &self,
        dir: &Path,
        args: &[&OsStr],
        extra_env: &[(&str, &str)],
    ) -> Result<Output, GitError> {
        let mut cmd = Command::new("git");
        cmd.arg("--no-pager").arg("-C").arg(dir);
        // Nothing of the user's configuration may run code on our behalf: no hooks (the
        // post-checkout one fires on `worktree add`), no fsmonitor daemon, and no automatic gc
        // or maintenance in the user's object store.
        for setting in [
            "core.hooksPath=/dev/null",
            "core.fsmonitor=false",
            "gc.auto=0",
            "maintenance.auto=false",
        ] {
            cmd.arg("-c").arg(setting);
        }
        cmd.args(args);
        for name in REDIRECTING_ENV {
            cmd.env_remove(name);
        }
        cmd.env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .env("GIT_PAGER", "cat")
            .env("PAGER", "cat")
            .env("GIT_EDITOR", "true")
            // Read-only commands must not take the index lock in the user's checkout.
            .env("GIT_OPTIONAL_LOCKS", "0");
        for (key, value) in self.env.iter() {
            cmd.env(key, value);
        }
        for (key, value) in extra_env {
            cmd.env(key, value);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group: a Ctrl-C meant for Nightshift (which then cancels the task and
        // commits the work) must not kill git halfway through a checkout or a commit.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);

        let command = describe(args);
        let mut child = cmd.spawn().map_err(|source| GitError::Spawn { source })?;
        // Drain both pipes on their own threads so a chatty git cannot block on a full pipe
        // while we wait for it to exit.
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());

        let deadline = Instant::now() + self.timeout;
        let timed_out = || GitError::Timeout {
            command: command.clone(),
            dir: dir.to_path_buf(),
            timeout: self.timeout,
        };
        let mut pause = Duration::from_millis(1);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    // Best effort: the child may have exited in the meantime.
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(timed_out());
                }
                Ok(None) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(source) => return Err(GitError::Spawn { source }),
            }
        };
        // A grandchild (a filter) could keep a pipe open after git exits; never wait past the
        // deadline for it.
        let remaining = || deadline.saturating_duration_since(Instant::now());
        let stdout = stdout.recv_timeout(remaining()).map_err(|_| timed_out())?;
        let stderr = stderr.recv_timeout(remaining()).map_err(|_| timed_out())?;
        Ok(Output {
            status,
            stdout,
            stderr: String::from_utf8_lossy(&stderr).trim_end().to_owned(),
        })
    }

    /// Runs git and turns a non-zero exit into [`GitError::Failed`] carrying git's stderr.
    pub(crate) fn ok(
        &self,
        dir: &Path,
        args: &[&OsStr],
        extra_env: &[(&str, &str)],
    ) -> Result<Output, GitError> {
        let output = self.run(dir, args, extra_env)?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(failed(dir, args, &output))
        }
    }
}

/// The error for a git command that exited unsuccessfully.
pub(crate) fn failed(dir: &Path, args: &[&OsStr], output: &Output) -> GitError {
    let status = match output.status.code() {
        Some(code) => format!("exit code {code}"),
        None => "killed by a signal".to_owned(),
    };
    GitError::Failed {
        command: describe(args),
        dir: dir.to_path_buf(),
        status,
        stderr: output.stderr.clone(),
    }
}

/// `std::path::absolute`, with the error saying which path it was about.
pub(crate) fn absolute(path: &Path) -> Result<PathBuf, GitError> {
    std::path::absolute(path).map_err(|source| GitError::Io {
        what: "could not make the path absolute:",
        path: path.to_path_buf(),
        source,
    })
}

fn describe(args: &[&OsStr]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error mid-way leaves what was read so far, which is all we can report.
            let _ = pipe.read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    rx
}

/// Builds a `&[&OsStr]` from strings, paths and `OsString`s alike.
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        &[$(::std::ffi::OsStr::new(&$arg)),*]
    };
}
pub(crate) use args;
