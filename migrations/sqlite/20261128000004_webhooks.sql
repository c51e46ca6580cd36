-- Webhooks (see the PostgreSQL migration). Times are Unix milliseconds.
ALTER TABLE jobs ADD COLUMN callback_url TEXT;
ALTER TABLE jobs ADD COLUMN hook_due_at INTEGER;
ALTER TABLE jobs ADD COLUMN hook_attempt INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_hook_due ON jobs (hook_due_at) WHERE hook_due_at IS NOT NULL;
