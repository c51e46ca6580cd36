-- Retention (issue 25). Finished jobs by state and age, with their tenant in the index so
-- the default pass skips tenants with their own ages without reading their rows.
CREATE INDEX jobs_expiry ON jobs (state, finished_at, tenant_id)
    WHERE state IN ('succeeded', 'failed', 'cancelled');

-- A tenant's own ages (seconds; NULL: the settings apply; -1: forever).
CREATE TABLE tenant_retention (
    tenant_id   text        PRIMARY KEY,
    succeeded_s bigint      CHECK (succeeded_s IS NULL OR succeeded_s >= -1),
    failed_s    bigint      CHECK (failed_s IS NULL OR failed_s >= -1),
    cancelled_s bigint      CHECK (cancelled_s IS NULL OR cancelled_s >= -1),
    updated_at  timestamptz NOT NULL
);

-- Objects whose rows are gone: written in the transaction that erases their job, deleted
-- from the artifact store after it commits, then from here. A process that stops in
-- between leaves them for the next look: no object outlives its job for long.
CREATE TABLE artifact_purges (
    job_id    uuid        NOT NULL,
    name      text        NOT NULL,
    bytes     bigint      NOT NULL,
    queued_at timestamptz NOT NULL,
    PRIMARY KEY (job_id, name)
);

-- Jobs churn: each is inserted, updated twice and (now) deleted. Vacuum the tables after a
-- small share of their rows changed, not the default 20 %, so a table of millions of rows
-- reuses its dead tuples' space instead of growing between vacuums.
ALTER TABLE jobs SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE job_events SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE idempotency_keys SET (autovacuum_vacuum_scale_factor = 0.02);

-- An erased job's idempotency record is found by its job (the foreign key's cascade needs
-- it too: without it every deleted job would scan the table).
CREATE INDEX idempotency_keys_job ON idempotency_keys (job_id);
