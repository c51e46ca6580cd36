-- Files a job produced (screenshots, PDFs, page snapshots); the bytes live in the artifact store.
CREATE TABLE job_artifacts (
    job_id       BLOB    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    bytes        INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (job_id, name)
);
