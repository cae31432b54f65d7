//! A task's network allowlist: commands reach allowed hosts through Nightshift's proxy, other
//! hosts are refused, and every request is an event.

use std::io::{Read, Write};
use std::net::TcpListener;

use serde_json::json;

use super::harness::{World, finish, tool};

/// A one-page HTTP server on the host's loopback; returns its port.
fn serve_hello() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close\r\n\r\nhello, world\n",
            );
        }
    });
    port
}

fn fetch(port: u16) -> String {
    format!(
        "python3 -c \"import urllib.request as u; print(u.urlopen('http://localhost:{port}/', timeout=5).read().decode())\""
    )
}

#[test]
fn allowed_hosts_are_reachable_through_the_proxy_and_every_request_is_recorded() {
    let port = serve_hello();
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![
        tool("shell", json!({"command": fetch(port)})),
        finish("fetched"),
    ]);
    let run = world.run(&["--allow-domain", "localhost:*"], "Fetch the page");
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let output = run.events_of("tool_result")[0]["output"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(output.contains("hello, world"), "{output}");
    let requests = run.events_of("network_request");
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["host"], "localhost");
    assert_eq!(requests[0]["port"], port);
    assert_eq!(requests[0]["allowed"], true);
}

#[test]
fn hosts_not_on_the_list_are_refused_and_recorded() {
    let port = serve_hello();
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![
        tool("shell", json!({"command": fetch(port)})),
        finish("could not fetch"),
    ]);
    let run = world.run(&["--allow-domain", "example.invalid"], "Fetch the page");
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let output = run.events_of("tool_result")[0]["output"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(output.contains("403"), "{output}");
    let requests = run.events_of("network_request");
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["allowed"], false);
    assert!(requests[0]["reason"].as_str().is_some());
}

#[test]
fn without_an_allowlist_there_is_no_network_at_all() {
    let port = serve_hello();
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![
        tool("shell", json!({"command": fetch(port)})),
        finish("no network"),
    ]);
    let run = world.run(&[], "Fetch the page");
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let output = run.events_of("tool_result")[0]["output"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!output.contains("hello, world"), "{output}");
    assert!(output.contains("exit code: 1"), "{output}");
    assert!(run.events_of("network_request").is_empty());
}

#[test]
fn a_bad_allowlist_entry_is_refused_at_the_door() {
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![]);
    let run = world.run(&["--allow-domain", "http://example.com/path"], "Fetch");
    assert_eq!(run.code(), 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("http://example.com/path"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
}
