//! Talking to the daemon: where it is, the token, requests, and turning every way a request
//! can fail into a message with a `hint:` line.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::de::DeserializeOwned;

use crate::args::ClientArgs;
use crate::config::{Dirs, FileConfig, non_empty_env};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// For every call but the event stream, which lives as long as the task.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

const START_DAEMON: &str = "start the daemon with `nightshift serve`, then export \
     NIGHTSHIFT_URL=http://127.0.0.1:7878 NIGHTSHIFT_TOKEN=$(nightshift token create)";

/// Where the daemon is and how to authenticate, resolved from flags, environment and config.
pub struct Client {
    /// The base URL without a trailing slash.
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl fmt::Debug for Client {
    // Never the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// The daemon's URL and token as configured, before any request.
#[derive(Default)]
pub struct Settings {
    pub url: Option<String>,
    pub token: Option<String>,
}

impl Settings {
    /// `--url` over `NIGHTSHIFT_URL` over `[client] url`; `NIGHTSHIFT_TOKEN` over
    /// `[client] token`. The config file is read only when the flag and the environment leave
    /// something open.
    pub fn resolve(args: &ClientArgs) -> anyhow::Result<Settings> {
        let mut settings = Settings {
            url: args.url.clone().or_else(|| non_empty_env("NIGHTSHIFT_URL")),
            token: non_empty_env("NIGHTSHIFT_TOKEN"),
        };
        if settings.url.is_none() || settings.token.is_none() {
            let dirs = Dirs::from_env()?;
            let file = FileConfig::load(&dirs.config_file)?;
            settings.url = settings.url.or(file.client.url);
            settings.token = settings.token.or(file.client.token);
        }
        settings.url = settings.url.filter(|u| !u.trim().is_empty());
        settings.token = settings.token.filter(|t| !t.trim().is_empty());
        Ok(settings)
    }
}

/// Why a request failed. [`ClientError::Unreachable`] is worth retrying; the rest are not.
#[derive(Debug)]
pub enum ClientError {
    /// No connection, or it broke before an answer came.
    Unreachable { base: String, detail: String },
    /// The daemon answered with an error status.
    Api {
        status: StatusCode,
        error: String,
        hint: Option<String>,
    },
    /// The answer was not what the API promises.
    Protocol(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Unreachable { base, detail } => write!(
                f,
                "could not reach the daemon at {base}: {detail}\nhint: is the daemon running? \
                 (nightshift serve --listen {}); check --url / NIGHTSHIFT_URL",
                listen_address(base)
            ),
            ClientError::Api { error, hint, .. } => match hint {
                Some(hint) => write!(f, "{error}\nhint: {hint}"),
                None => write!(f, "{error}"),
            },
            ClientError::Protocol(text) => write!(
                f,
                "{text}\nhint: check that --url / NIGHTSHIFT_URL points at `nightshift serve` \
                 of the same version as this client"
            ),
        }
    }
}

impl std::error::Error for ClientError {}

impl Client {
    /// The configured client; without a URL, an error saying how to start and point at a
    /// daemon.
    pub fn new(args: &ClientArgs) -> anyhow::Result<Client> {
        let settings = Settings::resolve(args)?;
        let Some(url) = settings.url else {
            anyhow::bail!(
                "no daemon is configured for this command\nhint: {START_DAEMON} (or pass --url, \
                 or set url under [client] in the config file)"
            );
        };
        let parsed = reqwest::Url::parse(url.trim()).map_err(|error| {
            anyhow::anyhow!(
                "the daemon URL `{url}` is not a valid URL: {error}\nhint: write it like \
                 http://127.0.0.1:7878"
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() {
            anyhow::bail!(
                "the daemon URL `{url}` must be an http:// or https:// address without a query\n\
                 hint: write it like http://127.0.0.1:7878"
            );
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("nightshift/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| anyhow::anyhow!("could not set up the HTTP client: {error}"))?;
        Ok(Client {
            base: parsed.as_str().trim_end_matches('/').to_owned(),
            token: settings.token,
            http,
        })
    }

    /// A request to `path` (which starts with `/api/`), with the token.
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.header(AUTHORIZATION, format!("Bearer {}", token.trim())),
            None => request,
        }
    }

    /// Sends and checks the status; an error status becomes [`ClientError::Api`].
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.api_error(response).await)
    }

    /// GET `path` and decode the JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.get_query(path, &[]).await
    }

    /// GET `path?query` and decode the JSON answer.
    pub async fn get_query<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        let request = self
            .request(reqwest::Method::GET, path)
            .query(query)
            .timeout(REQUEST_TIMEOUT);
        let response = self.send(request).await?;
        self.decode(path, response).await
    }

    /// GET `path` and return the body as text.
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let request = self
            .request(reqwest::Method::GET, path)
            .timeout(REQUEST_TIMEOUT);
        let response = self.send(request).await?;
        response.text().await.map_err(|e| self.unreachable(&e))
    }

    /// POST `body` as JSON to `path` and decode the JSON answer.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, ClientError> {
        let request = self
            .request(reqwest::Method::POST, path)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .timeout(REQUEST_TIMEOUT);
        let response = self.send(request).await?;
        self.decode(path, response).await
    }

    /// Opens the SSE stream at `path`, resuming after `last_event_id` when given. No overall
    /// timeout: the caller watches for silence.
    pub async fn stream(
        &self,
        path: &str,
        last_event_id: Option<u64>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut request = self
            .request(reqwest::Method::GET, path)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        self.send(request).await
    }

    async fn decode<T: DeserializeOwned>(
        &self,
        path: &str,
        response: reqwest::Response,
    ) -> Result<T, ClientError> {
        let bytes = response.bytes().await.map_err(|e| self.unreachable(&e))?;
        serde_json::from_slice(&bytes).map_err(|error| {
            ClientError::Protocol(format!(
                "the daemon's answer to {path} is not what the API describes: {error}"
            ))
        })
    }

    pub fn unreachable(&self, error: &reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            base: self.base.clone(),
            detail: describe(error),
        }
    }

    /// The API's `{"error", "hint"}` body, or a description of whatever came instead; a 401
    /// gets the token hint whatever the body says.
    async fn api_error(&self, response: reqwest::Response) -> ClientError {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let parsed: Option<serde_json::Value> = serde_json::from_str(&body).ok();
        let field = |name: &str| {
            parsed
                .as_ref()
                .and_then(|v| v.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let mut error = field("error").unwrap_or_else(|| {
            let text = crate::render::one_line(&body, 200);
            if text.is_empty() {
                format!("the daemon at {} answered {status}", self.base)
            } else {
                format!("the daemon at {} answered {status}: {text}", self.base)
            }
        });
        let mut hint = field("hint");
        if status == StatusCode::UNAUTHORIZED {
            if self.token.is_none() {
                error = format!("{error} (no token was sent)");
            }
            hint = Some(
                "set NIGHTSHIFT_TOKEN (or token under [client] in the config file) to a token \
                 from `nightshift token create` on the daemon's machine"
                    .to_owned(),
            );
        }
        ClientError::Api {
            status,
            error,
            hint,
        }
    }
}

/// `host:port` of a URL, for the `nightshift serve --listen` hint.
fn listen_address(base: &str) -> String {
    reqwest::Url::parse(base)
        .ok()
        .and_then(|url| {
            let host = url.host_str()?.to_owned();
            Some(format!("{host}:{}", url.port_or_known_default()?))
        })
        .unwrap_or_else(|| "127.0.0.1:7878".to_owned())
}

/// reqwest's error with its causes, which is where "connection refused" is.
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_connect() {
        "could not connect".to_owned()
    } else if error.is_timeout() {
        "no answer in time".to_owned()
    } else {
        "the connection failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    let mut last = String::new();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // hyper and std often repeat the same words one level down.
        if cause_text != last {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        last = cause_text;
        source = cause.source();
    }
    text
}
