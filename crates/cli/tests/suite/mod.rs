mod harness;
mod run_bad_input;
mod run_e2e;
mod show_logs;
