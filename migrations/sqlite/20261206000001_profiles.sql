-- Profiles: a returning visitor's cookies, localStorage and identity, per tenant, carried
-- from one job to the next. Each save is a new version; the last few are kept, and the
-- state itself is sealed under SECRETS_KEY (AES-256-GCM, bound to `profile/<tenant>/<name>`,
-- so a version copied forward by a restore still opens). What is in the clear is what the
-- API shows: origins, cookie count, sizes, who saved it and when. Times are in milliseconds
-- since the epoch, as every time of this database.
CREATE TABLE profiles (
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    current_version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_used_at INTEGER,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE profile_versions (
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    sealed TEXT NOT NULL,
    origins TEXT NOT NULL,
    cookies INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    saved_by TEXT,
    restored_from INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name, version)
);

-- A profile's jobs, newest first, without reading every job of the tenant.
CREATE INDEX jobs_by_profile ON jobs (tenant_id, json_extract(payload, '$.profile.name'), created_at DESC)
    WHERE json_extract(payload, '$.profile.name') IS NOT NULL;
