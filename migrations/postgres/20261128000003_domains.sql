-- The domain memory: every finished attempt's verdict per host (a window per host is kept),
-- the decisions `auto` made, and per registrable domain the operator's overrides and the
-- learned pace (the copy that re-seeds a lost Redis).
CREATE TABLE domain_observations (
    id         bigserial   PRIMARY KEY,
    host       text        NOT NULL,
    domain     text        NOT NULL,
    job_id     uuid        NOT NULL,
    rung       text        NOT NULL CHECK (rung IN ('http', 'vanilla', 'stealth')),
    verdict    text        NOT NULL CHECK (verdict IN ('success', 'blocked', 'throttled', 'site_error')),
    latency_ms integer     NOT NULL,
    at         timestamptz NOT NULL
);
CREATE INDEX domain_observations_host ON domain_observations (host, id DESC);
CREATE INDEX domain_observations_domain ON domain_observations (domain, id DESC);

CREATE TABLE domain_decisions (
    id         bigserial   PRIMARY KEY,
    domain     text        NOT NULL,
    host       text        NOT NULL,
    job_id     uuid        NOT NULL,
    decision   jsonb       NOT NULL,
    at         timestamptz NOT NULL
);
CREATE INDEX domain_decisions_domain ON domain_decisions (domain, id DESC);

CREATE TABLE domain_policies (
    domain           text        PRIMARY KEY,
    policy           text,
    learned_milli    bigint      NOT NULL DEFAULT 0,
    backoff_until_ms bigint      NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL
);
