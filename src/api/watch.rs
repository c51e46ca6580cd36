//! Waking requests that wait on a job: one subscription to change notices per process, fanned
//! out to the requests watching each job. A thousand waiting requests cost no database reads
//! while nothing changes; a notice wakes only the requests watching that job (or everyone,
//! when notices may have been lost), and the requests it wakes share one read of the job.
//!
//! Why sharing is safe: every job has a version, raised by each notice. A request registers
//! before it reads, and joins only a read of the version it registered at (or was woken at).
//! A read that began before a change it missed is followed by that change's notice, which
//! raises the version: the request wakes and reads again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OnceCell, watch};
use uuid::Uuid;

use crate::queue::{Change, Signals};

/// The requests watching jobs in this process.
#[derive(Clone)]
pub struct Watchers {
    shared: Arc<Shared>,
}

/// What the watchers of one job share.
struct Watched {
    /// Its version, raised by each notice; watchers wait for it to move.
    bell: watch::Sender<u64>,
    /// How many watch it.
    watchers: usize,
    /// The read of its latest version, when one was asked for: (version, result).
    read: Option<(u64, Arc<dyn std::any::Any + Send + Sync>)>,
}

struct Shared {
    jobs: Mutex<HashMap<Uuid, Watched>>,
}

impl Shared {
    fn jobs(&self) -> MutexGuard<'_, HashMap<Uuid, Watched>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Watchers {
    /// Watchers woken by the change notices of `signals` (subscribes now, so no change
    /// announced after this returns is missed).
    pub fn start(signals: &dyn Signals) -> Watchers {
        let shared = Arc::new(Shared {
            jobs: Mutex::default(),
        });
        let notices = signals.change_notices();
        tokio::spawn(forward(notices, Arc::downgrade(&shared)));
        Watchers { shared }
    }

    /// Starts watching `job`: changes announced from now on wake the watch.
    pub fn watch(&self, job: Uuid) -> Watch {
        let mut jobs = self.shared.jobs();
        let watched = jobs.entry(job).or_insert_with(|| Watched {
            bell: watch::channel(0).0,
            watchers: 0,
            read: None,
        });
        watched.watchers += 1;
        let bell = watched.bell.subscribe();
        let version = *bell.borrow();
        Watch {
            job,
            version,
            bell,
            shared: self.shared.clone(),
        }
    }

    /// How many jobs are watched now.
    pub fn watched(&self) -> usize {
        self.shared.jobs().len()
    }
}

/// Raises the versions of the jobs notices name, until the watchers are gone.
async fn forward(mut notices: tokio::sync::broadcast::Receiver<Change>, shared: Weak<Shared>) {
    loop {
        let notice = notices.recv().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let jobs = shared.jobs();
        match notice {
            Ok(Change::Job(job)) => {
                if let Some(watched) = jobs.get(&job) {
                    watched.bell.send_modify(|v| *v += 1);
                }
            }
            Ok(Change::Unknown) | Err(RecvError::Lagged(_)) => {
                for watched in jobs.values() {
                    watched.bell.send_modify(|v| *v += 1);
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// One request's watch on a job.
pub struct Watch {
    job: Uuid,
    /// The version this watch has seen (registered at, or woken at).
    version: u64,
    bell: watch::Receiver<u64>,
    shared: Arc<Shared>,
}

impl Watch {
    /// Resolves at the next change of the job (or when changes may have been missed).
    pub async fn changed(&mut self) {
        if self.bell.changed().await.is_ok() {
            self.version = *self.bell.borrow_and_update();
        }
    }

    /// The job as `load` reads it, shared with every watcher of the job at this version: the
    /// first one to ask runs `load`, the others wait for its answer.
    pub async fn read<T, F>(&self, load: impl FnOnce() -> F) -> T
    where
        T: Clone + Send + Sync + 'static,
        F: Future<Output = T>,
    {
        let Some(cell) = self.shared_read::<T>() else {
            return load().await;
        };
        cell.get_or_init(load).await.clone()
    }

    /// The read of this watch's version to join or start; `None` if the job is not watched.
    fn shared_read<T: Send + Sync + 'static>(&self) -> Option<Arc<OnceCell<T>>> {
        let mut jobs = self.shared.jobs();
        let watched = jobs.get_mut(&self.job)?;
        let joined = watched
            .read
            .as_ref()
            .filter(|(version, _)| *version == self.version)
            .and_then(|(_, cell)| cell.clone().downcast::<OnceCell<T>>().ok());
        Some(joined.unwrap_or_else(|| {
            let cell = Arc::new(OnceCell::new());
            watched.read = Some((self.version, cell.clone()));
            cell
        }))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut jobs = self.shared.jobs();
        if let Some(watched) = jobs.get_mut(&self.job) {
            watched.watchers -= 1;
            if watched.watchers == 0 {
                jobs.remove(&self.job);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::LocalSignals;
    use std::sync::atomic::{AtomicUsize, Ordering};
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

    #[tokio::test]
    async fn watchers_woken_by_one_notice_share_one_read_and_a_later_one_reads_again() {
        let signals = LocalSignals::new();
        let watchers = Watchers::start(&signals);
        let job = Uuid::now_v7();
        let mut watches: Vec<Watch> = (0..100).map(|_| watchers.watch(job)).collect();
        let reads = AtomicUsize::new(0);
        let load = || async {
            reads.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            7u32
        };
        let first: Vec<u32> = futures::future::join_all(watches.iter().map(|w| w.read(load))).await;
        assert!(first.iter().all(|v| *v == 7));
        assert_eq!(
            reads.load(Ordering::SeqCst),
            1,
            "one read for a hundred watchers"
        );

        signals.announce_changes(&[job]);
        for watch in &mut watches {
            tokio::time::timeout(Duration::from_secs(5), watch.changed())
                .await
                .expect("woken");
        }
        futures::future::join_all(watches.iter().map(|w| w.read(load))).await;
        assert_eq!(
            reads.load(Ordering::SeqCst),
            2,
            "a new version is read once more"
        );
    }
}
