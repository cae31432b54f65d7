//! The `shell` tool: one command through the sandbox, its outcome as text for the model and
//! its accounting for the event log.

use nightshift_sandbox::{CommandOutput, Limits, Sandbox};

use crate::ToolOutput;
use crate::spec::ShellArgs;

pub(crate) async fn run(sandbox: &Sandbox, limits: &Limits, args: ShellArgs) -> ToolOutput {
    if args.command.trim().is_empty() {
        return ToolOutput::error("the command is empty; give a command line to run".to_owned());
    }
    match sandbox.run(&args.command, limits).await {
        Ok(out) => ToolOutput {
            text: describe(&out, limits),
            // A failing command is information for the model, not a failure of the tool.
            is_error: false,
            finish: None,
            command: Some(out.report("shell", &args.command, sandbox.mode())),
        },
        Err(e) => ToolOutput::error(format!(
            "the sandbox could not run the command: {e}\nThis is a problem with the \
             environment, not with the command; try a simpler command, or finish and explain."
        )),
    }
}

fn describe(out: &CommandOutput, limits: &Limits) -> String {
    let status = if out.timed_out {
        format!(
            "timed out after {}s (the command was stopped; run something shorter, or in smaller steps)",
            limits.timeout.as_secs()
        )
    } else if let Some(code) = out.exit_code {
        format!("exit code: {code}")
    } else if let Some(signal) = out.signal {
        format!("killed by signal {signal}")
    } else {
        "ended without an exit code".to_owned()
    };
    let mut text = status;
    text.push('\n');
    if out.output.is_empty() {
        text.push_str("(no output)");
    } else {
        text.push_str(&out.output);
    }
    if out.truncated {
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!(
            "[output capped: the command wrote {} bytes, {} were kept; redirect to a file and \
             search or read it in parts]",
            out.total_bytes, limits.output_cap
        ));
    }
    text
}
