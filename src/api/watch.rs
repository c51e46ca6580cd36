//! Waking requests that wait on a job: one subscription to change notices per process, fanned
//! out to the requests watching each job. A thousand waiting requests cost no database reads
//! while nothing changes; a notice wakes only the requests watching that job (or everyone,
//! when notices may have been lost).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use uuid::Uuid;

use crate::queue::{Change, Signals};

/// The requests watching jobs in this process.
#[derive(Clone)]
pub struct Watchers {
    shared: Arc<Shared>,
}

struct Shared {
    /// Per watched job: its bell and how many watch it.
    jobs: Mutex<HashMap<Uuid, (watch::Sender<()>, usize)>>,
    /// Rung when notices may have been lost: every watcher looks again.
    everyone: watch::Sender<()>,
}

impl Shared {
    fn jobs(&self) -> MutexGuard<'_, HashMap<Uuid, (watch::Sender<()>, usize)>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Watchers {
    /// Watchers woken by the change notices of `signals` (subscribes now, so no change
    /// announced after this returns is missed).
    pub fn start(signals: &dyn Signals) -> Watchers {
        let shared = Arc::new(Shared {
            jobs: Mutex::default(),
            everyone: watch::channel(()).0,
        });
        let notices = signals.change_notices();
        tokio::spawn(forward(notices, Arc::downgrade(&shared)));
        Watchers { shared }
    }

    /// Starts watching `job`: changes announced from now on wake the watch.
    pub fn watch(&self, job: Uuid) -> Watch {
        let bell = {
            let mut jobs = self.shared.jobs();
            let entry = jobs.entry(job).or_insert_with(|| (watch::channel(()).0, 0));
            entry.1 += 1;
            entry.0.subscribe()
        };
        Watch {
            job,
            bell,
            everyone: self.shared.everyone.subscribe(),
            shared: self.shared.clone(),
        }
    }

    /// How many jobs are watched now.
    pub fn watched(&self) -> usize {
        self.shared.jobs().len()
    }
}

/// Rings the bells of the jobs notices name, until the watchers are gone.
async fn forward(mut notices: tokio::sync::broadcast::Receiver<Change>, shared: Weak<Shared>) {
    loop {
        let notice = notices.recv().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match notice {
            Ok(Change::Job(job)) => {
                if let Some((bell, _)) = shared.jobs().get(&job) {
                    bell.send_replace(());
                }
            }
            Ok(Change::Unknown) | Err(RecvError::Lagged(_)) => {
                shared.everyone.send_replace(());
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// One request's watch on a job.
pub struct Watch {
    job: Uuid,
    bell: watch::Receiver<()>,
    everyone: watch::Receiver<()>,
    shared: Arc<Shared>,
}

impl Watch {
    /// Resolves at the next change of the job (or when changes may have been missed).
    pub async fn changed(&mut self) {
        tokio::select! {
            _ = self.bell.changed() => {}
            _ = self.everyone.changed() => {}
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut jobs = self.shared.jobs();
        if let Some(entry) = jobs.get_mut(&self.job) {
            entry.1 -= 1;
            if entry.1 == 0 {
                jobs.remove(&self.job);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::LocalSignals;
    use std::time::Duration;

    #[tokio::test]
    async fn a_notice_wakes_the_watchers_of_its_job_only() {
        let signals = LocalSignals::new();
        let watchers = Watchers::start(&signals);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut watch_a = watchers.watch(a);
        let mut watch_b = watchers.watch(b);
        signals.announce_changes(&[a]);
        tokio::time::timeout(Duration::from_secs(5), watch_a.changed())
            .await
            .expect("a woke");
        let b_woke = tokio::time::timeout(Duration::from_millis(50), watch_b.changed()).await;
        assert!(b_woke.is_err(), "b was not woken by a's notice");
        drop(watch_a);
        assert_eq!(watchers.watched(), 1);
        drop(watch_b);
        assert_eq!(watchers.watched(), 0);
    }
}
