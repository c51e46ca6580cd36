-- API keys: only the SHA-256 of each key's secret is kept. Revoked keys stay, for the record.
CREATE TABLE api_keys (
    id          TEXT    PRIMARY KEY,
    tenant_id   TEXT    NOT NULL,
    role        TEXT    NOT NULL CHECK (role IN ('read', 'submit', 'admin')),
    name        TEXT    NOT NULL DEFAULT '',
    secret_hash TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

-- Per-tenant quota overrides; tenants without a row get the defaults from the settings.
CREATE TABLE tenant_quotas (
    tenant_id   TEXT    PRIMARY KEY,
    max_queued  INTEGER NOT NULL CHECK (max_queued >= 0),
    submit_rate INTEGER NOT NULL CHECK (submit_rate >= 0),
    updated_at  INTEGER NOT NULL
);
