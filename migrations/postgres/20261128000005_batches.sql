-- A batch submitted under one idempotency key: every job's id, in order (JSON array), so a
-- retried batch answers the same jobs. NULL for a single job (job_id says it).
ALTER TABLE idempotency_keys ADD COLUMN job_ids text;
