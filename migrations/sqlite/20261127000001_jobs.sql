-- Jobs and their timelines, embedded edition. Timestamps are Unix milliseconds (INTEGER),
-- so they compare correctly; ids are 16-byte UUID v7 blobs, so they sort by creation time.

CREATE TABLE jobs (
    id            BLOB    PRIMARY KEY NOT NULL,
    tenant_id     TEXT    NOT NULL DEFAULT 'default',
    domain        TEXT    NOT NULL,
    url           TEXT    NOT NULL,
    job_type      TEXT    NOT NULL,
    strategy      TEXT    NOT NULL,
    priority      INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 5),
    payload       TEXT    NOT NULL DEFAULT '{}',
    max_attempts  INTEGER NOT NULL CHECK (max_attempts >= 1),
    timeout_ms    INTEGER NOT NULL CHECK (timeout_ms > 0),
    state         TEXT    NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempt       INTEGER NOT NULL DEFAULT 0,
    run_at        INTEGER NOT NULL,
    -- NULL means "ring me when due" (see the PostgreSQL migration).
    rung_at       INTEGER,
    lease_until   INTEGER,
    worker_id     TEXT,
    result        TEXT,
    error         TEXT,
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    updated_at    INTEGER NOT NULL
);

CREATE INDEX jobs_queued_run_at ON jobs (run_at) WHERE state = 'queued';
CREATE INDEX jobs_unrung_run_at ON jobs (run_at) WHERE state = 'queued' AND rung_at IS NULL;
CREATE INDEX jobs_running_lease ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_tenant_id ON jobs (tenant_id, id DESC);
CREATE INDEX jobs_tenant_state_id ON jobs (tenant_id, state, id DESC);
CREATE INDEX jobs_tenant_domain_id ON jobs (tenant_id, domain, id DESC);

CREATE TABLE job_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id     BLOB    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    attempt    INTEGER NOT NULL,
    worker_id  TEXT,
    detail     TEXT    NOT NULL DEFAULT '{}'
);

CREATE INDEX job_events_job ON job_events (job_id, id);
