-- The queued jobs of each priority level in queue order, by due time and then id (replacing
-- the index by due time alone). After the queue loses its doorbells, the leader goes through
-- the backlog a level and a page at a time from the last position it reached
-- (`priority = … AND (run_at, id) > (…)`), and the look for lost doorbells of an idle level
-- reads that level only: bounded statements over a backlog of any size, whatever the
-- planner's statistics say. Queue statistics (due jobs and the oldest per level) read it too.
CREATE INDEX jobs_queued_position ON jobs (priority, run_at, id) WHERE state = 'queued';
DROP INDEX jobs_queued_run_at;
