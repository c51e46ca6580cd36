-- Retention (issue 25): see the PostgreSQL migration of the same name.
CREATE INDEX jobs_expiry ON jobs (state, finished_at, tenant_id)
    WHERE state IN ('succeeded', 'failed', 'cancelled');

CREATE TABLE tenant_retention (
    tenant_id   TEXT    PRIMARY KEY,
    succeeded_s INTEGER CHECK (succeeded_s IS NULL OR succeeded_s >= -1),
    failed_s    INTEGER CHECK (failed_s IS NULL OR failed_s >= -1),
    cancelled_s INTEGER CHECK (cancelled_s IS NULL OR cancelled_s >= -1),
    updated_at  INTEGER NOT NULL
);

CREATE TABLE artifact_purges (
    job_id    BLOB    NOT NULL,
    name      TEXT    NOT NULL,
    bytes     INTEGER NOT NULL,
    queued_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, name)
);

CREATE INDEX idempotency_keys_job ON idempotency_keys (job_id);
