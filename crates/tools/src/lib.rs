//! What the agent can do: `shell`, `read_file`, `write_file`, `edit_file`, `list_files`,
//! `search` and `finish`, each offered to the model with a JSON schema and confined to the
//! task's worktree.
//!
//! A [`Toolbox`] is built for one worktree; [`Toolbox::call`] takes a tool name and the raw
//! argument text the model produced and never fails: a bad argument, a path outside the
//! worktree, a missing file or a sandbox failure all come back as text with `is_error` set,
//! worded so the model can correct itself. Every result is trimmed to [`MAX_TOOL_OUTPUT`].
//!
//! This crate does not spawn processes itself: `shell` goes through
//! [`nightshift_sandbox::Sandbox`], while the file tools run in-process, holding every path to
//! the worktree (symlinks included; see `paths.rs`). It knows nothing of the model, the
//! conversation or events: accounting for `shell` is handed back as a
//! [`CommandReport`] for the caller to record.

mod files;
mod paths;
mod shell;
mod spec;
mod trim;
mod walk;

use std::io;
use std::path::{Path, PathBuf};

use nightshift_protocol::{CommandReport, ToolSpec};
use nightshift_sandbox::{Limits, Sandbox};

pub use spec::{TOOL_NAMES, compact_tool_specs, tool_specs};
pub use trim::trim_middle;

/// The most a tool result may hold, in bytes, as the model sees it.
pub const MAX_TOOL_OUTPUT: usize = 16 * 1024;

/// Why a [`Toolbox`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(
        "the worktree `{path}` cannot be used ({source}); check that it exists and is readable"
    )]
    Root {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the worktree `{0}` is not a directory; pass the directory of the task's checkout")]
    NotADirectory(PathBuf),
}

/// The result of one tool call.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolOutput {
    /// What the model sees; already trimmed to [`MAX_TOOL_OUTPUT`] (head and tail).
    pub text: String,
    pub is_error: bool,
    /// `Some(summary)` when the model called `finish`.
    pub finish: Option<String>,
    /// For `shell`: the sandbox's accounting, with purpose `shell`.
    pub command: Option<CommandReport>,
}

impl ToolOutput {
    fn ok(text: String) -> Self {
        ToolOutput {
            text,
            is_error: false,
            finish: None,
            command: None,
        }
    }

    fn error(text: String) -> Self {
        ToolOutput {
            is_error: true,
            ..ToolOutput::ok(text)
        }
    }

    fn from_result(result: Result<String, String>) -> Self {
        match result {
            Ok(text) => ToolOutput::ok(text),
            Err(text) => ToolOutput::error(text),
        }
    }
}

/// The tools for one task's worktree.
#[derive(Clone, Debug)]
pub struct Toolbox {
    root: PathBuf,
    sandbox: Sandbox,
    shell_limits: Limits,
}

impl Toolbox {
    /// Tools confined to `sandbox.workdir()` (canonicalized here); `shell_limits` applies to
    /// `shell` calls.
    pub fn new(sandbox: Sandbox, shell_limits: Limits) -> Result<Toolbox, ToolError> {
        let workdir = sandbox.workdir();
        let root = workdir.canonicalize().map_err(|source| ToolError::Root {
            path: workdir.to_path_buf(),
            source,
        })?;
        if !root.is_dir() {
            return Err(ToolError::NotADirectory(root));
        }
        Ok(Toolbox {
            root,
            sandbox,
            shell_limits,
        })
    }

    /// The worktree, canonical.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The limits `shell` calls run under.
    pub fn shell_limits(&self) -> &Limits {
        &self.shell_limits
    }

    /// The tools offered to the model, each with a JSON schema of its arguments.
    pub fn specs(&self) -> Vec<ToolSpec> {
        spec::tool_specs(self.shell_limits.timeout)
    }

    /// A file's bytes (`None` when it does not exist), so that a change can be undone with
    /// [`restore`](Self::restore). The path is confined as for `write_file`.
    pub fn snapshot(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        files::snapshot(&self.root, path)
    }

    /// Puts a file back as [`snapshot`](Self::snapshot) found it: the same bytes, or no file.
    pub fn restore(&self, path: &str, original: Option<&[u8]>) -> Result<(), String> {
        files::restore(&self.root, path, original)
    }

    /// Runs one call. Never fails: errors come back as text with `is_error` set.
    pub async fn call(&self, name: &str, arguments: &str) -> ToolOutput {
        let mut output = self.dispatch(name, arguments).await;
        output.text = trim_middle(&output.text, MAX_TOOL_OUTPUT);
        output
    }

    async fn dispatch(&self, name: &str, arguments: &str) -> ToolOutput {
        match name {
            "shell" => match spec::parse_args(name, arguments) {
                Ok(args) => shell::run(&self.sandbox, &self.shell_limits, args).await,
                Err(text) => ToolOutput::error(text),
            },
            "read_file" => self.blocking(name, arguments, files::read).await,
            "write_file" => self.blocking(name, arguments, files::write).await,
            "edit_file" => self.blocking(name, arguments, files::edit).await,
            "list_files" => self.blocking(name, arguments, walk::list).await,
            "search" => self.blocking(name, arguments, walk::search).await,
            "finish" => finish(arguments),
            _ => ToolOutput::error(format!(
                "there is no tool named `{name}`; the available tools are: {}",
                TOOL_NAMES.join(", ")
            )),
        }
    }

    /// Parses the arguments and runs a file tool on the blocking pool, so a large read or a
    /// search over a big tree does not stall the runtime.
    async fn blocking<A, F>(&self, name: &str, arguments: &str, tool: F) -> ToolOutput
    where
        A: serde::de::DeserializeOwned + Send + 'static,
        F: FnOnce(&Path, A) -> Result<String, String> + Send + 'static,
    {
        let args: A = match spec::parse_args(name, arguments) {
            Ok(args) => args,
            Err(text) => return ToolOutput::error(text),
        };
        let root = self.root.clone();
        match tokio::task::spawn_blocking(move || tool(&root, args)).await {
            Ok(result) => ToolOutput::from_result(result),
            Err(e) => ToolOutput::error(format!(
                "internal error: `{name}` did not complete ({e}); this is a bug in Nightshift, \
                 try another way"
            )),
        }
    }
}

fn finish(arguments: &str) -> ToolOutput {
    let args: spec::FinishArgs = match spec::parse_args("finish", arguments) {
        Ok(args) => args,
        Err(text) => return ToolOutput::error(text),
    };
    let summary = args.summary.trim();
    if summary.is_empty() {
        return ToolOutput::error(
            "the summary is empty; say what you changed and why, for the person who will \
             review it"
                .to_owned(),
        );
    }
    ToolOutput {
        finish: Some(summary.to_owned()),
        ..ToolOutput::ok("finish recorded; the completion checks run next".to_owned())
    }
}
