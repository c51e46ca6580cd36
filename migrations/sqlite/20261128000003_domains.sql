-- The domain memory: every finished attempt's verdict per host (a window per host is kept),
-- the decisions `auto` made, and per registrable domain the operator's overrides and the
-- learned pace.
CREATE TABLE domain_observations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    host       TEXT    NOT NULL,
    domain     TEXT    NOT NULL,
    job_id     BLOB    NOT NULL,
    rung       TEXT    NOT NULL CHECK (rung IN ('http', 'vanilla', 'stealth')),
    verdict    TEXT    NOT NULL CHECK (verdict IN ('success', 'blocked', 'throttled', 'site_error')),
    latency_ms INTEGER NOT NULL,
    at         INTEGER NOT NULL
);
CREATE INDEX domain_observations_host ON domain_observations (host, id DESC);
CREATE INDEX domain_observations_domain ON domain_observations (domain, id DESC);

CREATE TABLE domain_decisions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    domain     TEXT    NOT NULL,
    host       TEXT    NOT NULL,
    job_id     BLOB    NOT NULL,
    decision   TEXT    NOT NULL,
    at         INTEGER NOT NULL
);
CREATE INDEX domain_decisions_domain ON domain_decisions (domain, id DESC);

CREATE TABLE domain_policies (
    domain           TEXT    PRIMARY KEY,
    policy           TEXT,
    learned_milli    INTEGER NOT NULL DEFAULT 0,
    backoff_until_ms INTEGER NOT NULL DEFAULT 0,
    updated_at       INTEGER NOT NULL
);
