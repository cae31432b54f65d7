//! The bridge that runs inside a sandbox with a network policy: a TCP listener on the
//! sandbox's loopback whose every connection is forwarded to the proxy's Unix socket, bound in
//! from outside. Plain std and one thread per direction per connection, so the program that
//! runs it (the `nightshift` binary in its bridge mode) needs no async runtime for it.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Connections relayed at once; further ones are closed at once (the proxy has its own cap).
const MAX_CONNECTIONS: usize = 256;
/// Copying needs little stack; the default 2 MiB per thread would only count against the
/// sandbox's memory limit.
const THREAD_STACK: usize = 64 * 1024;

/// Listens on `listen` and forwards every connection to the Unix socket `socket`, until the
/// process is killed (in a sandbox, with its pid namespace when the command ends). Once it
/// listens it writes `ready` and a newline to stdout, and nothing else ever: the sandbox waits
/// for that line before it starts the command. Returns only on an error: when `listen` cannot
/// be bound, or accepting fails for good.
pub fn run_bridge(listen: SocketAddr, socket: &Path) -> io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    {
        let mut out = io::stdout().lock();
        // Nobody may be waiting (run by hand); the bridge works the same without a reader.
        let _ = out.write_all(b"ready\n").and_then(|()| out.flush());
    }
    let active = Arc::new(AtomicUsize::new(0));
    let socket: Arc<PathBuf> = Arc::new(socket.to_path_buf());
    for client in listener.incoming() {
        let client = match client {
            Ok(client) => client,
            Err(e) if is_transient(&e) => continue,
            Err(e) => return Err(e),
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let (active_in_thread, socket) = (active.clone(), socket.clone());
        let spawned = std::thread::Builder::new()
            .stack_size(THREAD_STACK)
            .spawn(move || {
                forward(client, &socket);
                active_in_thread.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            // Out of threads (the sandbox's process limit): this connection is dropped.
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
    Ok(())
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    ) || e.raw_os_error() == Some(libc::EMFILE)
        || e.raw_os_error() == Some(libc::ENFILE)
}

/// Relays one connection both ways; each side's EOF is passed on as a half-close.
fn forward(client: TcpStream, socket: &Path) {
    let Ok(upstream) = UnixStream::connect(socket) else {
        // The proxy is gone (the command is ending): closing tells the client.
        return;
    };
    let _ = client.set_nodelay(true);
    let (Ok(client_read), Ok(upstream_write)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let up = std::thread::Builder::new()
        .stack_size(THREAD_STACK)
        .spawn(move || {
            copy(client_read, upstream_write, |u| u.shutdown(Shutdown::Write));
        });
    copy(upstream, client, |c| c.shutdown(Shutdown::Write));
    if let Ok(up) = up {
        let _ = up.join();
    }
}

fn copy<R: io::Read, W: io::Write>(
    mut from: R,
    mut to: W,
    close: impl FnOnce(&W) -> io::Result<()>,
) {
    let _ = io::copy(&mut from, &mut to);
    let _ = close(&to);
}
