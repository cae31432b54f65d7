use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use nightshift_protocol::{EventKind, TaskStatus};
use nightshift_store::Store;

use super::backend::Backend;
use super::events::{result, state_changed};
use super::{id, spec};

contract!(
    claims_hand_out_the_oldest_unleased_unfinished_task_first,
    claiming_one_task_takes_it_only_when_unleased_and_unfinished,
    concurrent_claims_never_hand_out_a_task_twice,
    an_expired_lease_is_reclaimed_and_the_old_owner_can_no_longer_renew,
    a_renewed_lease_keeps_the_task_from_other_workers,
    release_makes_a_task_claimable_at_once_but_only_by_its_owner,
    a_task_inserted_claimed_is_not_handed_to_another_worker,
);

const LONG: Duration = Duration::from_secs(600);

fn running(store: &dyn Store, n: u64) {
    store
        .append_event(
            &id(n),
            state_changed(TaskStatus::Queued, TaskStatus::Running),
        )
        .unwrap();
}

fn claims_hand_out_the_oldest_unleased_unfinished_task_first(backend: &Backend) {
    let store = backend.open();
    assert_eq!(store.claim_next("w1", LONG).unwrap(), None);
    for n in 1..=4 {
        store.insert_task(&id(n), &spec(&format!("g{n}"))).unwrap();
    }
    // A finished task is never handed out, whatever its lease.
    store
        .append_event(
            &id(1),
            EventKind::TaskFinished {
                result: result(id(1), TaskStatus::Cancelled),
            },
        )
        .unwrap();

    let first = store.claim_next("w1", LONG).unwrap().unwrap();
    assert_eq!(first.id, id(2));
    assert_eq!(first.spec, spec("g2"));
    assert_eq!(first.status, TaskStatus::Queued);
    // Claiming changes the lease, not the status: the worker's events say what happens.
    assert_eq!(
        store.task(&id(2)).unwrap().unwrap().status,
        TaskStatus::Queued
    );

    assert_eq!(store.claim_next("w2", LONG).unwrap().unwrap().id, id(3));
    assert_eq!(store.claim_next("w1", LONG).unwrap().unwrap().id, id(4));
    assert_eq!(store.claim_next("w3", LONG).unwrap(), None);
}

fn concurrent_claims_never_hand_out_a_task_twice(backend: &Backend) {
    const TASKS: u64 = 50;
    const WORKERS: usize = 4;
    let setup = backend.open();
    for n in 0..TASKS {
        setup.insert_task(&id(n), &spec("g")).unwrap();
    }
    let shared: Arc<dyn Store> = Arc::from(backend.open());
    let barrier = Arc::new(std::sync::Barrier::new(WORKERS));
    let handles: Vec<_> = (0..WORKERS)
        .map(|w| {
            // Half the workers share a store, the others have their own, as separate
            // processes (or machines) would.
            let store: Arc<dyn Store> = if w % 2 == 0 {
                Arc::clone(&shared)
            } else {
                Arc::from(backend.open())
            };
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let worker = format!("worker-{w}");
                barrier.wait();
                let mut claimed = Vec::new();
                while let Some(task) = store.claim_next(&worker, LONG).unwrap() {
                    claimed.push(task.id);
                }
                (worker, claimed)
            })
        })
        .collect();
    let mut all = Vec::new();
    for handle in handles {
        let (worker, claimed) = handle.join().unwrap();
        // Every claim is really held by the worker that got it.
        for task in &claimed {
            assert!(setup.renew_lease(task, &worker, LONG).unwrap());
        }
        all.extend(claimed);
    }
    let unique: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(
        all.len(),
        unique.len(),
        "a task was handed out twice: {all:?}"
    );
    assert_eq!(unique, (0..TASKS).map(id).collect::<HashSet<_>>());
}

fn an_expired_lease_is_reclaimed_and_the_old_owner_can_no_longer_renew(backend: &Backend) {
    let store = backend.open();
    let other = backend.open();
    store.insert_task(&id(1), &spec("g")).unwrap();
    let lease = Duration::from_millis(300);
    assert_eq!(store.claim_next("old", lease).unwrap().unwrap().id, id(1));
    running(store.as_ref(), 1);
    // While the lease lives nobody else gets the task.
    assert_eq!(other.claim_next("new", LONG).unwrap(), None);

    std::thread::sleep(lease + Duration::from_millis(200));
    let resumed = other.claim_next("new", LONG).unwrap().unwrap();
    assert_eq!(resumed.id, id(1));
    // The new worker sees where the task got to, so it resumes rather than restarts.
    assert_eq!(resumed.status, TaskStatus::Running);

    assert!(!store.renew_lease(&id(1), "old", LONG).unwrap());
    assert!(!store.release(&id(1), "old").unwrap());
    assert!(other.renew_lease(&id(1), "new", LONG).unwrap());
    assert_eq!(store.claim_next("old", LONG).unwrap(), None);
}

fn a_renewed_lease_keeps_the_task_from_other_workers(backend: &Backend) {
    let store = backend.open();
    store.insert_task(&id(1), &spec("g")).unwrap();
    let lease = Duration::from_millis(300);
    store.claim_next("w1", lease).unwrap().unwrap();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(150));
        assert!(store.renew_lease(&id(1), "w1", lease).unwrap());
    }
    // 600 ms have passed, twice the lease, but the heartbeat kept it alive.
    assert_eq!(store.claim_next("w2", lease).unwrap(), None);
    // Only the owner can renew, and an unknown task has no lease to renew.
    assert!(!store.renew_lease(&id(1), "w2", lease).unwrap());
    assert!(!store.renew_lease(&id(7), "w1", lease).unwrap());
}

fn release_makes_a_task_claimable_at_once_but_only_by_its_owner(backend: &Backend) {
    let store = backend.open();
    store.insert_task(&id(1), &spec("g")).unwrap();
    store.claim_next("w1", LONG).unwrap().unwrap();
    assert!(!store.release(&id(1), "w2").unwrap());
    assert_eq!(store.claim_next("w2", LONG).unwrap(), None);
    assert!(store.release(&id(1), "w1").unwrap());
    assert!(!store.renew_lease(&id(1), "w1", LONG).unwrap());
    assert_eq!(store.claim_next("w2", LONG).unwrap().unwrap().id, id(1));
    // Releasing a finished task leaves it finished and unclaimable.
    store
        .append_event(
            &id(1),
            EventKind::TaskFinished {
                result: result(id(1), TaskStatus::Succeeded),
            },
        )
        .unwrap();
    assert!(store.release(&id(1), "w2").unwrap());
    assert_eq!(store.claim_next("w3", LONG).unwrap(), None);
}

fn a_task_inserted_claimed_is_not_handed_to_another_worker(backend: &Backend) {
    let store = backend.open();
    store
        .insert_claimed_task(&id(1), &spec("inline"), "cli-run", LONG)
        .unwrap();
    store.insert_task(&id(2), &spec("queued")).unwrap();
    assert_eq!(
        store.task(&id(1)).unwrap().unwrap().status,
        TaskStatus::Queued
    );
    assert_eq!(store.claim_next("daemon", LONG).unwrap().unwrap().id, id(2));
    assert_eq!(store.claim_next("daemon", LONG).unwrap(), None);
    assert!(store.renew_lease(&id(1), "cli-run", LONG).unwrap());
    let err = store
        .insert_claimed_task(&id(1), &spec("again"), "cli-run", LONG)
        .unwrap_err();
    assert!(matches!(
        err,
        nightshift_store::StoreError::DuplicateTask { .. }
    ));
}

fn claiming_one_task_takes_it_only_when_unleased_and_unfinished(backend: &Backend) {
    let store = backend.open();
    assert_eq!(
        store.claim(&id(9), "api", LONG).unwrap(),
        None,
        "no such task"
    );
    for n in 1..=3 {
        store.insert_task(&id(n), &spec(&format!("g{n}"))).unwrap();
    }
    // The second task, not the oldest: claim picks the one asked for.
    let claimed = store.claim(&id(2), "api", LONG).unwrap().unwrap();
    assert_eq!(claimed.id, id(2));
    assert_eq!(store.claim(&id(2), "w1", LONG).unwrap(), None, "leased");
    assert_eq!(store.claim_next("w1", LONG).unwrap().unwrap().id, id(1));
    assert_eq!(store.claim_next("w1", LONG).unwrap().unwrap().id, id(3));
    assert!(store.release(&id(2), "api").unwrap());
    store
        .append_event(
            &id(2),
            EventKind::TaskFinished {
                result: result(id(2), TaskStatus::Cancelled),
            },
        )
        .unwrap();
    assert_eq!(store.claim(&id(2), "api", LONG).unwrap(), None, "finished");
}
