//! The `nightshift` binary: argument parsing and glue. See the README for what it does.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the binary is the one place that prints"
)]

mod args;
mod config;
mod doctor;
mod models;
mod provider;
mod remote;
mod render;
mod run;
mod sandbox_cmd;
mod serve;
mod show;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = args::Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return fail(&anyhow::anyhow!(
                "could not start the async runtime: {error}"
            ));
        }
    };
    match runtime.block_on(dispatch(args)) {
        Ok(code) => code,
        Err(error) => fail(&error),
    }
}

async fn dispatch(cli: args::Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        args::Command::Run(run) => run::run(*run).await,
        args::Command::Show(show) if remote::configured(&show.client) => remote::show(show).await,
        args::Command::Show(show) => show::show(show),
        args::Command::Logs(logs) if remote::configured(&logs.client) => remote::logs(logs).await,
        args::Command::Logs(logs) => show::logs(logs),
        args::Command::Doctor => doctor::doctor(),
        args::Command::Model(command) => models::models(command).await,
        args::Command::Serve(serve) => serve::serve(serve).await,
        args::Command::Token(args::TokenCommand::Create { name }) => serve::create_token(&name),
        args::Command::Submit(submit) => remote::submit(*submit).await,
        args::Command::Ls(ls) => remote::ls(ls).await,
        args::Command::Diff(task) => remote::diff(task).await,
        args::Command::Apply(apply) => remote::apply(apply).await,
        args::Command::Reply(reply) => remote::reply(reply).await,
        args::Command::Cancel(task) => remote::cancel(task).await,
        args::Command::Sandbox(sandbox) => sandbox_cmd::sandbox(sandbox).await,
        args::Command::SandboxBridge { listen, socket } => {
            nightshift_sandbox::run_bridge(listen, &socket)
                .map_err(|e| anyhow::anyhow!("the network bridge failed: {e}"))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Errors that reach here are the user's to fix (a bad spec, a missing provider): exit 2, the
/// code for usage errors, with the message (which carries its own `hint:`) on stderr.
fn fail(error: &anyhow::Error) -> ExitCode {
    render::error(error);
    ExitCode::from(2)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NIGHTSHIFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}
