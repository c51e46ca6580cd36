-- Jobs and their timelines. The jobs table is the truth; the queue only rings doorbells.

CREATE TABLE jobs (
    id            uuid PRIMARY KEY,
    tenant_id     text        NOT NULL DEFAULT 'default',
    domain        text        NOT NULL,
    url           text        NOT NULL,
    job_type      text        NOT NULL,
    strategy      text        NOT NULL,
    priority      integer     NOT NULL CHECK (priority BETWEEN 1 AND 5),
    payload       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    max_attempts  integer     NOT NULL CHECK (max_attempts >= 1),
    timeout_ms    integer     NOT NULL CHECK (timeout_ms > 0),
    state         text        NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempt       integer     NOT NULL DEFAULT 0,
    -- When the job is due. A queued job with run_at <= now() may be claimed.
    run_at        timestamptz NOT NULL DEFAULT now(),
    -- When a doorbell was last rung for the job. NULL means "ring me when due": the
    -- scheduler rings due queued jobs whose rung_at is NULL (retries, releases, failed rings).
    rung_at       timestamptz,
    lease_until   timestamptz,
    worker_id     text,
    result        jsonb,
    error         jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Queue stats: the oldest due queued job.
CREATE INDEX jobs_queued_run_at ON jobs (run_at) WHERE state = 'queued';
-- Scheduler: queued jobs that still need a doorbell, in run_at order.
CREATE INDEX jobs_unrung_run_at ON jobs (run_at) WHERE state = 'queued' AND rung_at IS NULL;
-- Reaper: running jobs whose lease ran out.
CREATE INDEX jobs_running_lease ON jobs (lease_until) WHERE state = 'running';
-- Listing, newest first (ids are time-ordered), per tenant and by filter.
CREATE INDEX jobs_tenant_id ON jobs (tenant_id, id DESC);
CREATE INDEX jobs_tenant_state_id ON jobs (tenant_id, state, id DESC);
CREATE INDEX jobs_tenant_domain_id ON jobs (tenant_id, domain, id DESC);

CREATE TABLE job_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id     uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind       text        NOT NULL,
    attempt    integer     NOT NULL,
    worker_id  text,
    detail     jsonb       NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX job_events_job ON job_events (job_id, id);
