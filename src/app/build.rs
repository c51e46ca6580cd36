//! The one wiring of a process: from settings and backends to the dispatcher, the engine,
//! the API's state, workers, the scheduler and worker reports. `main` and the test harness
//! both build their processes here.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::StartError;
use super::connect::Backends;
use crate::api::AppState;
use crate::api::hosts::AllowedHosts;
use crate::api::scrape::Sources;
use crate::artifact::{ArtifactError, ArtifactStore};
use crate::attempt::Attempts;
use crate::auth::{AuthMode, Authenticator, KeyIndex};
use crate::config::{BrowserUse, Settings};
use crate::dispatch::Dispatcher;
use crate::engine::Engine;
use crate::engine::browser::{
    Browser, BrowserPool, INSTALL_HINT, PersonaDefaults, PoolConfig, find_chrome, sandboxed,
};
use crate::job::target::TargetPolicy;
use crate::memory::{Domains, MemoryIndex};
use crate::metrics::Metrics;
use crate::profile::Profiles;
use crate::proxy::{PoolIndex, Pools, Setup};
use crate::queue::Signals;
use crate::quota::{Ledger, Limiter, Quota, QuotaIndex};
use crate::retention::{PurgePace, Purger};
use crate::secrets::{Keyring, SecretKey};
use crate::webhook::Courier;
use crate::worker::{RetryPolicy, Scheduler, SchedulerConfig, Worker, WorkerConfig, report};

/// A process's parts, built once.
pub struct App {
    dispatcher: Dispatcher,
    ledger: Arc<dyn Ledger>,
    signals: Arc<dyn Signals>,
    artifacts: ArtifactStore,
    engine: Arc<Engine>,
    domains: Arc<Domains>,
    browser_note: Option<String>,
    metrics: Metrics,
    pools: Pools,
    profiles: Profiles,
    settings: Settings,
}

/// Builds the parts of a process on `backends`. With `work`, the process runs jobs: its
/// engine gets Chromium when one is found (unless `BROWSER=off`).
pub async fn build(settings: &Settings, backends: Backends, work: bool) -> Result<App, StartError> {
    let policy = target_policy(settings);
    let artifacts = open_artifacts(settings, &backends).await?;
    let (browser, browser_note) = if work {
        start_browser(settings, policy, &artifacts).await?
    } else {
        (None, None)
    };
    let engine = Arc::new(Engine::new(policy, browser));
    let keys = Arc::new(keyring(settings)?);
    let pools = open_pools(settings, &backends.store, keys.clone()).await?;
    let profile_index: Arc<dyn crate::profile::ProfileIndex> = backends.store.clone();
    let profiles = Profiles::new(profile_index, keys);
    let index: Arc<dyn MemoryIndex> = backends.store.clone();
    let domains = Arc::new(Domains::new(index, backends.pacer.clone()));
    Ok(App {
        domains,
        ledger: backends.ledger.clone(),
        dispatcher: Dispatcher::new(backends.store, backends.queue, backends.signals.clone()),
        signals: backends.signals,
        artifacts,
        engine,
        browser_note,
        metrics: Metrics::new(),
        pools,
        profiles,
        settings: settings.clone(),
    })
}

/// The proxy pools: the settings' and those made through the API (sealed in the store
/// under SECRETS_KEY).
async fn open_pools(
    settings: &Settings,
    store: &Arc<dyn crate::store::JobStore>,
    keys: Arc<Keyring>,
) -> Result<Pools, StartError> {
    let index: Arc<dyn PoolIndex> = store.clone();
    let setup = Setup {
        pools: settings.proxy_pools.0.clone(),
        tiers: settings.proxy_tiers.clone(),
        defaults: settings.tenant_proxies.clone(),
        stored: Some((index, keys)),
    };
    Pools::open(setup).await.map_err(StartError::Usage)
}

/// The keys of SECRETS_KEY and SECRETS_OLD_KEYS; an error names the setting, never a key.
fn keyring(settings: &Settings) -> Result<Keyring, StartError> {
    let parse = |setting: &str, text: &str| {
        SecretKey::parse(text).map_err(|why| StartError::Usage(format!("{setting}: {why}")))
    };
    let current = (settings.secrets_key.as_ref())
        .filter(|key| !key.0.trim().is_empty())
        .map(|key| parse("SECRETS_KEY", &key.0))
        .transpose()?;
    let old = (settings.secrets_old_keys.iter())
        .filter(|key| !key.0.trim().is_empty())
        .map(|key| parse("SECRETS_OLD_KEYS", &key.0))
        .collect::<Result<Vec<_>, _>>()?;
    match &current {
        Some(key) => {
            info!(key = %key.id(), old = old.len(), "secrets are sealed under SECRETS_KEY")
        }
        None => info!(
            "SECRETS_KEY is not set: proxy pools cannot be made through the API, nor profiles used"
        ),
    }
    Ok(Keyring::new(current.as_ref(), &old))
}

/// Opens the artifact store and checks that it takes a write, a read and a delete, waiting
/// up to STARTUP_TIMEOUT for a store that does not answer yet; refused credentials or a
/// missing bucket stop the start at once.
async fn open_artifacts(
    settings: &Settings,
    backends: &Backends,
) -> Result<ArtifactStore, StartError> {
    let location = settings.artifact_location();
    let artifacts = ArtifactStore::open(&location, &settings.s3_access(), backends.store.clone())?;
    super::connect::wait_for(
        "the artifact store",
        settings.startup_timeout,
        ArtifactError::is_transient,
        || artifacts.check_writable(),
    )
    .await?;
    info!(store = artifacts.name(), "artifacts are kept in {location}");
    Ok(artifacts)
}

impl App {
    /// What the API's handlers reach, for an API listening on `bind`.
    pub fn api_state(&self, bind: SocketAddr) -> AppState {
        let settings = &self.settings;
        let index: Arc<dyn KeyIndex> = self.dispatcher.store().clone();
        let quotas: Arc<dyn QuotaIndex> = self.dispatcher.store().clone();
        let defaults = Quota {
            max_queued: settings.quota_max_queued,
            submit_rate: settings.quota_submit_rate,
        };
        AppState {
            dispatcher: self.dispatcher.clone(),
            signals: self.signals.clone(),
            policy: target_policy(settings),
            artifacts: self.artifacts.clone(),
            auth: Authenticator::new(settings.auth.unwrap_or(AuthMode::Keys), index),
            allowed_hosts: AllowedHosts::new(&settings.allowed_hosts, bind),
            quotas: Limiter::new(defaults, quotas, self.ledger.clone()),
            domains: self.domains.clone(),
            watchers: crate::api::watch::Watchers::start(self.signals.as_ref()),
            holds: crate::api::holds::Holds::new(
                settings.wait_max_per_key,
                settings.wait_max_per_tenant,
            ),
            scrape: self.scrape(true),
            purger: self.purger(),
            callbacks: settings.webhook_secret.0.is_some(),
            pools: self.pools.clone(),
            profiles: self.profiles.clone(),
        }
    }

    /// The courier that delivers webhooks from this process.
    pub fn courier(&self) -> Result<Courier, StartError> {
        let settings = &self.settings;
        let policy = target_policy(settings);
        Ok(Courier::new(
            self.dispatcher.clone(),
            policy,
            settings.webhook_secret.0.clone(),
            settings.webhook_retry_base,
            self.metrics.clone(),
        ))
    }

    /// What `/metrics` reads; with `backlog`, job counts and queue levels too.
    pub fn scrape(&self, backlog: bool) -> Sources {
        Sources {
            metrics: self.metrics.clone(),
            store: self.dispatcher.store().clone(),
            queue: self.dispatcher.queue().clone(),
            pool: self.pool(),
            backlog,
            proxies: self.pools.clone(),
        }
    }

    /// Where artifacts are kept.
    pub fn artifacts(&self) -> &ArtifactStore {
        &self.artifacts
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The process's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The dispatcher.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// The browser pool, when the engine has Chromium.
    pub fn pool(&self) -> Option<BrowserPool> {
        self.engine.browser().map(|b| b.pool().clone())
    }

    /// Why there is no browser, when there is none.
    pub fn browser_note(&self) -> Option<&str> {
        self.browser_note.as_deref()
    }

    /// A worker's settings, with a fresh worker id.
    pub fn worker_config(&self) -> WorkerConfig {
        let settings = &self.settings;
        WorkerConfig {
            shutdown_grace: settings.shutdown_grace,
            retry: RetryPolicy {
                base: settings.retry_backoff_base,
                cap: settings.retry_backoff_cap,
            },
            lease: settings.job_lease,
            ..WorkerConfig::new(settings.concurrency())
        }
    }

    /// A worker with `config`.
    pub fn worker(&self, config: WorkerConfig) -> Worker {
        let attempts = Arc::new(
            Attempts::new(self.engine.clone(), self.domains.clone())
                .with_result_cap(self.settings.result_max_bytes)
                .with_pools(self.pools.clone())
                .with_profiles(self.profiles.clone()),
        );
        Worker::new(
            self.dispatcher.clone(),
            attempts,
            self.signals.clone(),
            config,
        )
        .with_metrics(&self.metrics)
    }

    /// The scheduler, leading (when it does) under the name `holder`.
    pub fn scheduler(&self, holder: &str) -> Scheduler {
        let settings = &self.settings;
        let config = SchedulerConfig::new(
            settings.scheduler_interval,
            settings.redeliver_after,
            settings.leader_lease,
        );
        Scheduler::new(self.dispatcher.clone(), holder, config).with_purger(self.purger())
    }

    /// What deletes expired and erased jobs from this process.
    pub fn purger(&self) -> Purger {
        let settings = &self.settings;
        Purger::new(
            self.dispatcher.store().clone(),
            self.artifacts.clone(),
            settings.retention(),
            PurgePace {
                batch: settings.retention_batch,
                every: settings.retention_interval,
                share: settings.retention_share,
                within: settings.leader_lease / 2,
            },
            self.metrics.clone(),
        )
    }

    /// Publishes worker `id`'s report until `shutdown`.
    pub fn reports(
        &self,
        id: &str,
        shutdown: CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static {
        report::run(
            self.signals.clone(),
            id.to_owned(),
            self.engine.clone(),
            self.browser_note.clone(),
            self.metrics.clone(),
            shutdown,
        )
    }

    /// Publishes worker `id`'s report once (so `/ready` shows the browser from the start).
    pub async fn report_now(&self, id: &str) {
        report::publish(
            self.signals.as_ref(),
            id,
            &self.engine,
            self.browser_note.as_deref(),
            &self.metrics,
        )
        .await;
    }
}

/// Where jobs and callbacks may go: ALLOW_PRIVATE_TARGETS, with RESOLVE's fixed addresses.
fn target_policy(settings: &Settings) -> TargetPolicy {
    TargetPolicy::new(settings.allow_private_targets).with_hosts(settings.resolve.clone())
}

/// Finds and starts Chromium for a worker. Without one, browser jobs fall back or fail
/// clearly; a CHROME_PATH that does not exist stops start-up.
async fn start_browser(
    settings: &Settings,
    policy: TargetPolicy,
    artifacts: &ArtifactStore,
) -> Result<(Option<Browser>, Option<String>), StartError> {
    if settings.browser == BrowserUse::Off {
        return Ok((
            None,
            Some("BROWSER=off: this worker runs no browser".to_owned()),
        ));
    }
    let executable = match find_chrome(settings.chrome_path.as_deref()) {
        Err(message) => return Err(StartError::Browser(message)),
        Ok(None) => {
            let note = format!("no Chromium found on PATH; {INSTALL_HINT}");
            warn!("{note}; navigate_extract runs over http, screenshot/pdf/script jobs fail");
            return Ok((None, Some(note)));
        }
        Ok(Some(path)) => path,
    };
    let pool = BrowserPool::new(PoolConfig {
        executable: executable.clone(),
        size: usize::from(settings.browser_pool_size),
        max_contexts: usize::from(settings.browser_max_contexts),
        recycle_pages: settings.browser_recycle_pages,
    });
    match pool.warm_up().await {
        Ok(()) => {
            let sandbox = if sandboxed() { "on" } else { "off" };
            info!(executable = %executable.display(), sandbox, "browser pool ready (Chromium's sandbox {sandbox})");
            let persona = PersonaDefaults {
                locale: settings.stealth_locale.clone(),
                timezone: settings.stealth_timezone.clone(),
            };
            let browser = Browser::new(pool, policy, artifacts.clone()).with_persona(persona);
            Ok((Some(browser), None))
        }
        Err(e) => {
            pool.shutdown().await;
            let note = format!("{e}; {INSTALL_HINT}");
            warn!("{note}; navigate_extract runs over http, screenshot/pdf/script jobs fail");
            Ok((None, Some(note)))
        }
    }
}
