//! `nightshift models ls` and `nightshift models check [PROFILE]`: what providers are
//! configured, and what actually works against each.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use nightshift_model::{ModelRequest, RetryNote};
use nightshift_protocol::{Message, ToolSpec};

use crate::args::{ModelArgs, ModelsCommand};
use crate::config::{Dirs, FileConfig};
use crate::provider::{self, ModelSettings};
use crate::render::one_line;

pub async fn models(command: ModelsCommand) -> anyhow::Result<ExitCode> {
    let dirs = Dirs::from_env()?;
    let file = FileConfig::load(&dirs.config_file)?;
    match command {
        ModelsCommand::Pull { name } => pull(&dirs, name.as_deref()).await,
        ModelsCommand::Ls => {
            let mut out = String::new();
            let models_dir = dirs.models();
            let installed = nightshift_embedded::installed(&models_dir);
            let _ = writeln!(out, "local models in {}:", models_dir.display());
            if installed.is_empty() {
                let _ = writeln!(
                    out,
                    "  (none; `nightshift model pull` fetches {})",
                    nightshift_embedded::catalog::DEFAULT_MODEL
                );
            }
            for model in &installed {
                let _ = writeln!(
                    out,
                    "  {:<22} {:>8.1} MB  {}",
                    model.name,
                    model.size as f64 / 1e6,
                    model.state
                );
            }
            let _ = writeln!(out, "providers:");
            let default = provider::model_settings(&file, &ModelArgs::default(), &dirs.config_file);
            match &default {
                Ok(settings) => {
                    let _ = writeln!(out, "  default  {}", describe(settings));
                }
                Err(error) => {
                    let first = error.to_string();
                    let _ = writeln!(
                        out,
                        "  default  ({})",
                        first.lines().next().unwrap_or_default()
                    );
                }
            }
            for name in file.profiles.keys() {
                let flags = ModelArgs {
                    model: Some(name.clone()),
                    ..ModelArgs::default()
                };
                let line = match provider::model_settings(&file, &flags, &dirs.config_file) {
                    Ok(settings) => describe(&settings),
                    Err(error) => format!(
                        "(invalid: {})",
                        error.to_string().lines().next().unwrap_or_default()
                    ),
                };
                let _ = writeln!(out, "  {name}  {line}");
            }
            let _ = std::io::stdout().lock().write_all(out.as_bytes());
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Check { profile } => {
            let flags = ModelArgs {
                model: profile,
                ..ModelArgs::default()
            };
            let settings = provider::model_settings(&file, &flags, &dirs.config_file)?;
            check(&settings).await
        }
    }
}

/// `nightshift model pull [NAME]`: fetches a catalog model into the data directory, with
/// progress on stderr; the path alone on stdout.
async fn pull(dirs: &Dirs, name: Option<&str>) -> anyhow::Result<ExitCode> {
    let model = nightshift_embedded::find_model(name)?;
    let models_dir = dirs.models();
    let path = tokio::task::spawn_blocking(move || {
        nightshift_embedded::pull(model, &models_dir, &mut |progress| {
            crate::render::note(&progress.to_string());
        })
    })
    .await
    .map_err(|e| anyhow::anyhow!("the download stopped unexpectedly: {e}"))??;
    let _ = writeln!(std::io::stdout().lock(), "{}", path.display());
    Ok(ExitCode::SUCCESS)
}

fn describe(settings: &ModelSettings) -> String {
    let prices = settings.prices.map_or_else(
        || "no prices".to_owned(),
        |p| {
            format!(
                "${}/${}/${} per M in/cached/out",
                p.input, p.cached_input, p.output
            )
        },
    );
    format!(
        "{} {} at {} (context {} tokens, {prices})",
        settings.kind.as_str(),
        settings.model,
        settings.base_url,
        settings.context_window
    )
}

/// Sends three small requests: plain, streamed, and one that should come back as a tool call.
async fn check(settings: &ModelSettings) -> anyhow::Result<ExitCode> {
    let mut out = format!(
        "Checking {}{}\n",
        describe(settings),
        settings
            .profile
            .as_deref()
            .map(|p| format!(" [profile {p}]"))
            .unwrap_or_default()
    );
    let ask = |text: &str| ModelRequest {
        messages: vec![
            Message::system("You are being tested. Follow the instruction exactly."),
            Message::user(text),
        ],
        tools: Vec::new(),
    };
    let no_retry_notes = |_: &RetryNote| {};
    let mut all_ok = true;

    for (label, stream) in [("reachable (whole answer)", false), ("streaming", true)] {
        let client = provider::client(&ModelSettings {
            stream,
            ..settings.clone()
        })
        .await?;
        let started = Instant::now();
        let request = ask("Reply with the single word: ok");
        let line = match client.complete(&request, &no_retry_notes).await {
            Ok(response) => format!(
                "✓ {label:<26} {} ms, {} in / {} out tokens, said {:?}",
                started.elapsed().as_millis(),
                response.usage.input_tokens,
                response.usage.output_tokens,
                one_line(&response.message.content, 60)
            ),
            Err(error) => {
                all_ok = false;
                format!(
                    "✗ {label:<26} {}",
                    error.to_string().replace('\n', "\n    ")
                )
            }
        };
        let _ = writeln!(out, "  {line}");
    }

    let client = provider::client(settings).await?;
    let request = ModelRequest {
        tools: vec![ToolSpec {
            name: "report".to_owned(),
            description: "Report a word.".to_owned(),
            parameters: serde_json::json!({
                "type": "object",
                "properties": {"word": {"type": "string"}},
                "required": ["word"],
                "additionalProperties": false
            }),
        }],
        ..ask("Call the report tool with word set to ok. Do not answer with text.")
    };
    let line = match client.complete(&request, &no_retry_notes).await {
        Ok(response) => match response.message.tool_calls.first() {
            Some(call) if call.name == "report" => {
                format!("✓ {:<26} called report({})", "tool calling", call.arguments)
            }
            Some(call) => {
                all_ok = false;
                format!(
                    "✗ {:<26} called an unknown tool `{}`",
                    "tool calling", call.name
                )
            }
            None => {
                all_ok = false;
                format!(
                    "✗ {:<26} answered with text instead: {:?}\n    hint: if this server has no native tool calling, set text_tool_calls = true in the profile",
                    "tool calling",
                    one_line(&response.message.content, 60)
                )
            }
        },
        Err(error) => {
            all_ok = false;
            format!(
                "✗ {:<26} {}",
                "tool calling",
                error.to_string().replace('\n', "\n    ")
            )
        }
    };
    let _ = writeln!(out, "  {line}");
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
