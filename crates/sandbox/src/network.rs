//! The network policy: which hosts a sandboxed command may reach, and how a sandbox without a
//! network reaches them.
//!
//! A bwrap sandbox has its own network namespace holding only loopback, with or without a
//! policy. With one, every run starts an HTTP proxy outside the sandbox (a tokio task of this
//! process, see `proxy.rs`) listening on a Unix socket in a host directory that is bound
//! read-only into the sandbox at `/run/nightshift`. Before the command, a bridge program (the
//! policy's `bridge`, bound at `/run/nightshift-bridge`) listens on [`PROXY_ADDR`] inside and
//! forwards each connection to that socket; `HTTP_PROXY` and friends point at it. The proxy
//! decides per request and records every decision, so nothing inside ever gets a route: a
//! program that ignores the proxy variables still has no network at all.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::{Sandbox, SandboxError, SandboxMode};

/// Where the bridge listens inside the sandbox, and what the proxy variables point at.
pub const PROXY_ADDR: &str = "127.0.0.1:3128";
/// The first argument the bridge program gets: the name of the (hidden) subcommand under which
/// a program such as `nightshift` runs [`crate::run_bridge`].
pub const BRIDGE_SUBCOMMAND: &str = "sandbox-bridge";
/// Ports an allowlist entry without `:PORT` allows: HTTP and HTTPS.
const WEB_PORTS: [u16; 2] = [80, 443];
/// Records kept between two [`Sandbox::network_log`] calls; later ones are counted, not kept.
const MAX_LOG: usize = 10_000;
/// The variable that tells the wrapper which socket this run's proxy listens on.
const SOCKET_VAR: &str = "NIGHTSHIFT_PROXY_SOCKET";

/// Which hosts a sandboxed command may reach through Nightshift's proxy; see
/// [`Sandbox::with_network`]. Without one (the default) a sandbox has no network at all.
///
/// Entries of `allow_domains` are matched case-insensitively, ignoring a trailing dot:
/// - `example.com`: that host exactly, not its subdomains;
/// - `*.example.com`: any subdomain at any depth (`api.example.com`, `a.b.example.com`), not
///   `example.com` itself (list both to allow both);
/// - `*`: any host (every request is still recorded);
/// - an IP address (`10.0.0.5`, `[::1]`): that address, when a request names it literally.
///
/// Each entry may end in `:PORT` (that port only) or `:*` (any port). Without one it allows
/// ports 80 and 443 only, so that allowing a web host does not also open its SSH or database
/// ports. A host name is resolved by the proxy, outside the sandbox, and may resolve to any
/// address, loopback included: allowing `localhost:*` lets the command reach the host's local
/// services. Invalid entries (see [`NetworkPolicy::validate`]) match nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// Hosts the command may reach, in the forms above.
    pub allow_domains: Vec<String>,
    /// The bridge program (absolute path), run inside the sandbox as
    /// `<bridge> sandbox-bridge 127.0.0.1:3128 <socket>` (see [`BRIDGE_SUBCOMMAND`]): it must
    /// call [`crate::run_bridge`] with those two addresses. The `nightshift` binary does so in
    /// a hidden subcommand, so its own path (`std::env::current_exe()`) is the usual value;
    /// this crate's `nightshift-sandbox-bridge` binary does too. Bound read-only into the
    /// sandbox, so it may live anywhere on the host (its shared libraries must be in the
    /// host's system directories, which the sandbox sees).
    pub bridge: PathBuf,
}

/// An allowlist entry that cannot be understood.
#[derive(Debug, thiserror::Error)]
#[error(
    "network allowlist entry {entry:?} is invalid: {reason}\nhint: write a host name (example.com), a wildcard (*.example.com), \
     * for any host, or an IP address, optionally followed by :PORT or :*"
)]
pub struct NetworkPolicyError {
    /// The entry as written.
    pub entry: String,
    /// What is wrong with it.
    pub reason: String,
}

impl NetworkPolicy {
    /// Checks every entry of `allow_domains`; call it where the policy enters (task intake) so
    /// that a typo is an error rather than a silently unreachable host.
    pub fn validate(&self) -> Result<(), NetworkPolicyError> {
        for entry in &self.allow_domains {
            Rule::parse(entry).map_err(|reason| NetworkPolicyError {
                entry: entry.clone(),
                reason,
            })?;
        }
        Ok(())
    }

    /// Whether a request to `host:port` would be let through.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        Allowlist::new(&self.allow_domains)
            .decide(host, port)
            .is_ok()
    }
}

/// One request the proxy saw, allowed or denied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkRequest {
    /// The host as the request named it, lowercased, without a trailing dot or IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// `CONNECT` for a tunnel (HTTPS and anything else over TCP), else the method of a plain
    /// HTTP request (`GET`, `POST`, ...).
    pub method: String,
    /// Whether the policy let it through.
    pub allowed: bool,
    /// Why it was denied, or why an allowed request still failed (unresolvable, refused, timed
    /// out); `None` for a request that was allowed and connected.
    pub reason: Option<String>,
}

impl Sandbox {
    /// Lets commands reach the hosts `policy` allows, through a proxy this process runs for
    /// each command (inside a tokio runtime: [`Sandbox::run`] starts it). The sandbox itself
    /// keeps no network; see [`NetworkPolicy`] for how hosts are matched. Replaces an earlier
    /// policy. In [`SandboxMode::None`] there is no isolation, so the command has the host's
    /// network whatever the policy says; the policy is then not applied.
    pub fn with_network(mut self, policy: NetworkPolicy) -> Sandbox {
        let (base_prefix, base_env) = match &self.network {
            Some(net) => (net.base_prefix.clone(), net.base_env.clone()),
            None => (self.prefix.clone(), self.env.clone()),
        };
        for entry in &policy.allow_domains {
            if let Err(reason) = Rule::parse(entry) {
                tracing::warn!(entry, reason, "network allowlist entry ignored");
            }
        }
        let sockets = tempfile::Builder::new()
            .prefix("nightshift-net-")
            .tempdir()
            .map_err(|e| e.to_string());
        let inside = inside_root();
        let net = Network {
            allowlist: Arc::new(Allowlist::new(&policy.allow_domains)),
            bridge: policy.bridge,
            sockets,
            inside_sockets: inside.join("nightshift"),
            inside_bridge: inside.join("nightshift-bridge"),
            runs: AtomicU64::new(0),
            log: Arc::new(RequestLog::default()),
            base_prefix: base_prefix.clone(),
            base_env: base_env.clone(),
        };
        if self.mode == SandboxMode::Bwrap {
            // The proxy's socket is bound per run: each command gets a bubblewrap of its own.
            self.sessions = None;
            self.prefix = net.prefix().into();
            self.env = net.env().into();
        } else {
            tracing::warn!(
                "sandbox mode none has no isolation: the command uses the host's network and the network policy is not applied"
            );
            self.prefix = base_prefix;
            self.env = base_env;
        }
        self.network = Some(Arc::new(net));
        self
    }

    /// Takes the requests recorded since the last call, oldest first (shared by every clone of
    /// this sandbox). Empty without a network policy.
    pub fn network_log(&self) -> Vec<NetworkRequest> {
        self.network
            .as_ref()
            .map(|net| net.log.drain())
            .unwrap_or_default()
    }
}

/// A sandbox's network policy, as applied.
#[derive(Debug)]
pub(crate) struct Network {
    allowlist: Arc<Allowlist>,
    bridge: PathBuf,
    /// Host directory of the runs' proxy sockets (or why it could not be made).
    sockets: Result<tempfile::TempDir, String>,
    inside_sockets: PathBuf,
    inside_bridge: PathBuf,
    runs: AtomicU64,
    log: Arc<RequestLog>,
    /// The sandbox's prefix and environment before any policy.
    base_prefix: Arc<[OsString]>,
    base_env: Arc<[(OsString, OsString)]>,
}

impl Network {
    /// bwrap's arguments with the socket directory and the bridge bound in: after every other
    /// mount (so the tmpfs over /run is already there), just before `-- /bin/sh`.
    fn prefix(&self) -> Vec<OsString> {
        let mut prefix = self.base_prefix.to_vec();
        let at = prefix
            .iter()
            .rposition(|a| a == "--")
            .unwrap_or(prefix.len());
        let mut binds: Vec<OsString> = Vec::new();
        if let Ok(dir) = &self.sockets {
            binds.extend([
                "--ro-bind".into(),
                dir.path().into(),
                self.inside_sockets.clone().into(),
            ]);
        }
        binds.extend([
            "--ro-bind".into(),
            self.bridge.clone().into(),
            self.inside_bridge.clone().into(),
        ]);
        prefix.splice(at..at, binds);
        prefix
    }

    fn env(&self) -> Vec<(OsString, OsString)> {
        let proxy = format!("http://{PROXY_ADDR}");
        let set = [
            ("HTTP_PROXY", proxy.as_str()),
            ("HTTPS_PROXY", &proxy),
            ("ALL_PROXY", &proxy),
            ("http_proxy", &proxy),
            ("https_proxy", &proxy),
            ("all_proxy", &proxy),
            // Empty: even localhost goes through the proxy, since the sandbox's own loopback
            // has nothing on it but the bridge.
            ("NO_PROXY", ""),
            ("no_proxy", ""),
        ];
        let mut env: Vec<(OsString, OsString)> = self
            .base_env
            .iter()
            .filter(|(name, _)| !set.iter().any(|(n, _)| name == n))
            .cloned()
            .collect();
        env.extend(set.iter().map(|(n, v)| (n.into(), v.into())));
        env
    }

    /// The shell script run instead of the command: starts the bridge, waits until it listens
    /// (it prints `ready` then), and execs the command, which gets `$1`.
    fn wrapper(&self) -> String {
        format!(
            r#"ready=/tmp/.nightshift-bridge-$$
mkfifo -m 600 "$ready" || exit 125
'{bridge}' {BRIDGE_SUBCOMMAND} {PROXY_ADDR} "${SOCKET_VAR}" >"$ready" &
IFS= read -r line <"$ready"
rm -f "$ready"
unset {SOCKET_VAR} ready
if [ "$line" != ready ]; then
  echo "nightshift: the network bridge did not start, so this command cannot reach the allowed hosts" >&2
  exit 125
fi
unset line
exec /bin/sh -c "$1""#,
            bridge = self.inside_bridge.display(),
        )
    }
}

/// `/run` (hidden behind a tmpfs in the sandbox) when the host has it, else the private `/tmp`.
fn inside_root() -> PathBuf {
    if Path::new("/run").is_dir() {
        PathBuf::from("/run")
    } else {
        PathBuf::from("/tmp")
    }
}

/// What follows `sh -c`: the command, or the wrapper and the command as its `$1`.
pub(crate) fn command_args(sandbox: &Sandbox, command: &str) -> Vec<OsString> {
    match &sandbox.network {
        Some(net) if sandbox.mode == SandboxMode::Bwrap => vec![
            net.wrapper().into(),
            "nightshift-sandbox".into(),
            command.into(),
        ],
        _ => vec![command.into()],
    }
}

/// This run's proxy: stopped (with every connection it relays) and its socket removed on drop.
#[derive(Debug)]
pub(crate) struct RunProxy {
    task: tokio::task::JoinHandle<()>,
    socket: PathBuf,
}

impl Drop for RunProxy {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Starts the proxy for one run of `sandbox` and tells `cmd` (built by `Sandbox::command`)
/// where it listens. `None` without a policy or without isolation.
pub(crate) fn start_for_run(
    sandbox: &Sandbox,
    cmd: &mut std::process::Command,
) -> Result<Option<RunProxy>, SandboxError> {
    let Some(net) = sandbox.network.as_ref() else {
        return Ok(None);
    };
    if sandbox.mode != SandboxMode::Bwrap {
        return Ok(None);
    }
    let dir = net.sockets.as_ref().map_err(|e| SandboxError::Network {
        reason: format!("no directory for the proxy's socket could be made: {e}"),
        fix: "check that the temporary directory (TMPDIR or /tmp) is writable".to_owned(),
    })?;
    if !crate::is_executable(&net.bridge) || !net.bridge.is_absolute() {
        return Err(SandboxError::Network {
            reason: format!(
                "the network bridge {:?} is not an executable file given by an absolute path",
                net.bridge.display()
            ),
            fix: "set NetworkPolicy::bridge to the absolute path of a program that runs nightshift_sandbox::run_bridge \
                  (the nightshift binary itself)"
                .to_owned(),
        });
    }
    let run = net.runs.fetch_add(1, Ordering::Relaxed);
    // Unique across sandboxes too, so a socket (and the bridge's command line) names its run.
    let tag = dir
        .path()
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let name = format!("{tag}-{run}.sock");
    let socket = dir.path().join(&name);
    let listener = tokio::net::UnixListener::bind(&socket).map_err(|e| SandboxError::Network {
        reason: format!("the proxy could not listen on {}: {e}", socket.display()),
        fix: "check that the temporary directory is writable and its path short (under 100 bytes)"
            .to_owned(),
    })?;
    let task = tokio::spawn(crate::proxy::serve(
        listener,
        net.allowlist.clone(),
        net.log.clone(),
    ));
    cmd.env(SOCKET_VAR, net.inside_sockets.join(name));
    Ok(Some(RunProxy { task, socket }))
}

/// The requests recorded so far, bounded.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    entries: Mutex<Vec<NetworkRequest>>,
    dropped: AtomicU64,
}

impl RequestLog {
    pub(crate) fn push(&self, request: NetworkRequest) {
        tracing::info!(
            host = request.host,
            port = request.port,
            method = request.method,
            allowed = request.allowed,
            reason = request.reason,
            "network request"
        );
        // A panic while holding the lock cannot leave a Vec half-pushed, so a poisoned lock
        // still holds a usable log.
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() < MAX_LOG {
            entries.push(request);
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn drain(&self) -> Vec<NetworkRequest> {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "more than {MAX_LOG} network requests between two reads of the log; the rest were not kept"
            );
        }
        std::mem::take(&mut *self.entries.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The parsed allowlist.
#[derive(Debug)]
pub(crate) struct Allowlist {
    rules: Vec<Rule>,
}

#[derive(Debug, PartialEq, Eq)]
enum Pattern {
    Any,
    Exact(String),
    /// `*.example.com`, kept as `.example.com`.
    Suffix(String),
}

#[derive(Debug, PartialEq, Eq)]
enum Ports {
    Web,
    One(u16),
    Any,
}

#[derive(Debug, PartialEq, Eq)]
struct Rule {
    pattern: Pattern,
    ports: Ports,
}

impl Rule {
    fn parse(entry: &str) -> Result<Rule, String> {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() {
            return Err("it is empty".to_owned());
        }
        if entry.contains("://") || entry.contains('/') {
            return Err("write only the host, without scheme or path".to_owned());
        }
        let (host, port) = split_port(&entry)?;
        let ports = match port {
            None => Ports::Web,
            Some("*") => Ports::Any,
            Some(p) => Ports::One(parse_port(p)?),
        };
        let pattern = if host == "*" {
            Pattern::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            Pattern::Suffix(format!(".{}", normalize_host(domain)?))
        } else {
            Pattern::Exact(normalize_host(host)?)
        };
        Ok(Rule { pattern, ports })
    }

    fn matches_host(&self, host: &str) -> bool {
        match &self.pattern {
            Pattern::Any => true,
            Pattern::Exact(name) => host == name,
            Pattern::Suffix(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        }
    }

    fn matches_port(&self, port: u16) -> bool {
        match self.ports {
            Ports::Web => WEB_PORTS.contains(&port),
            Ports::One(p) => p == port,
            Ports::Any => true,
        }
    }
}

impl Allowlist {
    pub(crate) fn new(entries: &[String]) -> Allowlist {
        Allowlist {
            rules: entries.iter().filter_map(|e| Rule::parse(e).ok()).collect(),
        }
    }

    /// `Ok` when `host:port` is allowed, else why not. `host` as [`normalize_host`] gives it.
    pub(crate) fn decide(&self, host: &str, port: u16) -> Result<(), String> {
        let Ok(host) = normalize_host(host) else {
            return Err(format!("{host:?} is not a valid host name"));
        };
        let mut host_matched = false;
        for rule in self.rules.iter().filter(|r| r.matches_host(&host)) {
            if rule.matches_port(port) {
                return Ok(());
            }
            host_matched = true;
        }
        Err(if host_matched {
            format!(
                "port {port} is not allowed for {host} (an entry without a port allows only 80 and 443)"
            )
        } else if self.rules.is_empty() {
            "the network allowlist is empty".to_owned()
        } else {
            format!("{host} is not in the network allowlist")
        })
    }
}

/// Splits `host[:port]`, `[v6][:port]`; a bare IPv6 address has no port.
pub(crate) fn split_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address is missing its closing ']'")?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!("unexpected {after:?} after the IPv6 address")),
            },
        };
    }
    match authority.matches(':').count() {
        0 => Ok((authority, None)),
        1 => Ok(authority
            .split_once(':')
            .map_or((authority, None), |(h, p)| (h, Some(p)))),
        // More than one colon: an IPv6 address without brackets, hence without a port.
        _ => Ok((authority, None)),
    }
}

pub(crate) fn parse_port(port: &str) -> Result<u16, String> {
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("{port:?} is not a port number (1-65535)")),
    }
}

/// Lowercase, without a trailing dot or IPv6 brackets; an error for anything that is neither
/// an IP address nor a plausible DNS name.
pub(crate) fn normalize_host(host: &str) -> Result<String, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(valid_label) {
        return Err(format!("{host:?} is not a valid host name"));
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entries: &[&str], host: &str, port: u16) -> bool {
        let entries: Vec<String> = entries.iter().map(|e| (*e).to_owned()).collect();
        Allowlist::new(&entries).decide(host, port).is_ok()
    }

    #[test]
    fn network_exact_names_match_only_themselves() {
        assert!(allows(&["example.com"], "example.com", 443));
        assert!(allows(&["Example.COM."], "EXAMPLE.com.", 80));
        assert!(!allows(&["example.com"], "api.example.com", 443));
        assert!(!allows(&["example.com"], "notexample.com", 443));
        assert!(!allows(&["example.com"], "example.com.evil.net", 443));
    }

    #[test]
    fn network_wildcards_match_subdomains_at_any_depth_but_not_the_domain() {
        let rules = ["*.example.com"];
        assert!(allows(&rules, "api.example.com", 443));
        assert!(allows(&rules, "a.b.example.com", 443));
        assert!(!allows(&rules, "example.com", 443));
        assert!(!allows(&rules, "badexample.com", 443));
        assert!(!allows(&rules, "example.com.evil.net", 443));
        assert!(allows(&["*"], "anything.at.all", 80));
    }

    #[test]
    fn network_ports_default_to_web_and_can_be_named_or_opened() {
        assert!(allows(&["example.com"], "example.com", 80));
        assert!(!allows(&["example.com"], "example.com", 22));
        assert!(allows(&["example.com:22"], "example.com", 22));
        assert!(!allows(&["example.com:22"], "example.com", 443));
        assert!(allows(&["example.com:*"], "example.com", 5432));
        assert!(allows(&["[::1]:*"], "::1", 8080));
        assert!(allows(&["127.0.0.1:8080"], "127.0.0.1", 8080));
        assert!(!allows(&["127.0.0.1:8080"], "localhost", 8080));
    }

    #[test]
    fn network_denials_say_why() {
        let entries = vec!["example.com".to_owned()];
        let list = Allowlist::new(&entries);
        let port = list.decide("example.com", 22).unwrap_err();
        assert!(port.contains("port 22"), "{port}");
        let host = list.decide("other.org", 443).unwrap_err();
        assert_eq!(host, "other.org is not in the network allowlist");
        assert_eq!(
            Allowlist::new(&[]).decide("a.b", 80).unwrap_err(),
            "the network allowlist is empty"
        );
    }

    #[test]
    fn network_invalid_entries_are_reported_and_match_nothing() {
        for bad in [
            "",
            "https://example.com",
            "example.com/path",
            "ex ample.com",
            "*.",
            "a.*.com",
            "example.com:0",
            "example.com:http",
        ] {
            let policy = NetworkPolicy {
                allow_domains: vec![bad.to_owned()],
                bridge: PathBuf::new(),
            };
            assert!(policy.validate().is_err(), "{bad:?} accepted");
            assert!(!policy.allows("example.com", 443), "{bad:?} matched");
        }
        let good = NetworkPolicy {
            allow_domains: vec!["*.crates.io".into(), "localhost:*".into(), "::1".into()],
            bridge: PathBuf::new(),
        };
        good.validate().unwrap();
    }
}
