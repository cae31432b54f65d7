//! `nightshift show` and `nightshift logs`: read a past task from the store.

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;
use nightshift_protocol::TaskId;
use nightshift_store::{Store, TaskRecord};

use crate::args::{LogsArgs, ShowArgs};
use crate::config::Dirs;
use crate::render;

fn open(task_id: &str) -> anyhow::Result<(Box<dyn Store>, TaskRecord)> {
    let Some(id) = TaskId::parse(task_id) else {
        bail!(
            "`{task_id}` is not a task id\nhint: task ids are the hex strings `nightshift run` \
             prints, e.g. 19ab3c4d5e60abc"
        );
    };
    let dirs = Dirs::from_env()?;
    let location = dirs.database_location();
    if !nightshift_store::is_postgres_url(&location) && !std::path::Path::new(&location).exists() {
        bail!(
            "no tasks have run here yet ({location} does not exist)\nhint: check NIGHTSHIFT_HOME \
             and NIGHTSHIFT_DATABASE_URL, or run a task first"
        );
    }
    let store = dirs.open_store()?;
    let Some(record) = store.task(&id)? else {
        bail!(
            "there is no task {id} in {}\nhint: check the id; tasks are kept per data directory \
             (NIGHTSHIFT_HOME) or database (NIGHTSHIFT_DATABASE_URL)",
            nightshift_store::hide_password(&location)
        );
    };
    Ok((store, record))
}

pub fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let (_store, record) = open(&args.task_id)?;
    let text = match &record.result {
        Some(result) if args.json => format!("{}\n", render::result_line(result)?),
        Some(result) => render::summary(result),
        None if args.json => format!(
            "{}\n",
            serde_json::json!({"task_id": record.id, "status": record.status})
        ),
        None => format!("task {} is {} (no result yet)\n", record.id, record.status),
    };
    // A closed stdout (e.g. piped into `head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// How often `logs --follow` looks at the store for new events.
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(200);

pub fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let (store, record) = open(&args.task_id)?;
    let mut stdout = std::io::stdout().lock();
    let mut after = 0;
    loop {
        let events = store.events(&record.id, after)?;
        for event in &events {
            let line = if args.json {
                serde_json::to_string(event)?
            } else {
                render::event_line(event)
            };
            if writeln!(stdout, "{line}")
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return Ok(ExitCode::SUCCESS); // stdout closed (e.g. piped into `head`).
            }
        }
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(last) = events.last() {
            after = last.seq;
            // The end of a turn: exit as `nightshift run` would have.
            if let nightshift_protocol::EventKind::TaskFinished { result } = &last.kind {
                return Ok(ExitCode::from(result.status.exit_code()));
            }
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}
