//! The HTTP proxy that enforces a network policy, outside the sandbox: HTTP/1.1 on a Unix
//! socket, `CONNECT host:port` tunnels (HTTPS, or any TCP protocol) and absolute-form plain
//! HTTP requests (`GET http://host/path`). Each connection carries one request: its host is
//! checked against the allowlist, the decision is recorded, and then bytes are relayed until
//! either side is done. A plain request is forwarded with `Connection: close`, so a second
//! request on the same connection can never reach another host unchecked.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::network::{
    Allowlist, NetworkRequest, RequestLog, normalize_host, parse_port, split_port,
};

/// Resolving and connecting to the allowed host, together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the request head may take to arrive.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// A relayed connection with no byte in either direction for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Connections handled at once; further ones wait in the socket's backlog.
const MAX_CONNECTIONS: usize = 128;
const RELAY_CHUNK: usize = 16 * 1024;

/// Accepts and serves connections until the task is aborted, which also aborts every
/// connection it is relaying.
pub(crate) async fn serve(listener: UnixListener, allow: Arc<Allowlist>, log: Arc<RequestLog>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        while connections.try_join_next().is_some() {}
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                // Out of file descriptors, most likely: wait rather than spin.
                tracing::debug!(error = %e, "proxy accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (allow, log) = (allow.clone(), log.clone());
        connections.spawn(async move {
            let _slot = slot;
            if let Err(e) = handle(client, &allow, &log).await {
                tracing::debug!(error = %e, "proxy connection ended");
            }
        });
    }
}

/// What the client asked for.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    host: String,
    port: u16,
    /// The head to send upstream for a plain request; `None` for CONNECT.
    forward: Option<Vec<u8>>,
}

/// A request the proxy refuses before any policy decision.
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    status: u16,
    message: String,
}

fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

async fn handle(mut client: UnixStream, allow: &Allowlist, log: &RequestLog) -> io::Result<()> {
    let (buf, head_len) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
        Err(_) => {
            let refusal = refuse(408, "the request head did not arrive in time");
            return respond(&mut client, &refusal).await;
        }
        Ok(Err(e)) => return Err(e),
        Ok(Ok(None)) => {
            let refusal = refuse(431, format!("the request head is over {MAX_HEAD} bytes"));
            return respond(&mut client, &refusal).await;
        }
        Ok(Ok(Some(head))) => head,
    };
    let request = match parse(&buf[..head_len]) {
        Ok(request) => request,
        Err(refusal) => return respond(&mut client, &refusal).await,
    };
    let mut record = NetworkRequest {
        host: request.host.clone(),
        port: request.port,
        method: request.method.clone(),
        allowed: true,
        reason: None,
    };
    if let Err(reason) = allow.decide(&request.host, request.port) {
        let hint = if [80, 443].contains(&request.port) {
            request.host.clone()
        } else {
            format!("{}:{}", request.host, request.port)
        };
        let refusal = refuse(
            403,
            format!(
                "Nightshift's network policy blocked this request to {}:{}: {reason}.\n\
                 hint: to allow it, add \"{hint}\" to the task's allowed domains",
                request.host, request.port
            ),
        );
        record.allowed = false;
        record.reason = Some(reason);
        log.push(record);
        return respond(&mut client, &refusal).await;
    }
    let upstream = match connect(&request.host, request.port).await {
        Ok(upstream) => upstream,
        Err(refusal) => {
            record.reason = Some(refusal.message.clone());
            log.push(record);
            return respond(&mut client, &refusal).await;
        }
    };
    log.push(record);
    let mut upstream = upstream;
    match &request.forward {
        None => {
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await?;
        }
        Some(head) => upstream.write_all(head).await?,
    }
    // Bytes the client sent after the head (a request body, or the start of a TLS handshake).
    upstream.write_all(&buf[head_len..]).await?;
    relay(client, upstream, IDLE_TIMEOUT).await
}

/// Reads until the end of the head: the bytes read and where the head ends; `None` when it is
/// longer than [`MAX_HEAD`].
async fn read_head(client: &mut UnixStream) -> io::Result<Option<(Vec<u8>, usize)>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the end of the request head",
            ));
        }
        // The end marker may straddle two reads: look from just before the new bytes.
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = from + at + 4;
            return Ok((end <= MAX_HEAD).then_some((buf, end)));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

fn parse(head: &[u8]) -> Result<Request, Refusal> {
    let text =
        std::str::from_utf8(head).map_err(|_| refuse(400, "the request head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(refuse(400, "malformed request line"));
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(refuse(400, format!("unsupported HTTP version {version:?}")));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(refuse(400, "malformed request method"));
    }
    let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();

    if method == "CONNECT" {
        let (host, port) = authority(target, None)?;
        return Ok(Request {
            method: method.to_owned(),
            host,
            port,
            forward: None,
        });
    }
    let lower = target.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("http://").map(|_| &target[7..]) else {
        let message = if lower.starts_with("https://") {
            "send HTTPS requests through a CONNECT tunnel (any HTTP client does this when HTTPS_PROXY is set)"
        } else {
            "this is a proxy: send absolute-form requests (GET http://host/path) or CONNECT host:port"
        };
        return Err(refuse(400, message));
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority_part, path) = rest.split_at(split);
    let path = path.split('#').next().unwrap_or_default();
    let path = match path {
        "" => "/".to_owned(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_owned(),
    };
    let (host, port) = authority(authority_part, Some(80))?;

    // Host is the checked one, whatever the client's header said: an allowed server must not
    // be asked for another site it also hosts.
    let mut forward = format!("{method} {path} {version}\r\nHost: {authority_part}\r\n");
    for line in headers {
        let name = line.split(':').next().unwrap_or_default().trim();
        let dropped = [
            "host",
            "proxy-connection",
            "proxy-authorization",
            "connection",
            "keep-alive",
        ];
        if dropped.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            continue;
        }
        forward.push_str(line);
        forward.push_str("\r\n");
    }
    forward.push_str("Connection: close\r\n\r\n");
    Ok(Request {
        method: method.to_owned(),
        host,
        port,
        forward: Some(forward.into_bytes()),
    })
}

/// `host[:port]` of a request, normalised.
fn authority(text: &str, default_port: Option<u16>) -> Result<(String, u16), Refusal> {
    let bad = |reason: String| refuse(400, format!("bad host {text:?}: {reason}"));
    if text.contains('@') {
        return Err(bad("credentials in the URL are not supported".to_owned()));
    }
    let (host, port) = split_port(text).map_err(bad)?;
    let port = match (port, default_port) {
        (Some(p), _) => parse_port(p).map_err(bad)?,
        (None, Some(p)) => p,
        (None, None) => return Err(bad("CONNECT needs host:port".to_owned())),
    };
    Ok((normalize_host(host).map_err(bad)?, port))
}

/// Resolves `host` and connects to the first address that answers, within [`CONNECT_TIMEOUT`].
async fn connect(host: &str, port: u16) -> Result<TcpStream, Refusal> {
    let attempt = async {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
        for addr in tokio::net::lookup_host((host, port)).await? {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = e,
            }
        }
        Err(last)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err(refuse(
            502,
            format!("could not connect to {host}:{port}: {e}"),
        )),
        Err(_) => Err(refuse(
            504,
            format!("connecting to {host}:{port} took more than {CONNECT_TIMEOUT:?}"),
        )),
    }
}

async fn respond(client: &mut UnixStream, refusal: &Refusal) -> io::Result<()> {
    let reason = match refusal.status {
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    let body = format!("{}\n", refusal.message);
    let response = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         X-Nightshift-Proxy: refused\r\nConnection: close\r\n\r\n{body}",
        refusal.status,
        body.len()
    );
    client.write_all(response.as_bytes()).await?;
    client.shutdown().await
}

/// Copies both ways until both sides have finished sending (each end's EOF is passed on as a
/// half-close), an error, or `idle` without a byte either way.
async fn relay<A, B>(a: A, b: B, idle: Duration) -> io::Result<()>
where
    A: AsyncRead + AsyncWrite,
    B: AsyncRead + AsyncWrite,
{
    let (mut a_read, mut a_write) = tokio::io::split(a);
    let (mut b_read, mut b_write) = tokio::io::split(b);
    let mut a_buf = vec![0u8; RELAY_CHUNK];
    let mut b_buf = vec![0u8; RELAY_CHUNK];
    let (mut a_open, mut b_open) = (true, true);
    while a_open || b_open {
        tokio::select! {
            read = a_read.read(&mut a_buf), if a_open => {
                a_open = pass_on(read?, &a_buf, &mut b_write, idle).await?;
            }
            read = b_read.read(&mut b_buf), if b_open => {
                b_open = pass_on(read?, &b_buf, &mut a_write, idle).await?;
            }
            () = tokio::time::sleep(idle) => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the connection was idle too long"));
            }
        }
    }
    Ok(())
}

/// Writes what was read to the other side, or half-closes it at EOF; whether the reading side
/// is still open.
async fn pass_on<W: AsyncWrite + Unpin>(
    n: usize,
    buf: &[u8],
    to: &mut W,
    idle: Duration,
) -> io::Result<bool> {
    if n == 0 {
        // The other side may already be gone; the relay ends when both have finished anyway.
        let _ = to.shutdown().await;
        return Ok(false);
    }
    tokio::time::timeout(idle, to.write_all(&buf[..n]))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the receiver stopped reading"))??;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(head: &str) -> String {
        let request = parse(head.as_bytes()).unwrap();
        String::from_utf8(request.forward.unwrap()).unwrap()
    }

    #[test]
    fn network_connect_targets_are_parsed() {
        let request = parse(b"CONNECT Example.COM:443 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(
            request,
            Request {
                method: "CONNECT".into(),
                host: "example.com".into(),
                port: 443,
                forward: None,
            }
        );
        let v6 = parse(b"CONNECT [::1]:8443 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 8443));
        assert_eq!(
            parse(b"CONNECT example.com HTTP/1.1\r\n\r\n")
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn network_plain_requests_go_upstream_in_origin_form_to_the_checked_host() {
        let head = "GET http://Example.com:8080/a/b?c=1#frag HTTP/1.1\r\nHost: other.org\r\n\
                    Proxy-Connection: keep-alive\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n";
        let request = parse(head.as_bytes()).unwrap();
        assert_eq!((request.host.as_str(), request.port), ("example.com", 8080));
        assert_eq!(
            forwarded(head),
            "GET /a/b?c=1 HTTP/1.1\r\nHost: Example.com:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(
            forwarded("GET http://h.org?q HTTP/1.0\r\n\r\n"),
            "GET /?q HTTP/1.0\r\nHost: h.org\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn network_requests_that_are_not_for_a_proxy_are_refused() {
        for head in [
            "GET /path HTTP/1.1\r\n\r\n",
            "GET https://example.com/ HTTP/1.1\r\n\r\n",
            "GET http://user:pw@example.com/ HTTP/1.1\r\n\r\n",
            "GET http://exa mple.com/ HTTP/1.1\r\n\r\n",
            "GET http://example.com/ HTTP/2\r\n\r\n",
            "get http://example.com/ HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(parse(head.as_bytes()).unwrap_err().status, 400, "{head}");
        }
    }
}
