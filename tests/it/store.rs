//! The store conformance suite: every `JobStore` operation, against `dyn JobStore`, on both
//! backends (`postgres::…` and `sqlite::…`): creation, claim races, fencing, settlement,
//! reaping, cancel, replay, idempotency, listing order, leadership and doorbells.

use std::sync::Arc;
use std::time::Duration;

use control_plane::auth::Scope;
use control_plane::job::{ErrorKind, JobError, JobState, Priority, Replay, Settlement, Strategy};
use control_plane::kinds::RunningJob;
use control_plane::spec::JobSpec;
use control_plane::store::{
    CancelOutcome, Created, IdempotencyKey, JobStore, ListQuery, PgPools, PgStore, QueuePosition,
    ReplayOutcome, SqliteStore, Term, Unring,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{TestDataDir, TestDatabase, eventually};

const TENANT: &str = "default";
const LEASE: Duration = Duration::from_secs(30);

/// A store of its own for one test, removed when it ends (held only to be dropped).
enum Owned {
    Postgres(#[allow(dead_code)] TestDatabase),
    Sqlite(#[allow(dead_code)] TestDataDir),
}

async fn postgres() -> (Arc<dyn JobStore>, Owned) {
    let db = TestDatabase::create().await;
    let store = PgStore::connect(&db.url, PgPools::new(10, Duration::from_secs(5)))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    (Arc::new(store), Owned::Postgres(db))
}

async fn sqlite() -> (Arc<dyn JobStore>, Owned) {
    let dir = TestDataDir::new();
    let store = SqliteStore::open(&dir.0).await.expect("open");
    (Arc::new(store), Owned::Sqlite(dir))
}

/// Runs each listed `async fn name(store: Arc<dyn JobStore>)` on PostgreSQL and on SQLite.
macro_rules! on_both_stores {
    ($($name:ident),+ $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _owned) = super::postgres().await;
                    super::$name(store).await;
                }
            )+
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _owned) = super::sqlite().await;
                    super::$name(store).await;
                }
            )+
        }
    };
}

fn spec(body: Value) -> JobSpec {
    let mut body = body;
    body["url"] = json!("https://example.com/");
    JobSpec::parse(&body).expect("a valid spec")
}

fn noop() -> JobSpec {
    spec(json!({"job_type": "noop"}))
}

async fn create(store: &Arc<dyn JobStore>, spec: &JobSpec) -> Uuid {
    match store
        .create(TENANT, spec, None, None)
        .await
        .expect("create")
    {
        Created::New(job) => job.id,
        other => panic!("expected a new job, got {other:?}"),
    }
}

async fn state(store: &Arc<dyn JobStore>, id: Uuid) -> JobState {
    store
        .get(Scope::Tenant(TENANT), id)
        .await
        .expect("get")
        .expect("the job exists")
        .state
}

async fn kinds(store: &Arc<dyn JobStore>, id: Uuid) -> Vec<String> {
    store
        .events(id)
        .await
        .expect("events")
        .iter()
        .map(|e| e.kind.as_str().to_owned())
        .collect()
}

async fn claimed(store: &Arc<dyn JobStore>, id: Uuid, worker: &str) -> RunningJob {
    store
        .claim(id, worker, LEASE)
        .await
        .expect("claim")
        .expect("claimable")
}

async fn lead(store: &Arc<dyn JobStore>, holder: &str) -> Term {
    store
        .lead(holder, Duration::from_secs(30), None)
        .await
        .expect("lead")
        .expect("nobody else leads")
}

fn failure() -> JobError {
    JobError::new(ErrorKind::Navigation, "refused")
}

async fn a_created_job_reads_back_with_its_timeline(store: Arc<dyn JobStore>) {
    let spec = spec(json!({"job_type": "noop", "priority": 2, "max_attempts": 4,
                           "payload": {"sleep_ms": 5}}));
    let id = create(&store, &spec).await;
    let job = store
        .get(Scope::Tenant(TENANT), id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(job.attempt, 0);
    assert_eq!(job.priority, Priority::new(2).expect("level"));
    assert_eq!(job.max_attempts, 4);
    assert_eq!(job.payload, json!({"sleep_ms": 5}));
    assert_eq!(kinds(&store, id).await, ["created"]);
    assert!(
        store
            .get(Scope::Tenant("another-tenant"), id)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        store
            .get(Scope::Tenant(TENANT), Uuid::now_v7())
            .await
            .expect("get")
            .is_none()
    );
}

async fn of_concurrent_claims_exactly_one_wins(store: Arc<dyn JobStore>) {
    let id = create(&store, &noop()).await;
    let claims = (0..8).map(|n| {
        let store = store.clone();
        async move {
            store
                .claim(id, &format!("w{n}"), LEASE)
                .await
                .expect("claim")
        }
    });
    let won: Vec<RunningJob> = futures::future::join_all(claims)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(won.len(), 1, "one claim wins");
    assert_eq!(won[0].attempt, 1);
    assert_eq!(kinds(&store, id).await, ["created", "started"]);
    assert!(
        store
            .claim(id, "late", LEASE)
            .await
            .expect("claim")
            .is_none()
    );
}

async fn claiming_many_takes_only_the_due_queued_ones_once(store: Arc<dyn JobStore>) {
    let (a, b) = (create(&store, &noop()).await, create(&store, &noop()).await);
    let later = create(
        &store,
        &spec(json!({"job_type": "noop", "delay_ms": 60_000})),
    )
    .await;
    let taken = create(&store, &noop()).await;
    claimed(&store, taken, "other").await;
    let ids = [a, later, b, a, taken, Uuid::now_v7()];
    let won = store.claim_many(&ids, "w", LEASE).await.expect("claim");
    let mut got: Vec<Uuid> = won.iter().map(|job| job.id).collect();
    got.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(got, want, "the due queued ones, each once");
    for job in &won {
        assert_eq!((job.attempt, job.worker_id.as_str()), (1, "w"));
        assert_eq!(kinds(&store, job.id).await, ["created", "started"]);
    }
    assert_eq!(state(&store, later).await, JobState::Queued);
    assert!(
        store
            .claim_many(&ids, "w2", LEASE)
            .await
            .expect("claim")
            .is_empty()
    );
}

async fn outcomes_settled_together_are_each_recorded_only_by_their_holder(
    store: Arc<dyn JobStore>,
) {
    let (a, b, c) = (
        create(&store, &noop()).await,
        create(&store, &noop()).await,
        create(&store, &noop()).await,
    );
    let (a, b, c) = (
        claimed(&store, a, "w").await,
        claimed(&store, b, "w").await,
        claimed(&store, c, "w").await,
    );
    // `b` was taken back (its lease lapsed and another worker holds it now).
    let taken_back = RunningJob {
        worker_id: "other".into(),
        ..b.clone()
    };
    let done = Settlement::Succeeded(json!({"n": 1}));
    let failed = Settlement::Failed(failure());
    let held = store
        .settle_many(&[(&a, &done), (&taken_back, &done), (&c, &failed)])
        .await
        .expect("settle");
    assert_eq!(held, [true, false, true], "answered in order");
    assert_eq!(state(&store, a.id).await, JobState::Succeeded);
    assert_eq!(state(&store, b.id).await, JobState::Running, "untouched");
    assert_eq!(state(&store, c.id).await, JobState::Failed);
    assert_eq!(
        kinds(&store, a.id).await,
        ["created", "started", "succeeded"]
    );
    assert_eq!(kinds(&store, b.id).await, ["created", "started"]);
    assert_eq!(kinds(&store, c.id).await, ["created", "started", "failed"]);
    let result = store
        .get(Scope::Tenant(TENANT), a.id)
        .await
        .expect("get")
        .expect("a");
    assert_eq!(result.result, Some(json!({"n": 1})));
    assert_eq!(
        store.settle_many(&[(&a, &done)]).await.expect("settle"),
        [false],
        "recorded once"
    );
}

async fn a_batch_is_created_in_order_in_one_commit(store: Arc<dyn JobStore>) {
    use control_plane::store::NewJob;
    let specs: Vec<JobSpec> = (0..1_200)
        .map(|i| {
            let body = json!({"job_type": "noop", "priority": i % 5 + 1,
                              "url": format!("https://example.com/{i}")});
            JobSpec::parse(&body).expect("a valid spec")
        })
        .collect();
    let jobs: Vec<NewJob<'_>> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| NewJob {
            tenant: if i % 2 == 0 { "even" } else { "odd" },
            spec,
        })
        .collect();
    let made = store.create_many(&jobs, None).await.expect("create");
    assert_eq!(made.len(), 1_200);
    for (i, job) in made.iter().enumerate() {
        assert_eq!(
            job.url,
            format!("https://example.com/{i}"),
            "in the order given"
        );
        assert_eq!(job.tenant_id, if i % 2 == 0 { "even" } else { "odd" });
    }
    assert_eq!(kinds(&store, made[1_199].id).await, ["created"]);
}

async fn a_scheduled_job_is_not_claimable_before_it_is_due(store: Arc<dyn JobStore>) {
    let id = create(&store, &spec(json!({"job_type": "noop", "delay_ms": 2000}))).await;
    assert!(store.claim(id, "w", LEASE).await.expect("claim").is_none());
    eventually("the job to become due", Duration::from_secs(10), || async {
        store.claim(id, "w", LEASE).await.expect("claim")
    })
    .await;
}

async fn only_the_holder_of_an_attempt_writes_about_it(store: Arc<dyn JobStore>) {
    let id = create(&store, &noop()).await;
    let job = claimed(&store, id, "w1").await;
    let impostor = RunningJob {
        worker_id: "w2".into(),
        ..job.clone()
    };
    let stale = RunningJob {
        attempt: job.attempt + 1,
        ..job.clone()
    };
    let done = Settlement::Succeeded(json!({"ok": true}));
    assert!(!store.renew(&impostor, LEASE).await.expect("renew"));
    assert!(!store.settle(&impostor, &done).await.expect("settle"));
    assert!(!store.settle(&stale, &done).await.expect("settle"));
    assert!(store.renew(&job, LEASE).await.expect("renew"));
    assert!(store.settle(&job, &done).await.expect("settle"));
    assert!(
        !store.settle(&job, &done).await.expect("settle"),
        "recorded once"
    );
    assert!(!store.release(&job).await.expect("release"));
    let finished = store
        .get(Scope::Tenant(TENANT), id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(finished.state, JobState::Succeeded);
    assert_eq!(finished.result, Some(json!({"ok": true})));
    assert!(finished.finished_at.is_some() && finished.lease_until.is_none());
    assert_eq!(kinds(&store, id).await, ["created", "started", "succeeded"]);
}

async fn a_retry_requeues_until_its_time_and_a_failure_finishes(store: Arc<dyn JobStore>) {
    let id = create(&store, &noop()).await;
    let job = claimed(&store, id, "w").await;
    let later = chrono::Utc::now() + chrono::Duration::seconds(60);
    let retry = Settlement::Retry {
        error: failure(),
        run_at: later,
    };
    assert!(store.settle(&job, &retry).await.expect("settle"));
    let queued = store
        .get(Scope::Tenant(TENANT), id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(queued.state, JobState::Queued);
    assert_eq!(queued.error.map(|e| e.kind), Some(ErrorKind::Navigation));
    assert!(
        store.claim(id, "w", LEASE).await.expect("claim").is_none(),
        "not yet due"
    );

    let id = create(&store, &noop()).await;
    let job = claimed(&store, id, "w").await;
    assert!(
        store
            .settle(&job, &Settlement::Failed(failure()))
            .await
            .expect("settle")
    );
    assert_eq!(state(&store, id).await, JobState::Failed);
    assert_eq!(kinds(&store, id).await, ["created", "started", "failed"]);
}

async fn a_released_job_is_queued_again_untouched(store: Arc<dyn JobStore>) {
    let id = create(&store, &noop()).await;
    let job = claimed(&store, id, "w").await;
    assert!(store.release(&job).await.expect("release"));
    assert_eq!(state(&store, id).await, JobState::Queued);
    let again = claimed(&store, id, "w2").await;
    assert_eq!(again.attempt, 2);
    assert_eq!(
        kinds(&store, id).await,
        ["created", "started", "released", "started"]
    );
}

async fn expired_leases_are_reaped_by_the_leader_only(store: Arc<dyn JobStore>) {
    let spec = spec(json!({"job_type": "noop", "max_attempts": 2}));
    let id = create(&store, &spec).await;
    store
        .claim(id, "gone", Duration::from_millis(1))
        .await
        .expect("claim")
        .expect("claimable");
    let term = lead(&store, "leader").await;
    let stale = Term(term.0 - 1);
    eventually("the lease to expire", Duration::from_secs(10), || async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(store.reap_expired(stale, 100).await.expect("reap").len(), 0);
        (store.reap_expired(term, 100).await.expect("reap").len() == 1).then_some(())
    })
    .await;
    let job = store
        .get(Scope::Tenant(TENANT), id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(job.state, JobState::Queued, "an attempt is left");
    assert_eq!(job.attempt, 1);
    assert_eq!(
        kinds(&store, id).await,
        ["created", "started", "lease_expired"]
    );
    // The last attempt's lease runs out too: the job fails.
    store
        .claim(id, "gone", Duration::from_millis(1))
        .await
        .expect("claim")
        .expect("claimable");
    eventually(
        "the last lease to expire",
        Duration::from_secs(10),
        || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            (store.reap_expired(term, 100).await.expect("reap").len() == 1).then_some(())
        },
    )
    .await;
    assert_eq!(state(&store, id).await, JobState::Failed);
}

async fn cancel_stops_unfinished_jobs_and_refuses_finished_ones(store: Arc<dyn JobStore>) {
    let queued = create(&store, &noop()).await;
    assert!(matches!(
        store.cancel(Scope::Tenant(TENANT), queued).await.expect("cancel"),
        CancelOutcome::Cancelled(job) if job.state == JobState::Cancelled
    ));
    let running = create(&store, &noop()).await;
    let job = claimed(&store, running, "w").await;
    assert!(matches!(
        store
            .cancel(Scope::Tenant(TENANT), running)
            .await
            .expect("cancel"),
        CancelOutcome::Cancelled(_)
    ));
    let done = Settlement::Succeeded(json!({}));
    assert!(
        !store.settle(&job, &done).await.expect("settle"),
        "the outcome is dropped"
    );
    assert_eq!(
        kinds(&store, running).await,
        ["created", "started", "cancelled"]
    );
    assert!(matches!(
        store
            .cancel(Scope::Tenant(TENANT), queued)
            .await
            .expect("cancel"),
        CancelOutcome::AlreadyFinished(JobState::Cancelled)
    ));
    assert!(matches!(
        store
            .cancel(Scope::Tenant("another-tenant"), running)
            .await
            .expect("cancel"),
        CancelOutcome::NotFound
    ));
}

async fn a_replay_gives_a_fresh_budget_and_keeps_the_history(store: Arc<dyn JobStore>) {
    let id = create(
        &store,
        &spec(json!({"job_type": "noop", "max_attempts": 1})),
    )
    .await;
    let job = claimed(&store, id, "w").await;
    assert!(
        store
            .settle(&job, &Settlement::Failed(failure()))
            .await
            .expect("settle")
    );
    let change = Replay {
        budget: 2,
        strategy: Some(Strategy::Stealth),
        priority: Priority::new(1),
    };
    let ReplayOutcome::Queued(replayed) = store
        .replay(Scope::Tenant(TENANT), id, &change)
        .await
        .expect("replay")
    else {
        panic!("a failed job replays");
    };
    assert_eq!(replayed.state, JobState::Queued);
    assert_eq!(replayed.max_attempts, 3);
    assert_eq!(replayed.strategy, Strategy::Stealth);
    assert!(replayed.error.is_none() && replayed.finished_at.is_none());
    assert!(matches!(
        store
            .replay(Scope::Tenant(TENANT), id, &change)
            .await
            .expect("replay"),
        ReplayOutcome::NotReplayable(JobState::Queued)
    ));
    assert_eq!(
        kinds(&store, id).await,
        ["created", "started", "failed", "retried"]
    );
}

async fn one_idempotency_key_makes_one_job(store: Arc<dyn JobStore>) {
    let spec = noop();
    let key = IdempotencyKey {
        key: "order-1".into(),
        request_hash: "a".into(),
    };
    let first = (0..8).map(|_| {
        let (store, spec, key) = (store.clone(), spec.clone(), key.clone());
        async move {
            store
                .create(TENANT, &spec, Some(&key), None)
                .await
                .expect("create")
        }
    });
    let answers = futures::future::join_all(first).await;
    let mut ids: Vec<Uuid> = Vec::new();
    let mut new = 0;
    for answer in answers {
        match answer {
            Created::New(job) => {
                new += 1;
                ids.push(job.id);
            }
            Created::Replayed(job) => ids.push(job.id),
            Created::KeyMismatch => panic!("same request, same key"),
        }
    }
    ids.dedup();
    assert_eq!((new, ids.len()), (1, 1), "one job for one key");
    let other = IdempotencyKey {
        request_hash: "b".into(),
        ..key
    };
    assert!(matches!(
        store
            .create(TENANT, &spec, Some(&other), None)
            .await
            .expect("create"),
        Created::KeyMismatch
    ));
}

async fn listings_are_newest_first_filtered_and_paged(store: Arc<dyn JobStore>) {
    let mut ids = Vec::new();
    for n in 0..5 {
        let job_type = if n % 2 == 0 {
            "noop"
        } else {
            "navigate_extract"
        };
        ids.push(create(&store, &spec(json!({"job_type": job_type}))).await);
    }
    ids.reverse();
    let query = |before: Option<Uuid>, limit: u32| ListQuery {
        before,
        limit,
        ..ListQuery::default()
    };
    let page = store
        .list(Scope::Tenant(TENANT), &query(None, 3))
        .await
        .expect("list");
    let page_ids: Vec<Uuid> = page.iter().map(|j| j.id).collect();
    assert_eq!(page_ids, ids[..3]);
    let rest = store
        .list(Scope::Tenant(TENANT), &query(Some(ids[2]), 10))
        .await
        .expect("list");
    let rest_ids: Vec<Uuid> = rest.iter().map(|j| j.id).collect();
    assert_eq!(rest_ids, ids[3..]);
    let noops = ListQuery {
        job_type: "noop".parse().ok(),
        limit: 10,
        ..ListQuery::default()
    };
    assert_eq!(
        store
            .list(Scope::Tenant(TENANT), &noops)
            .await
            .expect("list")
            .len(),
        3
    );
    assert!(
        store
            .list(Scope::Tenant("another-tenant"), &query(None, 10))
            .await
            .expect("list")
            .is_empty()
    );
}

async fn leadership_is_a_lease_whose_term_fences_the_old_leader(store: Arc<dyn JobStore>) {
    let lease = Duration::from_secs(2);
    let first = store
        .lead("a", lease, None)
        .await
        .expect("lead")
        .expect("a leads");
    assert_eq!(
        store.lead("b", lease, None).await.expect("lead"),
        None,
        "a leads"
    );
    assert_eq!(
        store.lead("a", lease, Some(first)).await.expect("renew"),
        Some(first)
    );
    let second = eventually("a's lease to expire", Duration::from_secs(10), || async {
        store.lead("b", lease, None).await.expect("lead")
    })
    .await;
    assert!(second > first, "a takeover starts a new term");
    assert_eq!(
        store.lead("a", lease, Some(first)).await.expect("renew"),
        None
    );
    // A due job needing a doorbell: the old term cannot take it.
    let job = create(&store, &noop()).await;
    store.mark_needed(&[job], None).await.expect("mark");
    assert!(store.take_due(first, 10).await.expect("take").is_empty());
    assert_eq!(store.take_due(second, 10).await.expect("take").len(), 1);
    store.resign("b", second).await.expect("resign");
    let third = store
        .lead("a", lease, None)
        .await
        .expect("lead")
        .expect("b resigned");
    assert!(third > second);
}

async fn doorbells_are_marked_rung_only_once_confirmed(store: Arc<dyn JobStore>) {
    let term = lead(&store, "leader").await;
    let scheduled = create(&store, &spec(json!({"job_type": "noop", "delay_ms": 100}))).await;
    let due = eventually("the job to become due", Duration::from_secs(10), || async {
        let due = store.take_due(term, 10).await.expect("take");
        (!due.is_empty()).then_some(due)
    })
    .await;
    assert_eq!(
        due.iter().map(|b| b.job_id).collect::<Vec<_>>(),
        [scheduled]
    );
    assert!(
        store.take_due(term, 10).await.expect("take").is_empty(),
        "taken once"
    );
    assert_eq!(kinds(&store, scheduled).await, ["created", "dispatched"]);
    // Never confirmed (the ringer died): rung again after the grace.
    assert_eq!(
        store
            .unring(term, &Unring::Unconfirmed(Duration::ZERO), 100)
            .await
            .expect("unring"),
        1
    );
    assert_eq!(store.take_due(term, 10).await.expect("take").len(), 1);
    assert_eq!(store.confirm_rung(&[scheduled]).await.expect("confirm"), 1);
    assert_eq!(
        store
            .unring(term, &Unring::Unconfirmed(Duration::ZERO), 100)
            .await
            .expect("unring"),
        0,
        "a confirmed ring is not unconfirmed"
    );
    // The queue lost everything rung before it was created again: gone through a level and
    // a page at a time, each page starting where the last ended.
    let lost_before = chrono::Utc::now() + chrono::Duration::seconds(1);
    let (mut from, mut pages, mut lost) = (Some(QueuePosition::START), 0, Vec::new());
    while let Some(position) = from {
        let page = store
            .lost_page(lost_before, position, 1)
            .await
            .expect("a page");
        lost.extend(page.lost);
        pages += 1;
        from = page.next;
    }
    assert_eq!(
        lost.iter().map(|bell| bell.job_id).collect::<Vec<_>>(),
        [scheduled],
        "the one job rung before the loss"
    );
    // Levels 1 and 2 are empty; level 3 holds the job (a full page of one, then an empty
    // one); levels 4 and 5 are empty.
    assert_eq!(pages, 6);
    assert_eq!(
        store
            .rung_again(term, &[scheduled], lost_before)
            .await
            .expect("rung again"),
        1
    );
    assert_eq!(
        store
            .rung_again(Term(term.0 + 1), &[scheduled], lost_before)
            .await
            .expect("rung again"),
        0,
        "only under the leader's term"
    );
    store.mark_needed(&[scheduled], None).await.expect("mark");
    assert_eq!(store.take_due(term, 10).await.expect("take").len(), 1);
}

on_both_stores!(
    a_created_job_reads_back_with_its_timeline,
    of_concurrent_claims_exactly_one_wins,
    claiming_many_takes_only_the_due_queued_ones_once,
    outcomes_settled_together_are_each_recorded_only_by_their_holder,
    a_batch_is_created_in_order_in_one_commit,
    a_scheduled_job_is_not_claimable_before_it_is_due,
    only_the_holder_of_an_attempt_writes_about_it,
    a_retry_requeues_until_its_time_and_a_failure_finishes,
    a_released_job_is_queued_again_untouched,
    expired_leases_are_reaped_by_the_leader_only,
    cancel_stops_unfinished_jobs_and_refuses_finished_ones,
    a_replay_gives_a_fresh_budget_and_keeps_the_history,
    one_idempotency_key_makes_one_job,
    listings_are_newest_first_filtered_and_paged,
    leadership_is_a_lease_whose_term_fences_the_old_leader,
    doorbells_are_marked_rung_only_once_confirmed,
);
