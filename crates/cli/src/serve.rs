//! `nightshift serve` (the daemon) and `nightshift token create` (its API tokens).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use nightshift_server::ServerConfig;

use crate::args::ServeArgs;
use crate::config::{Dirs, FileConfig};
use crate::{provider, render, run};

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let dirs = Dirs::from_env()?;
    let file = FileConfig::load(&dirs.config_file)?;
    let settings = provider::model_settings(&file, &args.model, &dirs.config_file)?;
    let worker = run::worker_config(
        &dirs,
        &file,
        &settings,
        args.sandbox,
        args.author.as_deref(),
    )?;
    let (model, embedded) = provider::client_and_embedded(&settings).await?;
    let store: Arc<dyn nightshift_store::Store> = Arc::from(dirs.open_store()?);
    if args.workers == Some(0) {
        bail!("--workers must be at least 1\nhint: leave it out to run one task per CPU core");
    }
    if args.lease < Duration::from_secs(1) {
        bail!("--lease must be at least 1s\nhint: leave it out to use the default (15s)");
    }
    let workers = args.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "could not listen on {}\nhint: is another daemon running there? choose another \
                 address with --listen 127.0.0.1:PORT",
                args.listen
            )
        })?;
    let address = listener
        .local_addr()
        .context("could not read the bound address")?;
    if !address.ip().is_loopback() {
        render::note(&format!(
            "listening on {address}, which other machines can reach; every call still needs a token"
        ));
    }
    let config = ServerConfig {
        workers,
        lease: args.lease,
        idle_poll: Duration::from_millis(500),
        worker,
        model,
        // The embedded model is served to other programs too, behind the same token.
        extra_routes: embedded.map(nightshift_embedded::openai::router),
        instance: instance_name(),
    };
    // Tests and scripts read the address from this line (useful with --listen 127.0.0.1:0).
    eprintln!(
        "nightshift: serving http://{address} with {workers} worker(s); store {}",
        nightshift_store::hide_password(&dirs.database_location())
    );
    if config.extra_routes.is_some() {
        render::note(&format!(
            "the embedded model also answers OpenAI-compatible requests at http://{address}/v1 \
             (same token: Authorization: Bearer <token>)"
        ));
    }
    nightshift_server::serve(listener, store, config, shutdown_signal())
        .await
        .context("the HTTP server failed")?;
    eprintln!("nightshift: stopped; unfinished tasks resume on the next start");
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Tells this daemon's workers apart from other processes' in the store's leases.
fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    format!("{host}-{}", std::process::id())
}

pub fn create_token(name: &str) -> anyhow::Result<ExitCode> {
    let dirs = Dirs::from_env()?;
    let store = dirs.open_store()?;
    let token = store
        .create_token(name)
        .context("could not create the token")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{token}").context("could not print the token")?;
    Ok(ExitCode::SUCCESS)
}
