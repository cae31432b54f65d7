//! Command-line arguments. Validation of what they mean happens in `run` (via the worker's
//! spec validation) before anything is created.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "nightshift",
    version,
    about = "A background coding agent: give it a repository, a goal and checks; get back a verified branch."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a task now, in this process, and hand back a branch.
    Run(Box<RunArgs>),
    /// Print a past task's summary.
    Show(ShowArgs),
    /// Print a past task's events.
    Logs(LogsArgs),
    /// Report what this machine supports for isolation and what Nightshift will use.
    Doctor,
    /// The embedded local model and the configured providers: pull, list, check.
    #[command(subcommand, alias = "models")]
    Model(ModelsCommand),
    /// Run the daemon: the HTTP API and workers that run queued tasks in the background.
    Serve(ServeArgs),
    /// Manage API tokens for the daemon.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Queue a task on the daemon; prints its id and returns at once.
    Submit(Box<SubmitArgs>),
    /// List the daemon's tasks, newest first.
    Ls(LsArgs),
    /// Print a task's diff against its base commit.
    Diff(TaskIdArg),
    /// Bring a finished task's branch into this checkout (refuses to touch uncommitted work).
    Apply(ApplyArgs),
    /// Continue a finished task on its branch with a follow-up instruction.
    Reply(ReplyArgs),
    /// Stop a queued or running task.
    Cancel(TaskIdArg),
    /// Run one command under the task sandbox policy, for debugging.
    Sandbox(SandboxArgs),
    /// Inside the sandbox: relay 127.0.0.1 connections to Nightshift's network proxy.
    #[command(name = "sandbox-bridge", hide = true)]
    SandboxBridge {
        listen: std::net::SocketAddr,
        socket: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Download the embedded model (default: the default model) into the data directory.
    Pull {
        /// A model name from the catalog, e.g. qwen2.5-coder-1.5b.
        name: Option<String>,
    },
    /// List installed local models, the default provider and the profiles in the config file.
    Ls,
    /// Send small requests to a provider: reachable, streaming, tool calling.
    Check {
        /// A profile name from the config file (default: the default provider).
        profile: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// The directory the command may write to (the task's worktree in a real run).
    #[arg(long, default_value = ".", value_name = "PATH")]
    pub dir: PathBuf,
    /// Isolation: bwrap (default) or none.
    #[arg(long, value_enum)]
    pub sandbox: Option<SandboxArg>,
    /// Wall-clock limit for the command, e.g. 30s.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10m")]
    pub timeout: Duration,
    /// A host the command may reach through the proxy (repeatable), as in `run`.
    #[arg(long = "allow-domain", value_name = "HOST")]
    pub allow_domains: Vec<String>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// What to do, in plain words.
    #[arg(value_name = "GOAL")]
    pub goal: String,
    /// The git repository to work on.
    #[arg(long, default_value = ".", value_name = "PATH")]
    pub repo: PathBuf,
    /// The ref the task branch starts from.
    #[arg(long = "base", value_name = "REF")]
    pub base_ref: Option<String>,
    /// A shell command that must exit 0 for the task to succeed (repeatable).
    #[arg(long = "check", value_name = "COMMAND")]
    pub checks: Vec<String>,
    /// Maximum model requests.
    #[arg(long, default_value_t = nightshift_protocol::Budget::DEFAULT_MAX_STEPS)]
    pub max_steps: u32,
    /// Maximum tokens (input + output) across all model requests.
    #[arg(long)]
    pub max_tokens: Option<u64>,
    /// Wall-clock limit for the whole task, e.g. 30m or 1h30m.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// Maximum money the model requests may cost, in US dollars, at the profile's prices.
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,
    /// How many times the checks run before the task is given up as failed.
    #[arg(long, default_value_t = nightshift_protocol::TaskSpec::DEFAULT_MAX_VERIFY_ROUNDS)]
    pub max_verify_rounds: u32,
    /// Print the event stream as JSONL on stdout, then a final result object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Isolation for commands: bwrap (default) or none (no isolation; recorded in the task).
    #[arg(long, value_enum)]
    pub sandbox: Option<SandboxArg>,
    /// Commit author as "Name <email>" (default: Nightshift <nightshift@localhost>).
    #[arg(long, value_name = "NAME <EMAIL>")]
    pub author: Option<String>,
    /// A host commands may reach through Nightshift's proxy (repeatable): example.com,
    /// *.example.com, host:PORT. Without any, commands have no network.
    #[arg(long = "allow-domain", value_name = "HOST")]
    pub allow_domains: Vec<String>,
    /// An environment variable for the task's commands (repeatable): NAME=VALUE, or NAME alone
    /// to pass this environment's value through without storing it with the task.
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
}

/// Model settings; each overrides the environment and the config file.
#[derive(Debug, Args, Default)]
pub struct ModelArgs {
    /// OpenAI-compatible base URL, e.g. https://api.openai.com/v1 [env: NIGHTSHIFT_BASE_URL]
    #[arg(long)]
    pub base_url: Option<String>,
    /// A provider profile from the config file, or else a model name [env: NIGHTSHIFT_MODEL]
    #[arg(long)]
    pub model: Option<String>,
    /// API key; prefer NIGHTSHIFT_API_KEY, as flags are visible to other local users.
    #[arg(long)]
    pub api_key: Option<String>,
    /// The model's context window in tokens.
    #[arg(long)]
    pub context_window: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SandboxArg {
    Bwrap,
    None,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The task id, as printed by `nightshift run`.
    pub task_id: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The task id, as printed by `nightshift run`.
    pub task_id: String,
    /// Print events as JSONL.
    #[arg(long)]
    pub json: bool,
    /// Keep printing new events until the task finishes.
    #[arg(long, short)]
    pub follow: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on. Binds to loopback unless told otherwise.
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR:PORT")]
    pub listen: std::net::SocketAddr,
    /// How many tasks run at once (default: the number of CPU cores).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Isolation for commands: bwrap (default) or none.
    #[arg(long, value_enum)]
    pub sandbox: Option<SandboxArg>,
    /// Commit author as "Name <email>" (default: Nightshift <nightshift@localhost>).
    #[arg(long, value_name = "NAME <EMAIL>")]
    pub author: Option<String>,
    /// How long a running task's lease lasts without a heartbeat: after a crash, its task
    /// resumes this long after.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "15s", hide = true)]
    pub lease: Duration,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once, alone on stdout. Only its hash is kept.
    Create {
        /// A label to tell tokens apart.
        #[arg(long, default_value = "default")]
        name: String,
    },
}

/// Where the daemon is: flags over NIGHTSHIFT_URL / NIGHTSHIFT_TOKEN over the config file.
#[derive(Debug, Args, Default, Clone)]
pub struct ClientArgs {
    /// The daemon's URL, e.g. http://127.0.0.1:7878 [env: NIGHTSHIFT_URL]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// What to do, in plain words.
    #[arg(value_name = "GOAL")]
    pub goal: String,
    /// The git repository to work on (a path on the daemon's machine).
    #[arg(long, default_value = ".", value_name = "PATH")]
    pub repo: PathBuf,
    /// The ref the task branch starts from.
    #[arg(long = "base", value_name = "REF")]
    pub base_ref: Option<String>,
    /// A shell command that must exit 0 for the task to succeed (repeatable).
    #[arg(long = "check", value_name = "COMMAND")]
    pub checks: Vec<String>,
    /// Maximum model requests.
    #[arg(long)]
    pub max_steps: Option<u32>,
    /// Maximum tokens (input + output) across all model requests.
    #[arg(long)]
    pub max_tokens: Option<u64>,
    /// Wall-clock limit for the whole task, e.g. 30m.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// How many times the checks run before the task is given up as failed.
    #[arg(long)]
    pub max_verify_rounds: Option<u32>,
    /// A label to find the task by (repeatable).
    #[arg(long = "label", value_name = "LABEL")]
    pub labels: Vec<String>,
    /// A host commands may reach through Nightshift's proxy (repeatable).
    #[arg(long = "allow-domain", value_name = "HOST")]
    pub allow_domains: Vec<String>,
    /// Print the created task as JSON instead of its id.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only tasks in these states, e.g. running,queued.
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<String>,
    /// Only tasks of this repository.
    #[arg(long, value_name = "PATH")]
    pub repo: Option<PathBuf>,
    /// Only tasks with this label.
    #[arg(long)]
    pub label: Option<String>,
    /// At most this many tasks.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct TaskIdArg {
    /// The task id.
    pub task_id: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The task id.
    pub task_id: String,
    /// The checkout to bring the branch into.
    #[arg(long, default_value = ".", value_name = "PATH")]
    pub repo: PathBuf,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ReplyArgs {
    /// The task id.
    pub task_id: String,
    /// The follow-up instruction.
    pub message: String,
    #[command(flatten)]
    pub client: ClientArgs,
}
