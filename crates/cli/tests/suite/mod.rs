mod config;
mod demo;
mod doctor;
mod harness;
mod run_bad_input;
mod run_e2e;
mod run_limits;
mod show_logs;
