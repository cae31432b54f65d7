//! With NIGHTSHIFT_DATABASE_URL pointing at PostgreSQL, tasks and events are kept there:
//! the same binary, the store shared by many machines.

use serde_json::json;

use super::harness::{World, finish, tool};

/// A fresh schema in the test database, dropped afterwards; `None` (skip) outside CI when the
/// database is not configured.
struct Schema {
    base: String,
    name: String,
}

impl Schema {
    fn create() -> Option<Schema> {
        let Ok(base) = std::env::var("NIGHTSHIFT_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "NIGHTSHIFT_TEST_POSTGRES_URL is not set: CI must provide PostgreSQL"
            );
            eprintln!("skipping: NIGHTSHIFT_TEST_POSTGRES_URL is not set");
            return None;
        };
        let name = format!("nightshift_cli_{}", std::process::id());
        let mut client = postgres::Client::connect(&base, postgres::NoTls).unwrap();
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
            ))
            .unwrap();
        Some(Schema { base, name })
    }

    fn url(&self) -> String {
        let separator = if self.base.contains('?') { '&' } else { '?' };
        format!(
            "{}{separator}options=-csearch_path%3D{}",
            self.base, self.name
        )
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

#[test]
fn a_task_is_recorded_in_postgres_and_read_back_from_there() {
    let Some(schema) = Schema::create() else {
        return;
    };
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![
        tool("write_file", json!({"path": "b.txt", "content": "b\n"})),
        finish("wrote b"),
    ]);
    let mut command = world.command();
    command
        .env("NIGHTSHIFT_DATABASE_URL", schema.url())
        .args(["run", "--json", "--repo"])
        .arg(&world.repo)
        .arg("Write b");
    let run = super::harness::run(command);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let id = run.result()["task_id"].as_str().unwrap().to_owned();
    assert!(
        !world.home().join("nightshift.db").exists(),
        "nothing went to SQLite"
    );

    let mut show = world.command();
    show.env("NIGHTSHIFT_DATABASE_URL", schema.url())
        .args(["show", &id]);
    let show = super::harness::run(show);
    assert_eq!(show.code(), 0, "{}", show.stderr);
    assert!(show.stdout.contains("succeeded"), "{}", show.stdout);

    let mut logs = world.command();
    logs.env("NIGHTSHIFT_DATABASE_URL", schema.url())
        .args(["logs", &id, "--json"]);
    let logs = super::harness::run(logs);
    let streamed = run.lines();
    assert_eq!(logs.lines()[..], streamed[..streamed.len() - 1]);
}
