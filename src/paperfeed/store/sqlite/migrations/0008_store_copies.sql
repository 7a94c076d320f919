-- The ledger of `paperfeed migrate-store` (see the PostgreSQL migration of the same
-- number): copies go from SQLite to PostgreSQL, so a SQLite store only carries the table
-- to keep both schemas numbered alike; nothing writes it here.
CREATE TABLE store_copies (
    source     TEXT NOT NULL,
    item       TEXT NOT NULL,
    after_key  TEXT,                          -- JSON
    rows       INTEGER NOT NULL DEFAULT 0,
    done       INTEGER NOT NULL DEFAULT 0,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (source, item)
) WITHOUT ROWID;
