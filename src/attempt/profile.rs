//! The profile of one attempt: its writer lease beside the domain's slot (one saving job at
//! a time per profile; readers never wait), loading it before the first rung (its identity
//! fills what the job leaves out), and storing what a successful attempt left.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tracing::{info, warn};

use super::{Attempts, Entry};
use crate::engine::options::{PageOptions, ProfileUse};
use crate::engine::profile::Identity;
use crate::job::{ErrorKind, JobError};
use crate::kinds::{Payload, RunningJob};
use crate::memory::Admission;
use crate::profile::{Carried, ProfileError, lease_key, writer_limits};

/// The profile a stored payload names, if any.
fn named(job: &RunningJob) -> Option<ProfileUse> {
    serde_json::from_value(job.payload.get("profile")?.clone()).ok()
}

/// The writer lease's key of a saving job.
fn writer_key(job: &RunningJob) -> Option<String> {
    named(job)
        .filter(|profile| profile.save)
        .map(|profile| lease_key(&job.tenant_id, &profile.name))
}

impl Attempts {
    /// Takes the profile's writer lease for a saving job its domain admitted; a job that
    /// must wait gives its domain slot back and is deferred like a paced one.
    pub(super) async fn admit_writer(&self, job: &RunningJob, lease: Duration) -> Entry {
        let Some(key) = writer_key(job) else {
            return Entry::Run;
        };
        let pacer = self.domains.pacer();
        match pacer.admit(&key, job.id, lease, &writer_limits()).await {
            Ok(Admission::Admitted | Admission::Holding) => Entry::Run,
            Ok(Admission::Deferred { wait_ms, .. }) => {
                self.domains.release(&job.domain, job.id).await;
                Entry::Defer {
                    until: Utc::now() + chrono::Duration::milliseconds(wait_ms),
                    reason: "profile",
                }
            }
            Err(e) => {
                warn!(error = %e, "the pacer cannot be reached: saving without the writer lease");
                Entry::Run
            }
        }
    }

    /// Keeps the writer lease of a job whose lease was renewed.
    pub(super) async fn renew_writer(&self, job: &RunningJob, lease: Duration) {
        if let Some(key) = writer_key(job)
            && let Err(e) = self.domains.pacer().renew(&key, job.id, lease).await
        {
            warn!(error = %e, "cannot renew the profile's writer lease; it lapses with the lease");
        }
    }

    /// Gives the writer lease back.
    pub(super) async fn release_writer(&self, job: &RunningJob) {
        if let Some(key) = writer_key(job)
            && let Err(e) = self.domains.pacer().release(&key, job.id).await
        {
            warn!(error = %e, "cannot release the profile's writer lease; it lapses with the lease");
        }
    }

    /// Loads the profile `payload` names, and fills what the job leaves out of its page
    /// options from the identity the profile showed.
    pub(super) async fn load_profile(
        &self,
        job: &RunningJob,
        payload: &mut Payload,
    ) -> Result<Option<JobProfile>, JobError> {
        let Some(page) = payload.page_mut() else {
            return Ok(None);
        };
        let Some(wanted) = page.profile.clone() else {
            return Ok(None);
        };
        let profiles = self.profiles.as_ref().ok_or_else(|| {
            JobError::new(
                ErrorKind::InvalidPayload,
                "this worker keeps no profiles (no store for them)",
            )
        })?;
        let loaded = profiles
            .load(&job.tenant_id, &wanted)
            .await
            .map_err(profile_error)?;
        take_identity(page, &loaded.state.identity);
        Ok(Some(JobProfile {
            carried: Arc::new(Carried::new(loaded.state, wanted.save)),
            version: loaded.version,
            name: wanted.name,
        }))
    }

    /// Stores what a successful saving attempt captured as the profile's next version.
    pub(super) async fn save_profile(
        &self,
        job: &RunningJob,
        profile: &JobProfile,
    ) -> Result<(), JobError> {
        let Some(profiles) = self.profiles.as_ref().filter(|_| profile.carried.saves()) else {
            return Ok(());
        };
        let Some(state) = profile.carried.take_captured() else {
            return Err(JobError::new(
                ErrorKind::Internal,
                "the job succeeded but its page's state was not captured; nothing was saved",
            ));
        };
        let version = profiles
            .save(
                &job.tenant_id,
                &profile.name,
                &state,
                (job.id, &job.hold()),
                profile.version,
            )
            .await
            .map_err(profile_error)?;
        info!(profile = %profile.name, version, "profile saved");
        Ok(())
    }
}

/// The profile of one attempt, as loaded.
pub(super) struct JobProfile {
    /// Its name.
    name: String,
    /// The version loaded (none: a saving job starting the profile).
    version: Option<u32>,
    /// What the attempt's pages start from and capture.
    pub carried: Arc<Carried>,
}

/// What the job leaves out of its identity, taken from the profile's.
fn take_identity(page: &mut PageOptions, identity: &Identity) {
    if page.user_agent.is_none() {
        page.user_agent.clone_from(&identity.user_agent);
    }
    if page.locale.is_none() {
        page.locale.clone_from(&identity.locale);
    }
    if page.timezone.is_none() {
        page.timezone.clone_from(&identity.timezone);
    }
    if page.viewport.is_none() {
        page.viewport = identity.viewport;
    }
    if page.proxy.is_none() {
        page.proxy.clone_from(&identity.proxy);
    }
}

/// A profile's failure, as the job's.
fn profile_error(error: ProfileError) -> JobError {
    let kind = match &error {
        ProfileError::TooLarge(_) => ErrorKind::TooLarge,
        ProfileError::Store(_) => ErrorKind::Internal,
        _ => ErrorKind::InvalidPayload,
    };
    let retryable = matches!(error, ProfileError::Store(_));
    JobError::new(kind, error.to_string()).retryable(retryable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::options::Viewport;

    #[test]
    fn a_job_takes_what_it_leaves_out_of_the_identity_the_profile_showed() {
        let identity = Identity {
            user_agent: Some("UA/1".into()),
            locale: Some("fr-FR".into()),
            timezone: Some("Europe/Paris".into()),
            viewport: Some(Viewport {
                width: 1280,
                height: 800,
            }),
            proxy: Some("res".into()),
        };
        let mut page = PageOptions {
            locale: Some("de-DE".into()),
            ..PageOptions::default()
        };
        take_identity(&mut page, &identity);
        assert_eq!(page.locale.as_deref(), Some("de-DE"), "the job's own wins");
        assert_eq!(page.user_agent.as_deref(), Some("UA/1"));
        assert_eq!(page.timezone.as_deref(), Some("Europe/Paris"));
        assert_eq!(page.viewport.map(|v| v.width), Some(1280));
        assert_eq!(page.proxy.as_deref(), Some("res"));
    }

    #[test]
    fn only_a_saving_job_takes_the_writer_lease() {
        let job = |payload: serde_json::Value| RunningJob {
            id: uuid::Uuid::now_v7(),
            domain: "shop.test".into(),
            url: "https://shop.test/".into(),
            job_type: crate::kinds::JobType::NavigateExtract,
            strategy: crate::job::Strategy::Vanilla,
            priority: crate::job::Priority::default(),
            payload,
            attempt: 1,
            max_attempts: 1,
            timeout_ms: 1000,
            worker_id: "w".into(),
            tenant_id: "acme".into(),
        };
        let saving = job(serde_json::json!({"profile": {"name": "shop", "save": true}}));
        assert_eq!(writer_key(&saving).as_deref(), Some("profile:acme/shop"));
        let reading = job(serde_json::json!({"profile": {"name": "shop"}}));
        assert_eq!(writer_key(&reading), None);
        assert_eq!(writer_key(&job(serde_json::json!({}))), None);
    }
}
