//! Model providers: the profiles in the config file, how a task picks one, and the client
//! built from it.
//!
//! Precedence, lowest first: the chosen profile (`[profiles.NAME]` picked with `--model NAME`,
//! else the one `[model] profile = "NAME"` names, else `[model]` itself), the environment
//! (`NIGHTSHIFT_BASE_URL`, `NIGHTSHIFT_MODEL`, `NIGHTSHIFT_API_KEY`), then flags.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use nightshift_model::{
    AnthropicClient, ChatCompletionsClient, ModelClient, ProviderConfig, ResponsesClient,
};
use nightshift_protocol::Prices;
use nightshift_worker::{EditFormat, Scaffold};
use serde::Deserialize;

use crate::args::ModelArgs;
use crate::config::{FileConfig, non_empty_env};

/// One provider as written in the config file (`[model]` or `[profiles.NAME]`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderProfile {
    /// The wire format: `chat` (OpenAI-compatible Chat Completions, the default),
    /// `responses` (OpenAI Responses) or `anthropic` (Anthropic Messages).
    pub kind: Option<String>,
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub api_key: Option<String>,
    /// Name of an environment variable holding the key, e.g. OPENAI_API_KEY.
    pub api_key_env: Option<String>,
    pub context_window: Option<u64>,
    pub max_output_tokens: Option<u32>,
    pub stream: Option<bool>,
    /// US dollars per million tokens: `{ input = 2.0, output = 8.0, cached_input = 0.5 }`.
    pub prices: Option<Prices>,
    /// Headers sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The server has no native tool calling: describe tools in the prompt, parse calls from
    /// the text (Chat Completions only).
    pub text_tool_calls: Option<bool>,
    /// How the agent prompts this model: `full` (the default for providers) or `compact`
    /// (the default for the embedded model; for small models on local servers too).
    pub scaffold: Option<String>,
    /// With the compact scaffold: `whole` (write whole files, the default) or `replace`
    /// (search-and-replace edits).
    pub edit_format: Option<String>,
    /// In `[model]` only: the profile to use when a task names none.
    pub profile: Option<String>,
}

/// The wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Chat,
    Responses,
    Anthropic,
    /// The embedded local model, run in this process (no server, no key).
    Embedded,
}

impl ProviderKind {
    fn parse(text: &str, origin: &str) -> anyhow::Result<ProviderKind> {
        Ok(match text {
            "chat" => ProviderKind::Chat,
            "responses" => ProviderKind::Responses,
            "anthropic" => ProviderKind::Anthropic,
            "embedded" => ProviderKind::Embedded,
            other => bail!(
                "{origin}: provider kind `{other}` is not known\nhint: use \"chat\" (any \
                 OpenAI-compatible server), \"responses\" (OpenAI Responses API) or \"anthropic\""
            ),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Chat => "chat",
            ProviderKind::Responses => "responses",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Embedded => "embedded",
        }
    }
}

/// The model provider settings after applying precedence.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    /// The profile they came from, when one was named.
    pub profile: Option<String>,
    pub kind: ProviderKind,
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub context_window: u64,
    pub max_output_tokens: Option<u32>,
    pub stream: bool,
    pub prices: Option<Prices>,
    pub headers: Vec<(String, String)>,
    pub text_tool_calls: bool,
    pub scaffold: Scaffold,
}

pub const DEFAULT_CONTEXT_WINDOW: u64 = 32_768;
/// Below this the system prompt, the goal and one tool round cannot fit.
pub const MIN_CONTEXT_WINDOW: u64 = 2_048;

/// Resolves the model settings: the chosen profile, then the environment, then flags.
pub fn model_settings(
    file: &FileConfig,
    flags: &ModelArgs,
    config_path: &Path,
) -> anyhow::Result<ModelSettings> {
    // `--model NAME` picks a profile when one has that name; otherwise it is a model name.
    let flag_picks_profile = flags
        .model
        .as_deref()
        .is_some_and(|name| file.profiles.contains_key(name));
    let (named, model_flag) = if flag_picks_profile {
        (flags.model.as_deref(), None)
    } else {
        (file.model.profile.as_deref(), flags.model.clone())
    };
    let (profile, origin) = match named {
        Some(name) => match file.profiles.get(name) {
            Some(profile) => (
                profile,
                format!("{} [profiles.{name}]", config_path.display()),
            ),
            None => bail!(
                "{}: [model] profile = \"{name}\" names no profile\nhint: define \
                 [profiles.{name}], or pick one of: {}",
                config_path.display(),
                profile_names(file)
            ),
        },
        None => (&file.model, format!("{} [model]", config_path.display())),
    };
    let base_url = flags
        .base_url
        .clone()
        .or_else(|| non_empty_env("NIGHTSHIFT_BASE_URL"))
        .or_else(|| profile.base_url.clone());
    let explicit_kind = match &profile.kind {
        Some(kind) => Some(ProviderKind::parse(kind, &origin)?),
        None => None,
    };
    let wanted_model = model_flag
        .clone()
        .or_else(|| non_empty_env("NIGHTSHIFT_MODEL"))
        .or_else(|| profile.model.clone());
    // No endpoint anywhere: the embedded model, unless a model it does not know was named.
    let embedded = explicit_kind == Some(ProviderKind::Embedded)
        || (base_url.is_none()
            && wanted_model
                .as_deref()
                .is_none_or(|name| nightshift_embedded::catalog::find(Some(name)).is_some()));
    if embedded {
        return embedded_settings(wanted_model.as_deref(), flags, profile, named, &origin);
    }
    let Some(base_url) = base_url else {
        bail!(
            "no model provider is configured\n\
             hint: set NIGHTSHIFT_BASE_URL (an OpenAI-compatible endpoint such as \
             https://api.openai.com/v1 or a local llama.cpp/Ollama server), NIGHTSHIFT_MODEL, and \
             NIGHTSHIFT_API_KEY if it needs one; or put base_url/model under [model] in {}",
            config_path.display()
        );
    };
    let model = model_flag
        .or_else(|| non_empty_env("NIGHTSHIFT_MODEL"))
        .or_else(|| profile.model.clone());
    let Some(model) = model else {
        bail!(
            "no model name is configured for {base_url}\n\
             hint: set NIGHTSHIFT_MODEL or pass --model, or set model in {origin}"
        );
    };
    // The profile's key is only the fallback, so api_key_env is only looked at when neither
    // the flag nor NIGHTSHIFT_API_KEY gives a key.
    let api_key = match flags
        .api_key
        .clone()
        .or_else(|| non_empty_env("NIGHTSHIFT_API_KEY"))
    {
        Some(key) => Some(key),
        None => match &profile.api_key_env {
            Some(var) => Some(non_empty_env(var).with_context(|| {
                format!(
                    "{origin} names {var} as the API key variable (api_key_env), but {var} is \
                     not set\nhint: export {var}, or remove api_key_env from the config"
                )
            })?),
            None => profile.api_key.clone(),
        },
    };
    let context_window = flags
        .context_window
        .or(profile.context_window)
        .unwrap_or(DEFAULT_CONTEXT_WINDOW);
    if context_window < MIN_CONTEXT_WINDOW {
        bail!(
            "a context window of {context_window} tokens is too small to hold the instructions\n\
             hint: use the model's real context window (at least {MIN_CONTEXT_WINDOW}), e.g. \
             --context-window 32768"
        );
    }
    if let Some(max_output) = profile.max_output_tokens
        && u64::from(max_output) >= context_window
    {
        bail!(
            "{origin}: max_output_tokens ({max_output}) must be smaller than the context window \
             ({context_window})\nhint: lower max_output_tokens or raise context_window"
        );
    }
    if let Some(prices) = profile.prices
        && [prices.input, prices.output, prices.cached_input]
            .iter()
            .any(|p| !p.is_finite() || *p < 0.0)
    {
        bail!("{origin}: prices must be zero or more (US dollars per million tokens)");
    }
    let kind = explicit_kind.unwrap_or(ProviderKind::Chat);
    let scaffold = scaffold(profile, Scaffold::Full, &origin)?;
    Ok(ModelSettings {
        profile: named.map(str::to_owned),
        kind,
        base_url,
        model,
        api_key,
        context_window,
        max_output_tokens: profile.max_output_tokens,
        stream: profile.stream.unwrap_or(true),
        prices: profile.prices,
        headers: profile.headers.clone().into_iter().collect(),
        text_tool_calls: profile.text_tool_calls.unwrap_or(false),
        scaffold,
    })
}

/// The profile's `scaffold` and `edit_format`, or `default`.
fn scaffold(
    profile: &ProviderProfile,
    default: Scaffold,
    origin: &str,
) -> anyhow::Result<Scaffold> {
    let edit = match profile.edit_format.as_deref() {
        None => match default {
            Scaffold::Compact { edit } => edit,
            Scaffold::Full => EditFormat::Whole,
        },
        Some("whole") => EditFormat::Whole,
        Some("replace") => EditFormat::Replace,
        Some("fenced") => EditFormat::Fenced,
        Some(other) => bail!(
            "{origin}: edit_format = \"{other}\" is not known\nhint: use \"whole\" (write_file \
             with whole files), \"replace\" (search-and-replace edits) or \"fenced\" (whole \
             files in fenced code blocks, no tools)"
        ),
    };
    let compact = match profile.scaffold.as_deref() {
        None => default != Scaffold::Full,
        Some("compact") => true,
        Some("full") => false,
        Some(other) => bail!(
            "{origin}: scaffold = \"{other}\" is not known\nhint: use \"full\" (capable \
             models) or \"compact\" (small local models)"
        ),
    };
    if !compact && profile.edit_format.is_some() {
        bail!(
            "{origin}: edit_format applies only to the compact scaffold\nhint: add scaffold = \
             \"compact\" or remove edit_format"
        );
    }
    Ok(if compact {
        Scaffold::Compact { edit }
    } else {
        Scaffold::Full
    })
}

/// The embedded model's context window when none is configured: room for a small task's
/// conversation at a KV-cache cost (~28 KiB a token for the 1.5B model: 448 MiB) a laptop can
/// afford. Only the tokens used are ever computed; the window just bounds them.
pub const EMBEDDED_CONTEXT_WINDOW: u64 = 16_384;

/// How the agent prompts the embedded model unless a profile says otherwise: chosen by the
/// eval suite (docs/BENCHMARKS.md), where fenced whole files with fresh attempts solved the
/// most tasks.
const EMBEDDED_SCAFFOLD: Scaffold = Scaffold::Compact {
    edit: EditFormat::Fenced,
};

fn embedded_settings(
    model: Option<&str>,
    flags: &ModelArgs,
    profile: &ProviderProfile,
    named: Option<&str>,
    origin: &str,
) -> anyhow::Result<ModelSettings> {
    let Some(catalog) = nightshift_embedded::catalog::find(model) else {
        bail!(
            "{origin}: `{}` is not an embedded model\nhint: use one of: {}",
            model.unwrap_or_default(),
            nightshift_embedded::catalog::names()
        );
    };
    let context_window = flags
        .context_window
        .or(profile.context_window)
        .unwrap_or(EMBEDDED_CONTEXT_WINDOW);
    if context_window < MIN_CONTEXT_WINDOW {
        bail!(
            "a context window of {context_window} tokens is too small to hold the instructions\n\
             hint: use at least {MIN_CONTEXT_WINDOW}, e.g. --context-window 8192"
        );
    }
    let scaffold = scaffold(profile, EMBEDDED_SCAFFOLD, origin)?;
    Ok(ModelSettings {
        profile: named.map(str::to_owned),
        kind: ProviderKind::Embedded,
        base_url: "in-process".to_owned(),
        model: catalog.name.to_owned(),
        api_key: None,
        context_window,
        max_output_tokens: profile.max_output_tokens,
        stream: true,
        prices: None,
        headers: Vec::new(),
        text_tool_calls: false,
        scaffold,
    })
}

fn profile_names(file: &FileConfig) -> String {
    if file.profiles.is_empty() {
        "(no profiles are defined)".to_owned()
    } else {
        file.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// [`client`], and for the embedded model the loaded model too: the daemon serves that same
/// model (one copy in memory, one queue) over its OpenAI-compatible endpoint.
pub async fn client_and_embedded(
    settings: &ModelSettings,
) -> anyhow::Result<(
    Arc<dyn ModelClient>,
    Option<Arc<nightshift_embedded::EmbeddedModel>>,
)> {
    if settings.kind == ProviderKind::Embedded {
        let client = embedded_client(settings).await?;
        let model = Arc::clone(client.model());
        return Ok((client, Some(model)));
    }
    Ok((client(settings).await?, None))
}

/// The client for these settings. For the embedded model this loads it (seconds).
pub async fn client(settings: &ModelSettings) -> anyhow::Result<Arc<dyn ModelClient>> {
    if settings.kind == ProviderKind::Embedded {
        return Ok(embedded_client(settings).await?);
    }
    let config = ProviderConfig {
        base_url: settings.base_url.clone(),
        model: settings.model.clone(),
        api_key: settings.api_key.clone(),
        stream: settings.stream,
        max_output_tokens: settings.max_output_tokens,
        text_tool_calls: settings.text_tool_calls,
        extra_headers: settings.headers.clone(),
        ..ProviderConfig::default()
    };
    Ok(match settings.kind {
        ProviderKind::Chat => Arc::new(ChatCompletionsClient::new(config)?),
        ProviderKind::Responses => Arc::new(ResponsesClient::new(config)?),
        ProviderKind::Anthropic => Arc::new(AnthropicClient::new(config)?),
        ProviderKind::Embedded => unreachable!("handled above"),
    })
}

/// Loads the embedded model from the data directory, and says that it is used.
async fn embedded_client(
    settings: &ModelSettings,
) -> anyhow::Result<Arc<nightshift_embedded::EmbeddedClient>> {
    let catalog = nightshift_embedded::find_model(Some(&settings.model))?;
    let models_dir = crate::config::Dirs::from_env()?.models();
    let path = models_dir.join(catalog.file_name);
    let installed = nightshift_embedded::installed(&models_dir)
        .into_iter()
        .any(|m| m.path == path && m.state == nightshift_embedded::InstallState::Verified);
    if !installed {
        bail!(
            "no model provider is configured and the embedded model {} is not installed in {}\n\
             hint: run `nightshift model pull` to fetch it ({:.1} GB, once), or set \
             NIGHTSHIFT_BASE_URL (and NIGHTSHIFT_MODEL, NIGHTSHIFT_API_KEY) to use a provider",
            catalog.name,
            models_dir.display(),
            catalog.size as f64 / 1e9
        );
    }
    crate::render::note(&format!(
        "using the embedded model {} on this machine's CPU ({} threads)",
        catalog.name,
        nightshift_embedded::physical_cores()
    ));
    let options = nightshift_embedded::EngineOptions {
        context_tokens: u32::try_from(settings.context_window).unwrap_or(u32::MAX),
        max_output_tokens: settings.max_output_tokens.unwrap_or(2048),
        ..nightshift_embedded::EngineOptions::default()
    };
    let model = nightshift_embedded::EmbeddedModel::load_async(&path, options)
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(Arc::new(nightshift_embedded::EmbeddedClient::new(model)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(scaffold: Option<&str>, edit_format: Option<&str>) -> ProviderProfile {
        ProviderProfile {
            scaffold: scaffold.map(str::to_owned),
            edit_format: edit_format.map(str::to_owned),
            ..ProviderProfile::default()
        }
    }

    #[test]
    fn the_edit_format_defaults_to_the_models_own_and_a_profile_overrides_it() {
        let whole = Scaffold::Compact {
            edit: EditFormat::Whole,
        };
        let chosen = |p: ProviderProfile, default| scaffold(&p, default, "test").unwrap();
        assert_eq!(
            chosen(profile(None, None), EMBEDDED_SCAFFOLD),
            EMBEDDED_SCAFFOLD
        );
        assert_eq!(
            chosen(profile(None, Some("whole")), EMBEDDED_SCAFFOLD),
            whole
        );
        assert_eq!(
            chosen(profile(Some("full"), None), EMBEDDED_SCAFFOLD),
            Scaffold::Full
        );
        // A provider's profile that asks for the compact scaffold gets whole-file writes.
        assert_eq!(
            chosen(profile(Some("compact"), None), Scaffold::Full),
            whole
        );
        assert_eq!(chosen(profile(None, None), Scaffold::Full), Scaffold::Full);
    }
}
