-- Webhooks: a job may name a callback url; when it reaches a terminal state its delivery is
-- due (hook_due_at, set in the same statement as the state), and each delivery attempt is
-- counted (hook_attempt fences a courier whose claim lapsed). The delivery is a row, not a
-- task in memory: it survives any process.
ALTER TABLE jobs ADD COLUMN callback_url TEXT;
ALTER TABLE jobs ADD COLUMN hook_due_at TIMESTAMPTZ;
ALTER TABLE jobs ADD COLUMN hook_attempt INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_hook_due ON jobs (hook_due_at) WHERE hook_due_at IS NOT NULL;
