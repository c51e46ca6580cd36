//! The domain memory's tables: observations per host (trimmed to a window), decisions,
//! overrides and the learned pace per registrable domain.

use async_trait::async_trait;
use chrono::Utc;

use super::SqlStore;
use crate::job::Spent;
use crate::job::spent::DIRECT;
use crate::memory::evidence::WINDOW;
use crate::memory::{
    DecisionRecord, DomainPolicy, DomainRecord, DomainSpend, DomainSummary, MemoryIndex,
    Observation, Seed, Subject, registrable,
};
use crate::persist::Cause;
use crate::store::StoreError;
use crate::store::driver::{Cells, Column, Driver, Row};

/// Observations kept per host beyond which the oldest go (evidence that old weighs nothing).
const KEPT_PER_HOST: i64 = 2 * WINDOW as i64;
/// Decisions kept per domain.
const KEPT_DECISIONS: i64 = 50;

fn observation(row: Row) -> Result<Observation, StoreError> {
    let mut cells = Cells::of(row);
    let host = cells.text()?;
    let corrupt =
        |what: String| StoreError::Corrupt(format!("observation of {host}: {what}").into());
    Ok(Observation {
        job_id: cells.uuid()?,
        rung: cells.text()?.parse().map_err(|e| corrupt(format!("{e}")))?,
        tier: cells.opt_text()?,
        verdict: cells.text()?.parse().map_err(|e| corrupt(format!("{e}")))?,
        latency_ms: u32::try_from(cells.int()?).unwrap_or(u32::MAX),
        at: cells.time()?,
        host,
    })
}

fn parse_policy(domain: &str, text: Option<String>) -> Result<Option<DomainPolicy>, StoreError> {
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| StoreError::Corrupt(Cause::of(format!("policy of {domain}"), e)))
    })
    .transpose()
}

impl<D: Driver> SqlStore<D> {
    /// Drops a host's observations beyond the kept window.
    async fn trim(&self, host: &str) -> Result<(), StoreError> {
        let mut sql = self.sql();
        sql.push("DELETE FROM domain_observations WHERE host = ")
            .bind(host)
            .push(" AND id < (SELECT id FROM domain_observations WHERE host = ")
            .bind(host)
            .push(" ORDER BY id DESC LIMIT 1 OFFSET ")
            .bind(KEPT_PER_HOST)
            .push(")");
        self.driver.writer().await?.execute(sql).await.map(drop)
    }
}

#[async_trait]
impl<D: Driver> MemoryIndex for SqlStore<D> {
    async fn record(&self, observations: &[Observation]) -> Result<(), StoreError> {
        if observations.is_empty() {
            return Ok(());
        }
        let mut sql = self.sql();
        sql.push(
            "INSERT INTO domain_observations \
             (host, domain, job_id, rung, proxy_tier, verdict, latency_ms, at) VALUES ",
        );
        for (i, seen) in observations.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .bind(seen.host.as_str())
                .push(", ")
                .bind(registrable(&seen.host))
                .push(", ")
                .bind(seen.job_id)
                .push(", ")
                .bind(seen.rung.as_str())
                .push(", ")
                .bind(seen.tier.clone())
                .push(", ")
                .bind(seen.verdict.as_str())
                .push(", ")
                .bind(seen.latency_ms)
                .push(", ")
                .bind(seen.at)
                .push(")");
        }
        self.driver.writer().await?.execute(sql).await?;
        // Trimming costs a statement; one job in sixteen pays it, which keeps every host
        // within a few observations of its window.
        if observations[0].job_id.as_u128().is_multiple_of(16) {
            self.trim(&observations[0].host).await?;
        }
        Ok(())
    }

    async fn recent(&self, of: Subject<'_>, limit: u32) -> Result<Vec<Observation>, StoreError> {
        let mut sql = self.sql();
        sql.push(
            "SELECT host, job_id, rung, proxy_tier, verdict, latency_ms, at \
             FROM domain_observations WHERE ",
        );
        match of {
            Subject::Host(host) => sql.push("host = ").bind(host),
            Subject::Domain(domain) => sql.push("domain = ").bind(domain),
        };
        sql.push(" ORDER BY id DESC LIMIT ").bind(limit);
        let columns = [
            Column::Text,
            Column::Uuid,
            Column::Text,
            Column::OptText,
            Column::Text,
            Column::Int,
            Column::Time,
        ];
        let rows = self.driver.reader().await?.rows(sql, &columns).await?;
        rows.into_iter().map(observation).collect()
    }

    async fn record_decision(
        &self,
        domain: &str,
        record: &DecisionRecord,
    ) -> Result<(), StoreError> {
        let mut sql = self.sql();
        sql.push("INSERT INTO domain_decisions (domain, host, job_id, decision, at) VALUES (")
            .bind(domain)
            .push(", ")
            .bind(record.host.as_str())
            .push(", ")
            .bind(record.job_id)
            .push(", ")
            .bind(serde_json::to_value(&record.decision).unwrap_or_default())
            .push(", ")
            .bind(record.at)
            .push(")");
        self.driver.writer().await?.execute(sql).await?;
        if record.job_id.as_u128().is_multiple_of(16) {
            let mut sql = self.sql();
            sql.push("DELETE FROM domain_decisions WHERE domain = ")
                .bind(domain)
                .push(" AND id < (SELECT id FROM domain_decisions WHERE domain = ")
                .bind(domain)
                .push(" ORDER BY id DESC LIMIT 1 OFFSET ")
                .bind(KEPT_DECISIONS)
                .push(")");
            self.driver.writer().await?.execute(sql).await?;
        }
        Ok(())
    }

    async fn decisions(&self, domain: &str, limit: u32) -> Result<Vec<DecisionRecord>, StoreError> {
        let mut sql = self.sql();
        sql.push("SELECT job_id, host, decision, at FROM domain_decisions WHERE domain = ")
            .bind(domain)
            .push(" ORDER BY id DESC LIMIT ")
            .bind(limit);
        let columns = [Column::Uuid, Column::Text, Column::Json, Column::Time];
        let rows = self.driver.reader().await?.rows(sql, &columns).await?;
        rows.into_iter()
            .map(|row| {
                let mut cells = Cells::of(row);
                let job_id = cells.uuid()?;
                let host = cells.text()?;
                let decision = serde_json::from_value(cells.json()?).map_err(|e| {
                    StoreError::Corrupt(Cause::of(format!("decision for job {job_id}"), e))
                })?;
                Ok(DecisionRecord {
                    job_id,
                    host,
                    decision,
                    at: cells.time()?,
                })
            })
            .collect()
    }

    async fn domain_records(&self) -> Result<Vec<(String, DomainRecord)>, StoreError> {
        let mut sql = self.sql();
        sql.push("SELECT domain, policy, learned_milli, backoff_until_ms FROM domain_policies");
        let columns = [Column::Text, Column::OptText, Column::Int, Column::Int];
        let rows = self.driver.reader().await?.rows(sql, &columns).await?;
        rows.into_iter()
            .map(|row| {
                let mut cells = Cells::of(row);
                let domain = cells.text()?;
                let policy = parse_policy(&domain, cells.opt_text()?)?;
                let seed = Seed {
                    learned_milli: cells.int()?,
                    backoff_until_ms: cells.int()?,
                };
                Ok((domain, DomainRecord { policy, seed }))
            })
            .collect()
    }

    async fn domain_record(&self, domain: &str) -> Result<Option<DomainRecord>, StoreError> {
        let mut sql = self.sql();
        sql.push(
            "SELECT policy, learned_milli, backoff_until_ms FROM domain_policies WHERE domain = ",
        )
        .bind(domain);
        let columns = [Column::OptText, Column::Int, Column::Int];
        let rows = self.driver.reader().await?.rows(sql, &columns).await?;
        rows.into_iter()
            .next()
            .map(|row| {
                let mut cells = Cells::of(row);
                Ok(DomainRecord {
                    policy: parse_policy(domain, cells.opt_text()?)?,
                    seed: Seed {
                        learned_milli: cells.int()?,
                        backoff_until_ms: cells.int()?,
                    },
                })
            })
            .transpose()
    }

    async fn set_policy(&self, domain: &str, policy: &DomainPolicy) -> Result<(), StoreError> {
        let text = serde_json::to_string(policy)
            .map_err(|e| StoreError::Corrupt(Cause::of(format!("policy of {domain}"), e)))?;
        let mut sql = self.sql();
        sql.push("INSERT INTO domain_policies (domain, policy, updated_at) VALUES (")
            .bind(domain)
            .push(", ")
            .bind(Some(text))
            .push(", ")
            .bind(Utc::now())
            .push(
                ") ON CONFLICT (domain) DO UPDATE SET policy = excluded.policy,
                 updated_at = excluded.updated_at",
            );
        self.driver.writer().await?.execute(sql).await.map(drop)
    }

    async fn clear_policy(&self, domain: &str) -> Result<bool, StoreError> {
        let mut sql = self.sql();
        sql.push("UPDATE domain_policies SET policy = NULL, updated_at = ")
            .bind(Utc::now())
            .push(" WHERE domain = ")
            .bind(domain)
            .push(" AND policy IS NOT NULL");
        Ok(self.driver.writer().await?.execute(sql).await? > 0)
    }

    async fn save_pace(&self, domain: &str, seed: Seed) -> Result<(), StoreError> {
        let mut sql = self.sql();
        sql.push(
            "INSERT INTO domain_policies (domain, learned_milli, backoff_until_ms, updated_at) VALUES (",
        )
        .bind(domain)
        .push(", ")
        .bind(seed.learned_milli)
        .push(", ")
        .bind(seed.backoff_until_ms)
        .push(", ")
        .bind(Utc::now())
        .push(
            ") ON CONFLICT (domain) DO UPDATE SET learned_milli = excluded.learned_milli,
             backoff_until_ms = excluded.backoff_until_ms, updated_at = excluded.updated_at",
        );
        self.driver.writer().await?.execute(sql).await.map(drop)
    }

    async fn add_spend(&self, domain: &str, spent: &Spent) -> Result<(), StoreError> {
        let browser_ms = i64::try_from(spent.browser_ms).unwrap_or(i64::MAX);
        // The attempt counts once, on its first route; an attempt that sent nothing (refused
        // before it left) counts under `direct`.
        let mut routes: Vec<(&str, u32)> = spent
            .requests
            .iter()
            .map(|(route, n)| (route.as_str(), *n))
            .collect();
        if routes.is_empty() {
            routes.push((DIRECT, 0));
        }
        let mut sql = self.sql();
        sql.push(
            "INSERT INTO domain_spend (domain, route, requests, attempts, browser_ms) VALUES ",
        );
        for (i, (route, requests)) in routes.into_iter().enumerate() {
            let (attempts, browser_ms): (i64, i64) = if i == 0 { (1, browser_ms) } else { (0, 0) };
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .bind(domain)
                .push(", ")
                .bind(route)
                .push(", ")
                .bind(requests)
                .push(", ")
                .bind(attempts)
                .push(", ")
                .bind(browser_ms)
                .push(")");
        }
        sql.push(
            " ON CONFLICT (domain, route) DO UPDATE SET \
             requests = domain_spend.requests + excluded.requests, \
             attempts = domain_spend.attempts + excluded.attempts, \
             browser_ms = domain_spend.browser_ms + excluded.browser_ms",
        );
        self.driver.writer().await?.execute(sql).await.map(drop)
    }

    async fn spend(&self, domain: &str) -> Result<DomainSpend, StoreError> {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        let mut sql = self.sql();
        sql.push("SELECT route, requests, attempts, browser_ms FROM domain_spend WHERE domain = ")
            .bind(domain);
        let columns = [Column::Text, Column::Int, Column::Int, Column::Int];
        let rows = self.driver.reader().await?.rows(sql, &columns).await?;
        let mut spend = DomainSpend::default();
        for row in rows {
            let mut cells = Cells::of(row);
            let route = cells.text()?;
            let requests = count(cells.int()?);
            spend.attempts += count(cells.int()?);
            spend.browser_ms += count(cells.int()?);
            if requests > 0 {
                spend.requests.insert(route, requests);
            }
        }
        Ok(spend)
    }

    async fn domains(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DomainSummary>, StoreError> {
        let after = after.unwrap_or("");
        let mut sql = self.sql();
        sql.push(
            "SELECT domain, max(hosts), max(n), max(last_seen), max(policy) FROM (
               SELECT domain, count(DISTINCT host) AS hosts, count(*) AS n, max(at) AS last_seen,
                      NULL AS policy
               FROM domain_observations WHERE domain > ",
        )
        .bind(after)
        .push(
            " GROUP BY domain
               UNION ALL
               SELECT domain, 0, 0, NULL, policy FROM domain_policies WHERE domain > ",
        )
        .bind(after)
        .push(") AS known GROUP BY domain ORDER BY domain LIMIT ")
        .bind(limit);
        let columns = [
            Column::Text,
            Column::Int,
            Column::Int,
            Column::OptTime,
            Column::OptText,
        ];
        let rows = self.driver.reader().await?.rows(sql, &columns).await?;
        rows.into_iter()
            .map(|row| {
                let mut cells = Cells::of(row);
                let domain = cells.text()?;
                let hosts = u64::try_from(cells.int()?).unwrap_or(0);
                let observations = u64::try_from(cells.int()?).unwrap_or(0);
                let last_seen_at = cells.opt_time()?;
                let policy = parse_policy(&domain, cells.opt_text()?)?;
                Ok(DomainSummary {
                    domain,
                    hosts,
                    observations,
                    last_seen_at,
                    policy,
                })
            })
            .collect()
    }
}
