-- A job's timeline without a foreign key to its job. Events are only ever written by the
-- statement that changes their job (inserted from the rows it changed), so they cannot
-- name a job that does not exist; the key's check locked the job's row once more for every
-- event, three times per job, about 8% of PostgreSQL's CPU per job under load (issue 14).
-- Jobs are never deleted by control-plane; whoever deletes jobs by hand deletes their
-- events too (`DELETE FROM job_events WHERE job_id = …`).
ALTER TABLE job_events DROP CONSTRAINT IF EXISTS job_events_job_id_fkey;
