//! The leader's purge: every few seconds, expired jobs are deleted in batches of
//! `RETENTION_BATCH`, each its own short transaction fenced by the term and followed by a
//! rest that keeps the purge within its share of time, then the objects of their artifacts
//! are deleted from the store. It runs beside the scheduler, not inside its looks, so a long
//! purge never delays a due job.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use super::{
    EraseRefused, Erased, Expiry, PurgeShare, RetainFor, Retention, RetentionIndex,
    RetentionOverride, Tenants,
};
use crate::artifact::{ArtifactError, ArtifactStore, ObjectKey};
use crate::metrics::Metrics;
use crate::persist::{StoreError, Term};

/// Objects deleted from the store per round.
const OBJECTS_PER_ROUND: u32 = 1_000;

/// Why a purge stopped.
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The artifact store failed (the objects stay queued for the next look).
    #[error(transparent)]
    Artifacts(#[from] ArtifactError),
}

/// How the purge goes about it.
#[derive(Debug, Clone, Copy)]
pub struct PurgePace {
    /// Jobs per transaction.
    pub batch: u32,
    /// Between the end of one look and the next.
    pub every: Duration,
    /// The share of time spent deleting while expired jobs are left.
    pub share: PurgeShare,
    /// How long one batch's statements may run: half the leader's lease, as its others.
    pub within: Duration,
}

/// Deletes what retention says is expired.
#[derive(Clone)]
pub struct Purger {
    index: Arc<dyn RetentionIndex>,
    artifacts: ArtifactStore,
    defaults: Retention,
    pace: PurgePace,
    metrics: Metrics,
}

impl Purger {
    /// A purger of `index` and `artifacts` with the settings' ages, going at `pace`.
    pub fn new(
        index: Arc<dyn RetentionIndex>,
        artifacts: ArtifactStore,
        defaults: Retention,
        pace: PurgePace,
        metrics: Metrics,
    ) -> Purger {
        // Every table's series exists from the start, reading 0 rather than "no data".
        for (table, _) in Erased::default().by_table() {
            metrics.families().purged_rows.with_label_values(&[table]);
        }
        Purger {
            index,
            artifacts,
            defaults,
            pace: PurgePace {
                batch: pace.batch.max(1),
                ..pace
            },
            metrics,
        }
    }

    /// The settings' ages.
    pub fn defaults(&self) -> Retention {
        self.defaults
    }

    /// Looks every `pace.every` while `terms` holds a term of this process's leadership,
    /// until `shutdown`. A look under a term that has since been lost deletes nothing: every
    /// batch is fenced by it.
    pub async fn run(self, mut terms: watch::Receiver<Option<Term>>, shutdown: CancellationToken) {
        loop {
            let term = tokio::select! {
                () = shutdown.cancelled() => return,
                led = terms.wait_for(Option::is_some) => match led {
                    Ok(term) => *term,
                    Err(_) => return,
                },
            };
            let Some(term) = term else { continue };
            tokio::select! {
                () = shutdown.cancelled() => return,
                purged = self.purge(term) => if let Err(e) = purged {
                    warn!(error = %e, "cannot delete expired jobs; will retry");
                },
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.pace.every) => {}
            }
        }
    }

    /// One look under `term`: deletes every expired job in batches (resting between them to
    /// keep within its share), old idempotency records, and the objects of deleted artifacts.
    pub async fn purge(&self, term: Term) -> Result<Erased, PurgeError> {
        let mut erased = Erased::default();
        let batch_size = self.pace.batch;
        // The passes are worked in order; the tenants' ages are read again before every
        // batch, so an age a tenant sets while a long purge runs (`forever` to hold its
        // jobs) applies from the next batch on.
        let mut pass = 0;
        loop {
            let overrides = self.index.retention_overrides().await?;
            let Some(expiry) = expiries(self.defaults, &overrides).into_iter().nth(pass) else {
                break;
            };
            let started = Instant::now();
            let batch = self
                .index
                .purge_expired(term, &expiry, batch_size, self.pace.within)
                .await?;
            self.count(&batch);
            erased += batch;
            // A short batch was the last of this pass; so was an empty one, which is also
            // what a lost term reads.
            if batch.jobs < u64::from(batch_size) {
                pass += 1;
            } else {
                tokio::time::sleep(self.pace.share.rest_after(started.elapsed())).await;
            }
        }
        let keys = self.index.purge_idempotency(term, batch_size).await?;
        self.count(&Erased {
            idempotency_keys: keys,
            ..Erased::default()
        });
        erased.idempotency_keys += keys;
        self.delete_objects(None).await?;
        if erased.jobs > 0 {
            info!(
                jobs = erased.jobs,
                events = erased.events,
                artifacts = erased.artifacts,
                "deleted expired jobs"
            );
        }
        Ok(erased)
    }

    /// Erases one finished job of `tenant` (any, for `None`) and its artifacts' objects now.
    pub async fn erase(
        &self,
        job: Uuid,
        tenant: Option<&str>,
    ) -> Result<Result<Erased, EraseRefused>, StoreError> {
        let erased = self.index.erase_job(job, tenant).await?;
        if let Ok(counts) = &erased {
            self.count(counts);
            // The rows are gone; an object the store keeps refusing stays queued, and the
            // leader's next look deletes it.
            if let Err(e) = self.delete_objects(Some(job)).await {
                warn!(error = %e, %job, "cannot delete an erased job's artifacts yet; the scheduler will");
            }
        }
        Ok(erased)
    }

    /// Deletes queued objects (of `job` only, when given) from the store, then forgets them.
    async fn delete_objects(&self, job: Option<Uuid>) -> Result<(), PurgeError> {
        loop {
            let doomed = self.index.doomed_objects(job, OBJECTS_PER_ROUND).await?;
            if doomed.is_empty() {
                return Ok(());
            }
            let keys: Vec<ObjectKey> = doomed.iter().map(|o| o.key.clone()).collect();
            self.artifacts.delete_objects(&keys).await?;
            self.index.forget_objects(&doomed).await?;
            self.metrics
                .families()
                .purged_bytes
                .inc_by(doomed.iter().map(|o| o.bytes).sum());
            if doomed.len() < OBJECTS_PER_ROUND as usize {
                return Ok(());
            }
        }
    }

    fn count(&self, erased: &Erased) {
        for (table, rows) in erased.by_table() {
            if rows > 0 {
                self.metrics
                    .families()
                    .purged_rows
                    .with_label_values(&[table])
                    .inc_by(rows);
            }
        }
    }
}

/// The purges one look makes: per terminal state, every tenant without its own age under
/// the settings' (unless kept forever), then each tenant with its own.
fn expiries(defaults: Retention, overrides: &[(String, RetentionOverride)]) -> Vec<Expiry> {
    let mut expiries = Vec::new();
    for (state, default) in defaults.by_state() {
        let own: Vec<(&String, RetainFor)> = overrides
            .iter()
            .filter_map(|(tenant, own)| own.for_state(state).map(|age| (tenant, age)))
            .collect();
        if let RetainFor::Age(age) = default {
            expiries.push(Expiry {
                state,
                age,
                tenants: Tenants::AllBut(own.iter().map(|(tenant, _)| (*tenant).clone()).collect()),
            });
        }
        for (tenant, retain) in own {
            if let RetainFor::Age(age) = retain {
                expiries.push(Expiry {
                    state,
                    age,
                    tenants: Tenants::Only(tenant.clone()),
                });
            }
        }
    }
    expiries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobState;

    #[test]
    fn tenants_with_their_own_age_leave_the_default_pass() {
        let own = RetentionOverride {
            succeeded: Some(RetainFor::Age(Duration::from_secs(3600))),
            failed: Some(RetainFor::Forever),
            cancelled: None,
        };
        let found = expiries(Retention::DEFAULT, &[("acme".to_owned(), own)]);
        let of = |state| -> Vec<&Expiry> { found.iter().filter(|e| e.state == state).collect() };
        let succeeded = of(JobState::Succeeded);
        assert_eq!(succeeded.len(), 2);
        assert_eq!(
            succeeded[0].tenants,
            Tenants::AllBut(vec!["acme".to_owned()])
        );
        assert_eq!(succeeded[1].tenants, Tenants::Only("acme".to_owned()));
        assert_eq!(succeeded[1].age, Duration::from_secs(3600));
        // Kept forever: out of the default pass, and no pass of its own.
        let failed = of(JobState::Failed);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].tenants, Tenants::AllBut(vec!["acme".to_owned()]));
        // Not set: the default pass covers it.
        assert_eq!(of(JobState::Cancelled)[0].tenants, Tenants::AllBut(vec![]));
    }

    #[test]
    fn a_state_kept_forever_by_default_is_purged_only_for_tenants_with_an_age() {
        let defaults = Retention {
            succeeded: RetainFor::Forever,
            ..Retention::DEFAULT
        };
        let own = RetentionOverride {
            succeeded: Some(RetainFor::Age(Duration::from_secs(120))),
            ..RetentionOverride::default()
        };
        let found = expiries(defaults, &[("acme".to_owned(), own)]);
        let succeeded: Vec<&Expiry> = found
            .iter()
            .filter(|e| e.state == JobState::Succeeded)
            .collect();
        assert_eq!(succeeded.len(), 1);
        assert_eq!(succeeded[0].tenants, Tenants::Only("acme".to_owned()));
    }
}
