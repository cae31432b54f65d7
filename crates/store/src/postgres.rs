//! The scale-out backend: PostgreSQL, reached through a few connections that each live on a
//! thread of their own.
//!
//! Why threads: the `postgres` client is synchronous on the outside but drives its own
//! async runtime inside, and it panics when used (or dropped) on a thread that is already
//! running an async runtime, which is where the worker and the daemon call the store from.
//! So [`PostgresStore`] owns its connections on plain threads and sends them each request as
//! a job over a channel (an actor); its methods can then be called from any thread.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use nightshift_protocol::{Event, EventKind, TaskId, TaskSpec, TaskStatus};
use postgres::{Client, NoTls, Row};

use crate::record::{
    RawTask, TASK_COLUMNS, encode_event, encode_spec, hash_token, new_token, now,
    unfinished_statuses,
};
use crate::{Store, StoreError, TaskFilter, TaskRecord, migrations};

/// How many connections (and threads) a store opens by default.
const DEFAULT_CONNECTIONS: usize = 4;

/// How long connecting may take when the URL does not say (`connect_timeout=`).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Tasks and their events in a PostgreSQL database, shared by any number of processes.
///
/// The tables live in the first schema of the connection's `search_path`; choose another
/// schema with `?options=-csearch_path%3DNAME` in the URL. Dropping the store closes its
/// connections.
pub struct PostgresStore {
    /// The URL with its password hidden: safe to show in messages.
    url: String,
    jobs: Option<mpsc::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

/// One request for a connection thread.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// What a connection thread owns: its client (connected on first use, and again after the
/// server dropped it) and what it needs to say where errors happened.
struct Connection {
    client: Option<Client>,
    config: postgres::Config,
    ctx: Ctx,
}

/// Where a connection points, for error messages.
struct Ctx {
    url: String,
    location: PathBuf,
}

impl Ctx {
    fn err(&self, source: postgres::Error) -> StoreError {
        StoreError::postgres(&self.url, source)
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`)
    /// and brings its schema up to date.
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        Self::open_with_connections(url, DEFAULT_CONNECTIONS)
    }

    /// Like [`PostgresStore::open`], with at most `connections` connections (at least one):
    /// that many requests run at once.
    pub fn open_with_connections(
        url: &str,
        connections: usize,
    ) -> Result<PostgresStore, StoreError> {
        let shown = hide_password(url);
        let mut config =
            postgres::Config::from_str(url).map_err(|source| StoreError::PostgresUrl {
                url: shown.clone(),
                source,
            })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let threads = (0..connections.max(1))
            .map(|n| {
                let mut connection = Connection {
                    client: None,
                    config: config.clone(),
                    ctx: Ctx {
                        url: shown.clone(),
                        location: PathBuf::from(&shown),
                    },
                };
                let receiver = Arc::clone(&receiver);
                std::thread::Builder::new()
                    .name(format!("nightshift-postgres-{n}"))
                    .spawn(move || serve(&mut connection, &receiver))
                    .map_err(|source| StoreError::PostgresThread {
                        url: shown.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let store = PostgresStore {
            url: shown,
            jobs: Some(jobs),
            threads,
        };
        let migrated = store
            .call(|client, ctx| migrations::migrate_postgres(client).map_err(|e| ctx.err(e)))?;
        if let Err(too_new) = migrated {
            return Err(StoreError::TooNew {
                path: PathBuf::from(&store.url),
                found: too_new.found,
                supported: too_new.supported,
            });
        }
        Ok(store)
    }

    /// The URL this store is connected to, with its password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `f` on one of the connection threads and waits for its answer.
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client, &Ctx) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let gone = || StoreError::PostgresGone {
            url: self.url.clone(),
        };
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |connection: &mut Connection| {
            let Connection {
                client,
                config,
                ctx,
            } = connection;
            let result = connected(client, config, ctx).and_then(|client| f(client, ctx));
            // The caller waits for this answer; if it is gone there is nobody left to tell.
            let _ = reply.send(result);
        });
        let jobs = self.jobs.as_ref().ok_or_else(gone)?;
        jobs.send(job).map_err(|_| gone())?;
        // The reply sender is dropped without an answer only if the job panicked.
        answer.recv().map_err(|_| gone())?
    }
}

/// The connected client, connecting first if there is none or the server dropped it.
fn connected<'a>(
    client: &'a mut Option<Client>,
    config: &postgres::Config,
    ctx: &Ctx,
) -> Result<&'a mut Client, StoreError> {
    if client.as_ref().is_none_or(Client::is_closed) {
        *client = None;
        let connected = config
            .connect(NoTls)
            .map_err(|source| StoreError::PostgresConnect {
                url: ctx.url.clone(),
                source,
            })?;
        return Ok(client.insert(connected));
    }
    // Checked just above: a client is there.
    client.as_mut().ok_or_else(|| StoreError::PostgresGone {
        url: ctx.url.clone(),
    })
}

/// A connection thread: runs jobs until the store is dropped (the channel closes).
fn serve(connection: &mut Connection, receiver: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let job = {
            // A thread that panicked while waiting cannot have left the receiver half-used.
            let receiver = receiver
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            receiver.recv()
        };
        match job {
            Ok(job) => job(connection),
            Err(mpsc::RecvError) => return,
        }
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Closing the channel ends every thread once its current job is done; joining them
        // means the connections are closed when `drop` returns.
        self.jobs = None;
        for thread in self.threads.drain(..) {
            // A thread that panicked has already reported it through its job's caller.
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.url)
            .field("connections", &self.threads.len())
            .finish()
    }
}

impl PostgresStore {
    fn insert(
        &self,
        id: &TaskId,
        spec: &TaskSpec,
        lease: Option<(&str, Duration)>,
    ) -> Result<(), StoreError> {
        let spec_json = encode_spec(spec)?;
        let (id, repo, labels) = (id.clone(), spec.repo.clone(), spec.labels.clone());
        let owner = lease.map(|(worker, _)| worker.to_owned());
        let secs = lease.map(|(_, lease)| lease.as_secs_f64());
        self.call(move |client, ctx| {
            let mut tx = client.transaction().map_err(|e| ctx.err(e))?;
            let now = now();
            // `make_interval` of NULL is NULL, so an unleased task gets no expiry.
            let inserted = tx
                .execute(
                    "INSERT INTO tasks (id, spec_json, status, created_at, updated_at, repo,
                                        lease_owner, lease_expires_at)
                     VALUES ($1, $2, $3, $4, $4, $5, $6,
                             clock_timestamp() + make_interval(secs => $7))
                     ON CONFLICT (id) DO NOTHING",
                    &[
                        &id.as_str(),
                        &spec_json,
                        &TaskStatus::Queued.as_str(),
                        &now,
                        &repo,
                        &owner,
                        &secs,
                    ],
                )
                .map_err(|e| ctx.err(e))?;
            if inserted == 0 {
                return Err(StoreError::DuplicateTask { id });
            }
            for label in &labels {
                tx.execute(
                    "INSERT INTO task_labels (task_id, label) VALUES ($1, $2)
                     ON CONFLICT DO NOTHING",
                    &[&id.as_str(), label],
                )
                .map_err(|e| ctx.err(e))?;
            }
            tx.commit().map_err(|e| ctx.err(e))
        })
    }
}

impl Store for PostgresStore {
    fn insert_task(&self, id: &TaskId, spec: &TaskSpec) -> Result<(), StoreError> {
        self.insert(id, spec, None)
    }

    fn insert_claimed_task(
        &self,
        id: &TaskId,
        spec: &TaskSpec,
        worker: &str,
        lease: Duration,
    ) -> Result<(), StoreError> {
        self.insert(id, spec, Some((worker, lease)))
    }

    fn append_event(&self, task_id: &TaskId, kind: EventKind) -> Result<Event, StoreError> {
        let encoded = encode_event(&kind)?;
        let id = task_id.clone();
        let (seq, ts) = self.call(move |client, ctx| {
            let mut tx = client.transaction().map_err(|e| ctx.err(e))?;
            let ts = now();
            // The UPDATE locks the task's row until commit, so appends to one task run one
            // at a time and each reads the MAX(seq) that the previous one committed.
            let updated = tx
                .execute(
                    "UPDATE tasks SET
                        updated_at = $2,
                        status = COALESCE($3, status),
                        result_json = COALESCE($4, result_json)
                     WHERE id = $1",
                    &[&id.as_str(), &ts, &encoded.status, &encoded.result_json],
                )
                .map_err(|e| ctx.err(e))?;
            if updated == 0 {
                return Err(StoreError::UnknownTask { id });
            }
            let last: i64 = tx
                .query_one(
                    "SELECT COALESCE(MAX(seq), 0) FROM events WHERE task_id = $1",
                    &[&id.as_str()],
                )
                .map_err(|e| ctx.err(e))?
                .get(0);
            let seq = last + 1;
            tx.execute(
                "INSERT INTO events (task_id, seq, ts, type, body_json)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &id.as_str(),
                    &seq,
                    &ts,
                    &encoded.kind_name,
                    &encoded.body_json,
                ],
            )
            .map_err(|e| ctx.err(e))?;
            tx.commit().map_err(|e| ctx.err(e))?;
            Ok((seq, ts))
        })?;
        Ok(Event {
            task_id: task_id.clone(),
            seq: u64::try_from(seq)
                .map_err(|e| StoreError::decode(Path::new(&self.url), "event seq", e))?,
            ts,
            kind,
        })
    }

    fn task(&self, id: &TaskId) -> Result<Option<TaskRecord>, StoreError> {
        let id = id.clone();
        self.call(move |client, ctx| {
            client
                .query_opt(
                    &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"),
                    &[&id.as_str()],
                )
                .map_err(|e| ctx.err(e))?
                .map(|row| raw_task(&row).decode(&ctx.location))
                .transpose()
        })
    }

    fn events(&self, id: &TaskId, after_seq: u64) -> Result<Vec<Event>, StoreError> {
        let id = id.clone();
        self.call(move |client, ctx| {
            // One snapshot for both queries, so the task cannot vanish between them.
            let mut tx = client
                .build_transaction()
                .read_only(true)
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .start()
                .map_err(|e| ctx.err(e))?;
            let exists = tx
                .query_opt("SELECT 1 FROM tasks WHERE id = $1", &[&id.as_str()])
                .map_err(|e| ctx.err(e))?;
            if exists.is_none() {
                return Err(StoreError::UnknownTask { id });
            }
            // Seqs beyond i64::MAX cannot exist, so clamping asks for "nothing after the end".
            let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
            let rows = tx
                .query(
                    "SELECT seq, ts, body_json FROM events
                     WHERE task_id = $1 AND seq > $2 ORDER BY seq",
                    &[&id.as_str(), &after],
                )
                .map_err(|e| ctx.err(e))?;
            tx.commit().map_err(|e| ctx.err(e))?;
            rows.iter()
                .map(|row| {
                    let seq: i64 = row.get(0);
                    let what = || format!("event {seq} of task {id}");
                    let body: String = row.get(2);
                    let kind: EventKind = serde_json::from_str(&body)
                        .map_err(|e| StoreError::decode(&ctx.location, what(), e))?;
                    Ok(Event {
                        task_id: id.clone(),
                        seq: u64::try_from(seq)
                            .map_err(|e| StoreError::decode(&ctx.location, what(), e))?,
                        ts: row.get(1),
                        kind,
                    })
                })
                .collect()
        })
    }

    fn list_tasks_filtered(&self, filter: &TaskFilter) -> Result<Vec<TaskRecord>, StoreError> {
        let statuses: Option<Vec<&'static str>> = (!filter.statuses.is_empty())
            .then(|| filter.statuses.iter().map(|s| s.as_str()).collect());
        let filter = filter.clone();
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        self.call(move |client, ctx| {
            let cursor: Option<(String, i64)> = match &filter.before {
                None => None,
                Some(before) => Some(
                    client
                        .query_opt(
                            "SELECT created_at, n FROM tasks WHERE id = $1",
                            &[&before.as_str()],
                        )
                        .map_err(|e| ctx.err(e))?
                        .map(|row| (row.get(0), row.get(1)))
                        .ok_or_else(|| StoreError::UnknownTask { id: before.clone() })?,
                ),
            };
            let rows = client
                .query(
                    &format!(
                        "SELECT {TASK_COLUMNS} FROM tasks
                         WHERE ($1::text[] IS NULL OR status = ANY($1))
                           AND ($2::text IS NULL OR repo = $2)
                           AND ($3::text IS NULL OR EXISTS (
                                SELECT 1 FROM task_labels
                                WHERE task_id = tasks.id AND label = $3))
                           AND ($4::text IS NULL OR (created_at, n) < ($4, $5::bigint))
                         ORDER BY created_at DESC, n DESC LIMIT $6"
                    ),
                    &[
                        &statuses,
                        &filter.repo,
                        &filter.label,
                        &cursor.as_ref().map(|c| &c.0),
                        &cursor.as_ref().map(|c| c.1),
                        &limit,
                    ],
                )
                .map_err(|e| ctx.err(e))?;
            rows.iter()
                .map(|row| raw_task(row).decode(&ctx.location))
                .collect()
        })
    }

    fn claim_next(&self, worker: &str, lease: Duration) -> Result<Option<TaskRecord>, StoreError> {
        let worker = worker.to_owned();
        self.call(move |client, ctx| {
            // SKIP LOCKED: concurrent claimers each lock a different candidate row instead of
            // queueing behind one another; a row another claimer changed meanwhile is
            // re-checked against the WHERE clause, so a fresh lease is never taken over.
            let row = client
                .query_opt(
                    &format!(
                        "UPDATE tasks
                         SET lease_owner = $1,
                             lease_expires_at = clock_timestamp() + make_interval(secs => $2)
                         WHERE id = (
                            SELECT id FROM tasks
                            WHERE status = ANY($3)
                              AND (lease_owner IS NULL OR lease_expires_at <= clock_timestamp())
                            ORDER BY created_at, n
                            LIMIT 1
                            FOR UPDATE SKIP LOCKED)
                         RETURNING {TASK_COLUMNS}"
                    ),
                    &[&worker, &lease.as_secs_f64(), &unfinished_statuses()],
                )
                .map_err(|e| ctx.err(e))?;
            row.map(|row| raw_task(&row).decode(&ctx.location))
                .transpose()
        })
    }

    fn claim(
        &self,
        id: &TaskId,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<TaskRecord>, StoreError> {
        let (id, worker) = (id.clone(), worker.to_owned());
        self.call(move |client, ctx| {
            let row = client
                .query_opt(
                    &format!(
                        "UPDATE tasks
                         SET lease_owner = $2,
                             lease_expires_at = clock_timestamp() + make_interval(secs => $3)
                         WHERE id = $1
                           AND status = ANY($4)
                           AND (lease_owner IS NULL OR lease_expires_at <= clock_timestamp())
                         RETURNING {TASK_COLUMNS}"
                    ),
                    &[
                        &id.as_str(),
                        &worker,
                        &lease.as_secs_f64(),
                        &unfinished_statuses(),
                    ],
                )
                .map_err(|e| ctx.err(e))?;
            row.map(|row| raw_task(&row).decode(&ctx.location))
                .transpose()
        })
    }

    fn renew_lease(&self, id: &TaskId, worker: &str, lease: Duration) -> Result<bool, StoreError> {
        let (id, worker) = (id.clone(), worker.to_owned());
        self.call(move |client, ctx| {
            let updated = client
                .execute(
                    "UPDATE tasks
                     SET lease_expires_at = clock_timestamp() + make_interval(secs => $3)
                     WHERE id = $1 AND lease_owner = $2",
                    &[&id.as_str(), &worker, &lease.as_secs_f64()],
                )
                .map_err(|e| ctx.err(e))?;
            Ok(updated > 0)
        })
    }

    fn release(&self, id: &TaskId, worker: &str) -> Result<bool, StoreError> {
        let (id, worker) = (id.clone(), worker.to_owned());
        self.call(move |client, ctx| {
            let updated = client
                .execute(
                    "UPDATE tasks SET lease_owner = NULL, lease_expires_at = NULL
                     WHERE id = $1 AND lease_owner = $2",
                    &[&id.as_str(), &worker],
                )
                .map_err(|e| ctx.err(e))?;
            Ok(updated > 0)
        })
    }

    fn create_token(&self, name: &str) -> Result<String, StoreError> {
        let (token, hash) = new_token()?;
        let name = name.to_owned();
        self.call(move |client, ctx| {
            client
                .execute(
                    "INSERT INTO api_tokens (sha256, name, created_at) VALUES ($1, $2, $3)",
                    &[&hash, &name, &now()],
                )
                .map_err(|e| ctx.err(e))
        })?;
        Ok(token)
    }

    fn verify_token(&self, token: &str) -> Result<bool, StoreError> {
        let hash = hash_token(token);
        self.call(move |client, ctx| {
            let found = client
                .query_opt("SELECT 1 FROM api_tokens WHERE sha256 = $1", &[&hash])
                .map_err(|e| ctx.err(e))?;
            Ok(found.is_some())
        })
    }
}

fn raw_task(row: &Row) -> RawTask {
    RawTask {
        id: row.get(0),
        spec_json: row.get(1),
        status: row.get(2),
        created_at: row.get(3),
        updated_at: row.get(4),
        result_json: row.get(5),
    }
}

/// `url` with any password replaced by `***`, so it can appear in messages and logs. Anything
/// that is not a URL (a SQLite path) comes back unchanged.
pub fn hide_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let (head, rest) = url.split_at(scheme_end);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => match authority[..at].find(':') {
            Some(colon) => format!("{}:***{}", &authority[..colon], &authority[at..]),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    // A password may also come as a query parameter.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some(("password", _)) => "password=***".to_owned(),
                    _ => param.to_owned(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{head}{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::hide_password;

    #[test]
    fn passwords_are_hidden_in_urls_shown_to_people() {
        assert_eq!(
            hide_password("postgres://me:s3cret@db:5432/nightshift"),
            "postgres://me:***@db:5432/nightshift"
        );
        assert_eq!(
            hide_password("postgresql://me@db/x?password=s3cret&sslmode=disable"),
            "postgresql://me@db/x?password=***&sslmode=disable"
        );
        assert_eq!(
            hide_password("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
        assert_eq!(hide_password("postgres://db"), "postgres://db");
    }
}
