-- The scaffold's one table, read and written by /notes. Plain SQL that
-- SQLite and PostgreSQL both run: `manage makemigrations NAME` adds more.
CREATE TABLE notes (
    body TEXT NOT NULL,
    -- Unix time in milliseconds, set by the app.
    created_at BIGINT NOT NULL
);
CREATE INDEX notes_created_at ON notes (created_at);
