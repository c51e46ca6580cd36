-- Files a job produced (screenshots, PDFs, page snapshots); the bytes live in the artifact store.
CREATE TABLE job_artifacts (
    job_id       uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    content_type text        NOT NULL,
    bytes        bigint      NOT NULL,
    sha256       text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (job_id, name)
);
