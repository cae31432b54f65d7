//! What only the PostgreSQL backend does: connections on threads of their own (so it works
//! from inside an async runtime), and connection errors that name the server.

use std::sync::Arc;
use std::time::Duration;

use nightshift_protocol::EventKind;
use nightshift_store::{PostgresStore, Store, StoreError};

use super::backend::Backend;
use super::{id, spec};

#[test]
fn the_store_works_when_called_and_dropped_inside_an_async_runtime() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // The sync `postgres` client panics if it runs on a runtime thread; the store must not.
        let store: Arc<dyn Store> = Arc::from(backend.open());
        store.insert_task(&id(1), &spec("g")).unwrap();
        let tasks: Vec<_> = (0..4)
            .map(|n| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .append_event(
                            &id(1),
                            EventKind::Notice {
                                message: format!("from task {n}"),
                            },
                        )
                        .unwrap()
                        .seq
                })
            })
            .collect();
        let mut seqs = Vec::new();
        for task in tasks {
            seqs.push(task.await.unwrap());
        }
        seqs.sort_unstable();
        assert_eq!(seqs, [1, 2, 3, 4]);
        assert_eq!(store.events(&id(1), 0).unwrap().len(), 4);
        drop(store);
    });
}

#[test]
fn an_unreachable_server_is_reported_with_its_url_but_not_its_password() {
    let err = nightshift_store::open("postgres://me:s3cret@127.0.0.1:1/nightshift").unwrap_err();
    assert!(matches!(err, StoreError::PostgresConnect { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("postgres://me:***@127.0.0.1:1/nightshift"),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
    assert!(message.contains("hint:"), "{message}");
}

#[test]
fn a_malformed_url_is_refused_before_connecting() {
    let err = PostgresStore::open("postgres://host:notaport/db").unwrap_err();
    assert!(matches!(err, StoreError::PostgresUrl { .. }), "{err:?}");
    assert!(err.to_string().contains("postgres://USER"), "{err}");
}

#[test]
fn a_schema_that_does_not_exist_is_an_error_that_names_the_search_path() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let url = backend
        .location()
        .replace("nightshift_test_", "nightshift_missing_");
    let err = PostgresStore::open(&url).unwrap_err();
    assert!(matches!(err, StoreError::Postgres { .. }), "{err:?}");
    assert!(err.to_string().contains("search_path"), "{err}");
}

#[test]
fn one_connection_is_enough_for_many_threads() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let store = Arc::new(PostgresStore::open_with_connections(&backend.location(), 1).unwrap());
    store.insert_task(&id(1), &spec("g")).unwrap();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || store.claim_next("w", Duration::from_secs(60)).unwrap())
        })
        .collect();
    let claimed: Vec<_> = handles
        .into_iter()
        .filter_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(claimed.len(), 1);
    assert!(format!("{store:?}").contains("connections: 1"));
}
