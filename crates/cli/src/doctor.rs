//! `nightshift doctor`: what this machine supports for isolation, and what Nightshift will use.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use crate::args::ModelArgs;
use crate::config::{Dirs, FileConfig};

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
