-- Doorbell states and the scheduler's leadership lease (see the PostgreSQL migration).
ALTER TABLE jobs ADD COLUMN doorbell TEXT NOT NULL DEFAULT 'needed'
    CHECK (doorbell IN ('needed', 'ringing', 'rung'));
UPDATE jobs SET doorbell = 'rung' WHERE rung_at IS NOT NULL;

DROP INDEX jobs_unrung_run_at;
CREATE INDEX jobs_doorbell_needed ON jobs (run_at) WHERE state = 'queued' AND doorbell = 'needed';
CREATE INDEX jobs_doorbell_ringing ON jobs (rung_at) WHERE state = 'queued' AND doorbell = 'ringing';

CREATE TABLE leaders (
    name         TEXT    PRIMARY KEY NOT NULL,
    holder       TEXT    NOT NULL,
    term         INTEGER NOT NULL,
    lease_until  INTEGER NOT NULL
);
