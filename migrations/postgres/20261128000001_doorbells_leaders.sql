-- A queued job's doorbell is marked rung only once it is in the queue: `needed` (the scheduler rings
-- it when due), `ringing` (a process is ringing it since rung_at), `rung` (it is in the queue
-- since rung_at). A process that dies between marking and ringing leaves `ringing`, which the
-- scheduler rings again; no job is ever marked rung without a doorbell.
ALTER TABLE jobs ADD COLUMN doorbell text NOT NULL DEFAULT 'needed'
    CHECK (doorbell IN ('needed', 'ringing', 'rung'));
UPDATE jobs SET doorbell = 'rung' WHERE rung_at IS NOT NULL;

DROP INDEX jobs_unrung_run_at;
-- Scheduler: queued jobs that need a doorbell, in run_at order.
CREATE INDEX jobs_doorbell_needed ON jobs (run_at) WHERE state = 'queued' AND doorbell = 'needed';
-- Reconciler: rings that were started and never confirmed.
CREATE INDEX jobs_doorbell_ringing ON jobs (rung_at) WHERE state = 'queued' AND doorbell = 'ringing';

-- The scheduler's leadership: held while its lease runs, taken over once it expires, the
-- term rising at each takeover. Leader-only changes check the term, so a leader that lost
-- its lease (frozen, cut off) changes nothing.
CREATE TABLE leaders (
    name         text        PRIMARY KEY,
    holder       text        NOT NULL,
    term         bigint      NOT NULL,
    lease_until  timestamptz NOT NULL
);
