//! `nightshift-sandbox-bridge [sandbox-bridge] LISTEN SOCKET`: [`nightshift_sandbox::run_bridge`]
//! as a program, for this crate's tests and for callers without a bridge subcommand of their
//! own. The sandbox passes the subcommand name first; it is optional here.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use nightshift_sandbox::{BRIDGE_SUBCOMMAND, run_bridge};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == BRIDGE_SUBCOMMAND) {
        args.remove(0);
    }
    let error = match &args[..] {
        [listen, socket] => match listen.parse::<SocketAddr>() {
            Ok(listen) => match run_bridge(listen, &PathBuf::from(socket)) {
                Ok(()) => return ExitCode::SUCCESS,
                Err(e) => format!("cannot bridge {listen} to {socket}: {e}"),
            },
            Err(e) => format!("{listen:?} is not an address like 127.0.0.1:3128: {e}"),
        },
        _ => format!(
            "usage: nightshift-sandbox-bridge [{BRIDGE_SUBCOMMAND}] LISTEN_ADDR UNIX_SOCKET"
        ),
    };
    let _ = writeln!(std::io::stderr(), "nightshift-sandbox-bridge: {error}");
    ExitCode::FAILURE
}
