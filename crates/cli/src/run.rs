//! `nightshift run`: validate the spec, run the task in this process, hand back the branch.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use nightshift_protocol::{Budget, Event, TaskSpec};
use nightshift_worker::WorkerConfig;

use crate::args::RunArgs;
use crate::config::{self, Dirs, FileConfig};
use crate::{provider, render};

const DEFAULT_SHELL_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// This very binary, which serves as the network bridge inside the sandbox.
pub fn network_bridge() -> anyhow::Result<std::path::PathBuf> {
    std::env::current_exe()
        .context("could not tell where the nightshift binary is (for the network bridge)")
}

/// How tasks run on this machine, from the config file and the flags: shared by `run` and
/// `serve`.
pub fn worker_config(
    dirs: &Dirs,
    file: &FileConfig,
    settings: &provider::ModelSettings,
    sandbox: Option<crate::args::SandboxArg>,
    author: Option<&str>,
) -> anyhow::Result<WorkerConfig> {
    let sandbox_mode = config::sandbox_mode(file, sandbox, &dirs.config_file)?;
    let author = match (author, &file.commit.author_name, &file.commit.author_email) {
        (Some(text), _, _) => Some(config::parse_author(text)?),
        (None, Some(name), Some(email)) => Some(nightshift_git::Author {
            name: name.clone(),
            email: email.clone(),
        }),
        _ => None,
    };
    Ok(WorkerConfig {
        data_dir: dirs.data.clone(),
        sandbox_mode,
        author,
        context_window: settings.context_window,
        prices: settings.prices,
        network_bridge: network_bridge()?,
        shell_timeout: file.sandbox.shell_timeout.unwrap_or(DEFAULT_SHELL_TIMEOUT),
        check_timeout: file.sandbox.check_timeout.unwrap_or(DEFAULT_CHECK_TIMEOUT),
        scaffold: settings.scaffold,
    })
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // Everything the user can get wrong is checked before anything is created.
    let dirs = Dirs::from_env()?;
    let file = FileConfig::load(&dirs.config_file)?;
    let spec = TaskSpec {
        repo: args.repo.display().to_string(),
        base_ref: args.base_ref.clone(),
        goal: args.goal.clone(),
        checks: args.checks.clone(),
        budget: Budget {
            max_steps: args.max_steps,
            max_tokens: args.max_tokens,
            timeout_secs: args
                .timeout
                .map(|t| t.as_secs().max(u64::from(!t.is_zero()))),
            max_cost_usd: args.max_cost,
        },
        max_verify_rounds: args.max_verify_rounds,
        labels: Vec::new(),
        allow_domains: args.allow_domains.clone(),
        env: args
            .env
            .iter()
            .map(|entry| match entry.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (entry.clone(), None),
            })
            .collect(),
    };
    let valid = nightshift_worker::validate(spec)?;
    let settings = provider::model_settings(&file, &args.model, &dirs.config_file)?;
    let worker_config = worker_config(
        &dirs,
        &file,
        &settings,
        args.sandbox,
        args.author.as_deref(),
    )?;
    let model = provider::client(&settings).await?;
    let store = dirs.open_store()?;

    let task_id = nightshift_worker::new_task_id();
    let json = args.json;
    let mut progress = render::Progress::new();
    let mut on_event = move |event: &Event| {
        if json {
            let mut stdout = std::io::stdout().lock();
            // A closed stdout (e.g. piped into `head`) must not stop the task.
            let _ = serde_json::to_writer(&mut stdout, event);
            let _ = writeln!(stdout);
            let _ = stdout.flush();
        }
        progress.event(event);
    };
    let cancel = async {
        if tokio::signal::ctrl_c().await.is_ok() {
            render::note(
                "interrupted: cancelling the task and committing the work so far \
                 (press Ctrl-C again to quit at once)",
            );
            tokio::spawn(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    render::note("interrupted twice: quitting now; the worktree is left as it is");
                    std::process::exit(130);
                }
            });
        } else {
            std::future::pending::<()>().await;
        }
    };
    let outcome = nightshift_worker::run_task(
        store.as_ref(),
        model,
        valid,
        task_id.clone(),
        &worker_config,
        cancel,
        &mut on_event,
    )
    .await;
    let result = match outcome {
        Ok(result) => result,
        Err(error) => {
            // The task existed but could not be recorded to the end: it ends in `error`, and
            // `--json` readers still get their result line.
            render::error(&anyhow::Error::new(error));
            nightshift_worker::unrecorded_failure(&task_id)
        }
    };
    let mut stdout = std::io::stdout().lock();
    // A closed stdout (e.g. piped into `head`) must not turn a finished task into a panic.
    let _ = if json {
        writeln!(stdout, "{}", render::result_line(&result)?)
    } else {
        write!(stdout, "{}", render::summary(&result))
    };
    Ok(ExitCode::from(result.status.exit_code()))
}
