-- API keys: only the SHA-256 of each key's secret is kept. Revoked keys stay, for the record.
CREATE TABLE api_keys (
    id          text        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    role        text        NOT NULL CHECK (role IN ('read', 'submit', 'admin')),
    name        text        NOT NULL DEFAULT '',
    secret_hash text        NOT NULL,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);

-- Per-tenant quota overrides; tenants without a row get the defaults from the settings.
CREATE TABLE tenant_quotas (
    tenant_id   text        PRIMARY KEY,
    max_queued  bigint      NOT NULL CHECK (max_queued >= 0),
    submit_rate integer     NOT NULL CHECK (submit_rate >= 0),
    updated_at  timestamptz NOT NULL
);
