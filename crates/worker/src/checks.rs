//! The task's completion checks, run in the sandbox.

use std::time::Duration;

use nightshift_agent::{BoxFuture, CheckRun, Checks};
use nightshift_protocol::CheckOutcome;
use nightshift_sandbox::{Limits, Sandbox};

/// Check output kept in events (the full output may be much larger).
const CHECK_OUTPUT_IN_EVENTS: usize = 16 * 1024;

pub(crate) struct SandboxChecks {
    pub sandbox: Sandbox,
    pub commands: Vec<String>,
    pub timeout: Duration,
}

impl Checks for SandboxChecks {
    fn run_all(&self) -> BoxFuture<'_, Vec<CheckRun>> {
        Box::pin(async move {
            let limits = Limits {
                timeout: self.timeout,
                ..Limits::default()
            };
            let mut runs = Vec::with_capacity(self.commands.len());
            for command in &self.commands {
                runs.push(match self.sandbox.run(command, &limits).await {
                    Ok(output) => CheckRun {
                        report: Some(output.report("check", command, self.sandbox.mode())),
                        outcome: CheckOutcome {
                            command: command.clone(),
                            passed: output.success(),
                            exit_code: output.exit_code,
                            duration_ms: output.duration.as_millis() as u64,
                            output: nightshift_agent::trim_middle(
                                &output.output,
                                CHECK_OUTPUT_IN_EVENTS,
                            ),
                        },
                    },
                    // The check could not even start: it fails, and the model sees why.
                    Err(error) => CheckRun {
                        report: None,
                        outcome: CheckOutcome {
                            command: command.clone(),
                            passed: false,
                            exit_code: None,
                            duration_ms: 0,
                            output: format!("the check could not be run: {error}"),
                        },
                    },
                });
            }
            runs
        })
    }
}
