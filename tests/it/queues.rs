//! The queue's and the signals' conformance suite: one set of behaviours, run against Redis
//! (streams, pub/sub) and against the in-process queue and signals, as the pacer's and the
//! ledger's suites are. Nothing above the traits may tell the two apart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use control_plane::job::{Doorbell, Priority};
use control_plane::queue::{
    Change, Delivery, JobQueue, LocalQueue, LocalSignals, QueueConsumer, RedisQueue, Signals,
};
use serde_json::json;
use uuid::Uuid;

use crate::common::{TestPrefix, redis_url};

const DEADLINE: Duration = Duration::from_secs(20);

fn doorbell(level: i64, host: Option<&str>) -> Doorbell {
    Doorbell {
        job_id: Uuid::now_v7(),
        priority: Priority::new(level).expect("a level"),
        host: host.map(str::to_owned),
    }
}

/// Takes from `consumers` in turn until `count` deliveries came, or the deadline.
async fn take_all(consumers: &mut [Box<dyn QueueConsumer>], count: usize) -> Vec<Delivery> {
    let mut taken = Vec::new();
    let until = tokio::time::Instant::now() + DEADLINE;
    while taken.len() < count {
        assert!(
            tokio::time::Instant::now() < until,
            "only {} of {count} doorbells were delivered",
            taken.len()
        );
        for consumer in consumers.iter_mut() {
            let got = consumer
                .take(3, Duration::from_millis(100))
                .await
                .expect("take");
            taken.extend(got);
        }
    }
    taken
}

async fn totals(queue: &dyn JobQueue) -> (u64, u64) {
    let levels = queue.stats().await.expect("stats");
    assert_eq!(levels.len(), 5, "one entry per priority level");
    levels.iter().fold((0, 0), |(length, pending), level| {
        (length + level.length, pending + level.pending)
    })
}

/// Every doorbell rung is delivered once, to one consumer, as it was rung; acknowledging
/// takes it out of the queue.
async fn each_doorbell_reaches_one_consumer_once(queue: &dyn JobQueue) {
    let rung: Vec<Doorbell> = (0..12)
        .map(|i| doorbell(1 + (i % 5), (i % 2 == 0).then_some("site.test")))
        .collect();
    queue.ring(&rung).await.expect("ring");
    let mut consumers = vec![
        queue.consumer("a").await.expect("consumer a"),
        queue.consumer("b").await.expect("consumer b"),
    ];
    let taken = take_all(&mut consumers, rung.len()).await;
    assert_eq!(taken.len(), rung.len(), "no doorbell delivered twice");
    let by_job: HashMap<Uuid, &Doorbell> = taken
        .iter()
        .map(|d| (d.doorbell.job_id, &d.doorbell))
        .collect();
    for bell in &rung {
        assert_eq!(by_job.get(&bell.job_id), Some(&bell), "delivered as rung");
    }
    assert_eq!(
        totals(queue).await,
        (12, 12),
        "taken and not acknowledged: pending"
    );
    for delivery in &taken {
        queue.ack(delivery).await.expect("ack");
    }
    assert_eq!(totals(queue).await, (0, 0), "acknowledged: gone");
    let nothing = consumers[0]
        .take(5, Duration::from_millis(100))
        .await
        .expect("take");
    assert!(
        nothing.is_empty(),
        "an empty queue delivers nothing: {nothing:?}"
    );
}

/// A take waiting on an empty queue is woken by a ring.
async fn a_waiting_take_wakes_on_a_ring(queue: Arc<dyn JobQueue>) {
    let mut consumer = queue.consumer("waiter").await.expect("consumer");
    let waiting = tokio::spawn(async move { consumer.take(1, DEADLINE).await });
    let bell = doorbell(3, None);
    // Whether the take began waiting before this ring or after, the doorbell must come back
    // before the wait runs out (a take that is not woken answers empty at its end).
    queue.ring(std::slice::from_ref(&bell)).await.expect("ring");
    let taken = waiting.await.expect("the take").expect("take");
    assert_eq!(
        taken.len(),
        1,
        "the ring was delivered before the wait ran out"
    );
    assert_eq!(taken[0].doorbell, bell);
}

/// Cancel notices and change notices reach every listener; reports are kept.
async fn signals_reach_every_listener(signals: &dyn Signals) {
    let mut cancels = signals.cancel_notices();
    let mut changes = signals.change_notices();
    let job = Uuid::now_v7();
    // A subscription may still be starting: announce until it is heard.
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        assert!(
            tokio::time::Instant::now() < until,
            "the cancel notice was never heard"
        );
        signals.announce_cancel(job).await.expect("announce");
        if let Ok(Ok(heard)) =
            tokio::time::timeout(Duration::from_millis(200), cancels.recv()).await
        {
            assert_eq!(heard, job);
            break;
        }
    }
    loop {
        assert!(
            tokio::time::Instant::now() < until,
            "the change notice was never heard"
        );
        signals.announce_changes(&[job]);
        match tokio::time::timeout(Duration::from_millis(200), changes.recv()).await {
            Ok(Ok(Change::Job(heard))) => {
                assert_eq!(heard, job);
                break;
            }
            _ => continue,
        }
    }
    let report = json!({"worker": "w1", "browsers": 1});
    signals
        .report("w1", &report, Duration::from_secs(30))
        .await
        .expect("report");
    let reports = signals.reports().await.expect("reports");
    assert!(reports.contains(&report), "{reports:?}");
}

async fn redis() -> (TestPrefix, RedisQueue) {
    let prefix = TestPrefix::new();
    let queue = RedisQueue::connect(&redis_url(), &prefix.0)
        .await
        .expect("redis");
    (prefix, queue)
}

#[tokio::test]
async fn redis_each_doorbell_reaches_one_consumer_once() {
    let (_prefix, queue) = redis().await;
    each_doorbell_reaches_one_consumer_once(&queue).await;
}

#[tokio::test]
async fn local_each_doorbell_reaches_one_consumer_once() {
    each_doorbell_reaches_one_consumer_once(&LocalQueue::new()).await;
}

#[tokio::test]
async fn redis_a_waiting_take_wakes_on_a_ring() {
    let (_prefix, queue) = redis().await;
    a_waiting_take_wakes_on_a_ring(Arc::new(queue)).await;
}

#[tokio::test]
async fn local_a_waiting_take_wakes_on_a_ring() {
    a_waiting_take_wakes_on_a_ring(Arc::new(LocalQueue::new())).await;
}

#[tokio::test]
async fn redis_signals_reach_every_listener() {
    let (_prefix, queue) = redis().await;
    signals_reach_every_listener(&queue.signals()).await;
}

#[tokio::test]
async fn local_signals_reach_every_listener() {
    signals_reach_every_listener(&LocalSignals::new()).await;
}
