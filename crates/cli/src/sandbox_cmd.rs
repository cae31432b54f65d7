//! `nightshift sandbox -- CMD`: one command under the task sandbox policy, for debugging.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use nightshift_protocol::EventKind;
use nightshift_sandbox::{Limits, NetworkPolicy, Sandbox};

use crate::args::SandboxArgs;
use crate::config::{self, Dirs, FileConfig};
use crate::render;

pub async fn sandbox(args: SandboxArgs) -> anyhow::Result<ExitCode> {
    let dirs = Dirs::from_env()?;
    let file = FileConfig::load(&dirs.config_file)?;
    let mode = config::sandbox_mode(&file, args.sandbox, &dirs.config_file)?;
    let mut sandbox = Sandbox::new(&args.dir, mode)?;
    if !args.allow_domains.is_empty() {
        let policy = NetworkPolicy {
            allow_domains: args.allow_domains.clone(),
            bridge: crate::run::network_bridge()?,
        };
        policy.validate()?;
        sandbox = sandbox.with_network(policy);
    }
    let command = shell_join(&args.command);
    let limits = Limits {
        timeout: args.timeout,
        ..Limits::default()
    };
    let output = sandbox
        .run(&command, &limits)
        .await
        .with_context(|| format!("could not run `{command}` in the sandbox"))?;
    let _ = std::io::stdout().lock().write_all(output.output.as_bytes());
    // The same lines a task's events show: what the network proxy saw, then the accounting.
    let mut events: Vec<EventKind> = sandbox
        .network_log()
        .into_iter()
        .map(|request| EventKind::NetworkRequest {
            host: request.host,
            port: request.port,
            method: request.method,
            allowed: request.allowed,
            reason: request.reason,
        })
        .collect();
    events.push(EventKind::CommandFinished(
        output.report("debug", &command, mode),
    ));
    for event in &events {
        eprintln!("nightshift sandbox:{}", render::event_body(event));
    }
    let code = match output.exit_code {
        Some(code) => u8::try_from(code).unwrap_or(1),
        None => 128u8.saturating_add(output.signal.unwrap_or(0).clamp(0, 127) as u8),
    };
    Ok(ExitCode::from(code))
}

/// Quotes each argument for `sh -c`, so `nightshift sandbox -- ls "a b"` means what it says.
fn shell_join(words: &[String]) -> String {
    words
        .iter()
        .map(|word| {
            let plain = !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
            if plain {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::shell_join;

    #[test]
    fn arguments_are_quoted_for_the_shell() {
        let words: Vec<String> = ["echo", "a b", "it's", "$HOME"].map(String::from).to_vec();
        assert_eq!(shell_join(&words), r#"echo 'a b' 'it'\''s' '$HOME'"#);
    }
}
