//! The network policy: no network without one; with one, allowed hosts are reached through
//! Nightshift's proxy (plain HTTP and CONNECT tunnels), others get a 403, and every request is
//! recorded. The servers run on the host's loopback, outside the sandbox.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use nightshift_sandbox::{NetworkPolicy, NetworkRequest, Sandbox, SandboxError, SandboxMode};

use super::{Scratch, assert_gone, limits, sh};

const BODY: &str = "hello from the host";

fn bridge() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nightshift-sandbox-bridge"))
}

fn policy(allow: &[&str]) -> NetworkPolicy {
    NetworkPolicy {
        allow_domains: allow.iter().map(|d| (*d).to_owned()).collect(),
        bridge: bridge(),
    }
}

fn with_policy(scratch: &Scratch, allow: &[&str]) -> Sandbox {
    scratch
        .sandbox(SandboxMode::Bwrap)
        .with_network(policy(allow))
}

/// An HTTP server on the host's loopback answering every request with [`BODY`]; the request
/// lines it received are kept.
struct HttpServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl HttpServer {
    fn start() -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                // A body, when the request has one, is kept after the head.
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map_or(0, |n| n.trim().parse::<usize>().unwrap());
                let mut body = vec![0u8; length];
                reader.read_exact(&mut body).unwrap();
                head.push_str(&String::from_utf8(body).unwrap());
                seen.lock().unwrap().push(head);
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
                    BODY.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        HttpServer { port, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// A TCP server on the host's loopback that sends back whatever it receives.
fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut back = stream.try_clone().unwrap();
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || back.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// A Python one-liner fetching `url` with urllib (which honours `http_proxy`): prints the
/// status and body, or `error` and why.
fn fetch(url: &str) -> String {
    format!(
        "python3 -c \"
import urllib.request, urllib.error
try:
    r = urllib.request.urlopen('{url}', timeout=10)
    print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
except Exception as e:
    print('error', e)
\""
    )
}

/// Python speaking CONNECT to the bridge: prints the proxy's status line, then what came back
/// through the tunnel after sending `payload`.
fn tunnel(target: &str, payload: &str) -> String {
    format!(
        "python3 -c \"
import socket
s = socket.create_connection(('127.0.0.1', 3128), timeout=10)
s.sendall(b'CONNECT {target} HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n')
head = b''
while b'\\r\\n\\r\\n' not in head:
    chunk = s.recv(1)
    if not chunk:
        break
    head += chunk
print(head.split(b'\\r\\n')[0].decode())
if b' 200 ' in head:
    s.sendall(b'{payload}')
    s.shutdown(socket.SHUT_WR)
    back = b''
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        back += chunk
    print(back.decode())
\""
    )
}

fn allowed(host: &str, port: u16, method: &str) -> NetworkRequest {
    NetworkRequest {
        host: host.to_owned(),
        port,
        method: method.to_owned(),
        allowed: true,
        reason: None,
    }
}

#[tokio::test]
async fn network_without_a_policy_a_host_server_is_unreachable() {
    let server = HttpServer::start();
    let scratch = Scratch::new();
    let url = format!("http://localhost:{}/", server.port);
    let out = sh(&scratch.sandbox(SandboxMode::Bwrap), &fetch(&url)).await;
    assert!(out.output.starts_with("error "), "{}", out.output);
    assert!(out.output.contains("Connection refused"), "{}", out.output);
    assert!(server.requests().is_empty());

    // Without isolation the same fetch reaches the server, so the denial above is the sandbox's.
    let out = sh(&scratch.sandbox(SandboxMode::None), &fetch(&url)).await;
    assert_eq!(out.output, format!("200 {BODY}\n"));
}

#[tokio::test]
async fn network_an_allowed_host_is_fetched_through_the_proxy() {
    let server = HttpServer::start();
    let scratch = Scratch::new();
    let sandbox = with_policy(&scratch, &["localhost:*"]);
    let url = format!("http://localhost:{}/hello?x=1", server.port);
    let out = sh(&sandbox, &fetch(&url)).await;
    assert_eq!(out.output, format!("200 {BODY}\n"));
    assert_eq!(out.exit_code, Some(0));

    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0].starts_with("GET /hello?x=1 HTTP/1.1\r\n"),
        "{requests:?}"
    );
    assert!(
        requests[0].contains(&format!("Host: localhost:{}\r\n", server.port)),
        "{requests:?}"
    );
    assert_eq!(
        sandbox.network_log(),
        vec![allowed("localhost", server.port, "GET")]
    );
    // Drained: a second read has nothing new.
    assert_eq!(sandbox.network_log(), Vec::new());
}

#[tokio::test]
async fn network_curl_goes_through_the_proxy_too() {
    let server = HttpServer::start();
    let scratch = Scratch::new();
    let sandbox = with_policy(&scratch, &[&format!("localhost:{}", server.port)]);
    let command = format!("curl -sS http://localhost:{}/from-curl", server.port);
    let out = sh(&sandbox, &command).await;
    assert_eq!(out.output, BODY, "{}", out.output);
    assert!(server.requests()[0].starts_with("GET /from-curl HTTP/1.1\r\n"));
    assert_eq!(
        sandbox.network_log(),
        vec![allowed("localhost", server.port, "GET")]
    );
}

#[tokio::test]
async fn network_a_host_outside_the_allowlist_gets_403_and_is_recorded() {
    let server = HttpServer::start();
    let scratch = Scratch::new();
    let sandbox = with_policy(&scratch, &["example.invalid"]);
    let out = sh(
        &sandbox,
        &fetch(&format!("http://localhost:{}/", server.port)),
    )
    .await;
    let port = server.port;
    assert_eq!(
        out.output,
        format!(
            "403 Nightshift's network policy blocked this request to localhost:{port}: \
             localhost is not in the network allowlist.\n\
             hint: to allow it, add \"localhost:{port}\" to the task's allowed domains\n\n"
        )
    );
    assert!(server.requests().is_empty());
    assert_eq!(
        sandbox.network_log(),
        vec![NetworkRequest {
            host: "localhost".into(),
            port,
            method: "GET".into(),
            allowed: false,
            reason: Some("localhost is not in the network allowlist".into()),
        }]
    );
}

#[tokio::test]
async fn network_an_allowed_host_on_a_port_it_does_not_allow_is_denied() {
    let server = HttpServer::start();
    let scratch = Scratch::new();
    // Without a port an entry allows 80 and 443 only; the server is on neither.
    let sandbox = with_policy(&scratch, &["localhost"]);
    let out = sh(
        &sandbox,
        &fetch(&format!("http://localhost:{}/", server.port)),
    )
    .await;
    assert!(out.output.starts_with("403 "), "{}", out.output);
    assert!(server.requests().is_empty());
    let log = sandbox.network_log();
    assert_eq!(log.len(), 1);
    assert!(!log[0].allowed);
    assert_eq!(
        log[0].reason.as_deref(),
        Some(
            format!(
                "port {} is not allowed for localhost (an entry without a port allows only 80 and 443)",
                server.port
            )
            .as_str()
        )
    );
}

#[tokio::test]
async fn network_connect_tunnels_bytes_to_an_allowed_host_and_only_there() {
    let port = echo_server();
    let scratch = Scratch::new();
    let sandbox = with_policy(&scratch, &[&format!("localhost:{port}")]);
    let command = format!(
        "{} && {}",
        tunnel(&format!("localhost:{port}"), "ping through the tunnel"),
        tunnel(&format!("127.0.0.1:{port}"), "not sent"),
    );
    let out = sh(&sandbox, &command).await;
    assert_eq!(
        out.output,
        "HTTP/1.1 200 Connection established\nping through the tunnel\nHTTP/1.1 403 Forbidden\n"
    );
    assert_eq!(
        sandbox.network_log(),
        vec![
            allowed("localhost", port, "CONNECT"),
            NetworkRequest {
                host: "127.0.0.1".into(),
                port,
                method: "CONNECT".into(),
                allowed: false,
                reason: Some("127.0.0.1 is not in the network allowlist".into()),
            }
        ]
    );
}

#[tokio::test]
async fn network_an_allowed_host_that_refuses_is_recorded_with_the_reason() {
    // A port nothing listens on: bind one, then free it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let scratch = Scratch::new();
    let sandbox = with_policy(&scratch, &["localhost:*"]);
    let out = sh(&sandbox, &fetch(&format!("http://localhost:{port}/"))).await;
    assert!(
        out.output.starts_with(&format!(
            "502 could not connect to localhost:{port}: Connection refused"
        )),
        "{}",
        out.output
    );
    let log = sandbox.network_log();
    assert_eq!(log.len(), 1);
    assert!(log[0].allowed);
    assert!(
        log[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("Connection refused")),
        "{log:?}"
    );
}

#[tokio::test]
async fn network_the_command_sees_the_proxy_and_keeps_its_exit_status() {
    let scratch = Scratch::new();
    let sandbox = with_policy(&scratch, &["example.com"]);
    let out = sh(
        &sandbox,
        "echo \"$HTTP_PROXY $https_proxy ${NO_PROXY-unset}|${NIGHTSHIFT_PROXY_SOCKET-unset} $0\"; exit 7",
    )
    .await;
    assert_eq!(
        out.output,
        "http://127.0.0.1:3128 http://127.0.0.1:3128 |unset /bin/sh\n"
    );
    assert_eq!(out.exit_code, Some(7));
    // Still no route anywhere but the bridge: a direct connection gets nowhere.
    let out = sh(
        &sandbox,
        "bash -c 'exec 3<>/dev/tcp/93.184.215.14/80' 2>&1; echo rc=$?",
    )
    .await;
    assert!(out.output.ends_with("rc=1\n"), "{}", out.output);
    assert!(
        out.output.contains("Network is unreachable"),
        "{}",
        out.output
    );
}

#[tokio::test]
async fn network_the_bridge_is_gone_when_the_command_ends() {
    let scratch = Scratch::new();
    let sandbox = with_policy(&scratch, &["example.com"]);
    // The bridge's command line names this run's socket, unique on the machine.
    let out = sh(
        &sandbox,
        "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done \
         | grep -E '^/[a-z]+/nightshift-bridge ' | cut -d' ' -f4",
    )
    .await;
    let socket = out.output.lines().next().unwrap_or_default().to_owned();
    assert!(socket.ends_with("-0.sock"), "{}", out.output);
    assert_gone(&socket).await;
}

#[tokio::test]
async fn network_a_missing_bridge_is_an_error_that_says_what_to_do() {
    let scratch = Scratch::new();
    let sandbox = scratch
        .sandbox(SandboxMode::Bwrap)
        .with_network(NetworkPolicy {
            allow_domains: vec!["example.com".into()],
            bridge: PathBuf::from("/nonexistent/bridge"),
        });
    let err = sandbox.run("true", &limits()).await.unwrap_err();
    assert!(matches!(err, SandboxError::Network { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("/nonexistent/bridge"), "{message}");
    assert!(
        message.contains("hint: set NetworkPolicy::bridge"),
        "{message}"
    );
}

#[tokio::test]
async fn network_clones_share_one_log_and_runs_can_overlap() {
    let server = HttpServer::start();
    let scratch = Scratch::new();
    let sandbox = with_policy(&scratch, &["localhost:*"]);
    let clone = sandbox.clone();
    let url = format!("http://localhost:{}/", server.port);
    let command = fetch(&url);
    let (a, b) = tokio::join!(sh(&sandbox, &command), sh(&clone, &command));
    assert_eq!(a.output, format!("200 {BODY}\n"));
    assert_eq!(b.output, format!("200 {BODY}\n"));
    assert_eq!(clone.network_log().len(), 2);
    assert!(sandbox.network_log().is_empty());
}

#[tokio::test]
async fn network_a_request_body_is_relayed_upstream() {
    let server = HttpServer::start();
    let scratch = Scratch::new();
    let sandbox = with_policy(&scratch, &["localhost:*"]);
    let command = format!(
        "curl -sS --data-binary 'name=nightshift&n=1' http://localhost:{}/submit",
        server.port
    );
    let out = sh(&sandbox, &command).await;
    assert_eq!(out.output, BODY);
    let request = &server.requests()[0];
    assert!(
        request.starts_with("POST /submit HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(request.ends_with("\r\nname=nightshift&n=1"), "{request}");
    assert_eq!(
        sandbox.network_log(),
        vec![allowed("localhost", server.port, "POST")]
    );
}

#[tokio::test]
async fn network_a_bridge_that_does_not_start_fails_the_command_with_a_message() {
    let scratch = Scratch::new();
    let sandbox = scratch
        .sandbox(SandboxMode::Bwrap)
        .with_network(NetworkPolicy {
            allow_domains: vec!["example.com".into()],
            bridge: PathBuf::from("/bin/false"),
        });
    let out = sh(&sandbox, "echo the command ran").await;
    assert_eq!(out.exit_code, Some(125));
    assert_eq!(
        out.output,
        "nightshift: the network bridge did not start, so this command cannot reach the allowed hosts\n"
    );
}
