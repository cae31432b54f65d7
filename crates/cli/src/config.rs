//! Where Nightshift keeps things and how settings are resolved.
//!
//! Precedence, lowest to highest: built-in defaults, the config file, environment variables,
//! command-line flags. `NIGHTSHIFT_HOME` moves the data directory and the config file together
//! (tests use it); otherwise the XDG base directories are used.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::args::SandboxArg;
pub use crate::provider::ProviderProfile;

/// The data directory and the config file's path.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub data: PathBuf,
    pub config_file: PathBuf,
}

impl Dirs {
    pub fn from_env() -> anyhow::Result<Dirs> {
        if let Some(home) = non_empty_env("NIGHTSHIFT_HOME") {
            let home = PathBuf::from(home);
            return Ok(Dirs {
                config_file: home.join("config.toml"),
                data: home,
            });
        }
        let user_home = non_empty_env("HOME").map(PathBuf::from);
        let base = |xdg: &str, fallback: &str| -> anyhow::Result<PathBuf> {
            if let Some(dir) = non_empty_env(xdg) {
                return Ok(PathBuf::from(dir));
            }
            match &user_home {
                Some(home) => Ok(home.join(fallback)),
                None => bail!(
                    "cannot tell where to keep Nightshift's data: neither {xdg} nor HOME is set\n\
                     hint: set NIGHTSHIFT_HOME to a directory Nightshift may use"
                ),
            }
        };
        Ok(Dirs {
            data: base("XDG_DATA_HOME", ".local/share")?.join("nightshift"),
            config_file: base("XDG_CONFIG_HOME", ".config")?
                .join("nightshift")
                .join("config.toml"),
        })
    }

    /// Where `nightshift model pull` puts models.
    pub fn models(&self) -> PathBuf {
        self.data.join("models")
    }

    pub fn database(&self) -> PathBuf {
        self.data.join("nightshift.db")
    }

    /// Where tasks and events are kept: `NIGHTSHIFT_DATABASE_URL` when set (a `postgres://`
    /// URL for a store shared by many machines, or a SQLite file's path), else the SQLite file
    /// in the data directory.
    pub fn database_location(&self) -> String {
        non_empty_env("NIGHTSHIFT_DATABASE_URL")
            .unwrap_or_else(|| self.database().display().to_string())
    }

    /// Opens the task store.
    pub fn open_store(&self) -> anyhow::Result<Box<dyn nightshift_store::Store>> {
        let location = self.database_location();
        nightshift_store::open(&location).with_context(|| {
            format!(
                "could not open the task database {}",
                nightshift_store::hide_password(&location)
            )
        })
    }
}

pub fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The config file, as written by the user. Unknown keys are refused so typos do not pass
/// silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The provider used when no profile is named.
    #[serde(default)]
    pub model: ProviderProfile,
    /// Named providers, picked per task with `--model NAME`.
    #[serde(default)]
    pub profiles: std::collections::BTreeMap<String, ProviderProfile>,
    #[serde(default)]
    pub commit: FileCommit,
    #[serde(default)]
    pub sandbox: FileSandbox,
    /// Where the daemon is, for `submit`, `ls`, `logs -f` and the other client commands.
    #[serde(default)]
    pub client: FileClient,
}

/// `[client]`: the daemon's URL and the API token (`NIGHTSHIFT_URL` / `NIGHTSHIFT_TOKEN`
/// override them).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileClient {
    pub url: Option<String>,
    pub token: Option<String>,
}

impl std::fmt::Debug for FileClient {
    // Never the token: debug output ends up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileClient")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCommit {
    pub author_name: Option<String>,
    pub author_email: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSandbox {
    pub mode: Option<String>,
    #[serde(default, with = "humantime_serde_opt")]
    pub shell_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde_opt")]
    pub check_timeout: Option<Duration>,
}

/// Durations in the config file are written like "10m" or "1h 30m".
mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| humantime::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl FileConfig {
    /// Refuses settings that cannot work, naming the file and the key.
    fn validate(self, path: &Path) -> anyhow::Result<FileConfig> {
        for (key, value) in [
            ("shell_timeout", self.sandbox.shell_timeout),
            ("check_timeout", self.sandbox.check_timeout),
        ] {
            if value.is_some_and(|v| v.is_zero()) {
                bail!(
                    "{}: [sandbox] {key} must be longer than zero\nhint: e.g. {key} = \"10m\", or \
                     leave it out for the default",
                    path.display()
                );
            }
        }
        Ok(self)
    }

    /// Reads the config file; a missing file is an empty config.
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(FileConfig::default());
            }
            Err(error) => {
                return Err(error).with_context(|| format!("could not read {}", path.display()));
            }
        };
        let config: FileConfig = toml::from_str(&text).map_err(|error| {
            anyhow::anyhow!(
                "{} is not a valid Nightshift config: {error}\nhint: see the README's \
                 \"Configuration\" section for the keys Nightshift understands",
                path.display()
            )
        })?;
        config.validate(path)
    }
}

/// The sandbox mode: flag over config file; bubblewrap by default.
pub fn sandbox_mode(
    file: &FileConfig,
    flag: Option<SandboxArg>,
    config_path: &Path,
) -> anyhow::Result<nightshift_sandbox::SandboxMode> {
    use nightshift_sandbox::SandboxMode;
    if let Some(flag) = flag {
        return Ok(match flag {
            SandboxArg::Bwrap => SandboxMode::Bwrap,
            SandboxArg::None => SandboxMode::None,
        });
    }
    match file.sandbox.mode.as_deref() {
        None | Some("bwrap") => Ok(SandboxMode::Bwrap),
        Some("none") => Ok(SandboxMode::None),
        Some(other) => bail!(
            "{}: sandbox mode `{other}` is not known\nhint: use \"bwrap\" or \"none\"",
            config_path.display()
        ),
    }
}

/// Parses "Name <email>".
pub fn parse_author(text: &str) -> anyhow::Result<nightshift_git::Author> {
    let parsed = text.trim().strip_suffix('>').and_then(|rest| {
        let (name, email) = rest.split_once('<')?;
        let (name, email) = (name.trim(), email.trim());
        (!name.is_empty() && email.contains('@')).then(|| nightshift_git::Author {
            name: name.to_owned(),
            email: email.to_owned(),
        })
    });
    parsed.with_context(|| {
        format!("--author `{text}` is not of the form \"Name <email>\"\nhint: e.g. --author \"Ada Lovelace <ada@example.com>\"")
    })
}
