-- Each attempt writes its artifacts' objects under a key of its own (`<job>/<attempt>/<name>`),
-- so an attempt that lost its job can never overwrite the bytes of the one that took over.
-- 0 names the objects written before (`<job>/<name>`), which stay where they are.
ALTER TABLE job_artifacts ADD COLUMN attempt integer NOT NULL DEFAULT 0;

-- Queued deletions name the attempt's object too: two attempts' objects of one name may
-- wait at once.
CREATE TABLE artifact_purges_by_attempt (
    job_id    uuid        NOT NULL,
    attempt   integer     NOT NULL,
    name      text        NOT NULL,
    bytes     bigint      NOT NULL,
    queued_at timestamptz NOT NULL,
    PRIMARY KEY (job_id, attempt, name)
);
INSERT INTO artifact_purges_by_attempt (job_id, attempt, name, bytes, queued_at)
    SELECT job_id, 0, name, bytes, queued_at FROM artifact_purges;
DROP TABLE artifact_purges;
ALTER TABLE artifact_purges_by_attempt RENAME TO artifact_purges;
ALTER INDEX artifact_purges_by_attempt_pkey RENAME TO artifact_purges_pkey;
