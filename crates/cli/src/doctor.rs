//! `nightshift doctor` (what this machine supports) and `nightshift sandbox -- CMD` (one
//! command under the task policy, for debugging).

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use nightshift_sandbox::{Limits, NetworkPolicy, Sandbox};

use crate::args::{ModelArgs, SandboxArgs};
use crate::config::{self, Dirs, FileConfig};

pub fn doctor() -> anyhow::Result<ExitCode> {
    let probe = nightshift_sandbox::probe(std::env::var_os("PATH"));
    let mut out = String::from("Isolation\n");
    for check in &probe.checks {
        let mark = if check.ok { "✓" } else { "✗" };
        let _ = writeln!(out, "  {mark} {:<22} {}", check.name, check.detail);
    }
    let dirs = Dirs::from_env()?;
    let _ = writeln!(out, "\nPlaces");
    let _ = writeln!(out, "  data directory         {}", dirs.data.display());
    let config_state = if dirs.config_file.exists() {
        ""
    } else {
        " (not present)"
    };
    let _ = writeln!(
        out,
        "  config file            {}{config_state}",
        dirs.config_file.display()
    );
    let _ = writeln!(out, "\nModel");
    let model = FileConfig::load(&dirs.config_file).and_then(|file| {
        crate::provider::model_settings(&file, &ModelArgs::default(), &dirs.config_file)
    });
    match model {
        Ok(settings) => {
            let _ = writeln!(
                out,
                "  ✓ provider             {} {} (model {}, context window {} tokens{})",
                settings.kind.as_str(),
                settings.base_url,
                settings.model,
                settings.context_window,
                if settings.api_key.is_some() {
                    ", API key set"
                } else {
                    ", no API key"
                }
            );
        }
        Err(error) => {
            let text = error.to_string();
            let mut lines = text.lines();
            let _ = writeln!(
                out,
                "  ✗ provider             {}",
                lines.next().unwrap_or_default()
            );
            for line in lines {
                let _ = writeln!(out, "                           {line}");
            }
        }
    }
    let code = if probe.isolation {
        let _ = writeln!(
            out,
            "\nNightshift will run agent commands and checks in bubblewrap."
        );
        ExitCode::SUCCESS
    } else {
        let _ = writeln!(
            out,
            "\nNightshift will REFUSE to run agent commands: isolation is not available here."
        );
        if let Some(fix) = &probe.fix {
            let _ = writeln!(out, "hint: {fix}");
        }
        ExitCode::from(1)
    };
    // A closed stdout (e.g. piped into `head`) is not worth a panic.
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(code)
}

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
    for request in sandbox.network_log() {
        let verdict = if request.allowed { "allowed" } else { "DENIED" };
        eprintln!(
            "nightshift sandbox: network {} {}:{} {verdict}{}",
            request.method,
            request.host,
            request.port,
            request
                .reason
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
    }
    let report = output.report("debug", &command, mode);
    eprintln!(
        "nightshift sandbox: {} in {} ms, {} bytes of output{}{} (sandbox {})",
        match (report.exit_code, report.signal) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => "ended".to_owned(),
        },
        report.duration_ms,
        report.output_bytes,
        if report.output_truncated {
            " (truncated)"
        } else {
            ""
        },
        report
            .limit
            .as_deref()
            .map(|l| format!(", stopped by {l}"))
            .unwrap_or_default(),
        report.sandbox,
    );
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
