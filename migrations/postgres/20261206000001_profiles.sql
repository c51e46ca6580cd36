-- Profiles: a returning visitor's cookies, localStorage and identity, per tenant, carried
-- from one job to the next. Each save is a new version; the last few are kept, and the
-- state itself is sealed under SECRETS_KEY (AES-256-GCM, bound to `profile/<tenant>/<name>`,
-- so a version copied forward by a restore still opens). What is in the clear is what the
-- API shows: origins, cookie count, sizes, who saved it and when.
CREATE TABLE profiles (
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    current_version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE profile_versions (
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    sealed TEXT NOT NULL,
    origins TEXT NOT NULL,
    cookies BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    saved_by TEXT,
    restored_from BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, name, version)
);

-- A profile's jobs, newest first, without reading every job of the tenant.
CREATE INDEX jobs_by_profile ON jobs (tenant_id, ((payload -> 'profile' ->> 'name')), created_at DESC)
    WHERE payload ? 'profile';
