-- Proxy pools made by admins through the API. The proxies (urls with their credentials) are
-- sealed under SECRETS_KEY (AES-256-GCM, bound to the pool's name): `sealed` names the key
-- and holds nonce, ciphertext and tag. `revision` changes with every write (not when a pool
-- is only sealed again under a new key), so each process reloads only the pools that changed.
-- `updated_at` is in milliseconds since the epoch, as every time of this database.
CREATE TABLE proxy_pools (
    name TEXT PRIMARY KEY,
    tier TEXT NOT NULL,
    rotation TEXT NOT NULL,
    max_per_proxy BIGINT NOT NULL,
    sealed TEXT NOT NULL,
    revision TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
