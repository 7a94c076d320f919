-- A paper listed on a feed day of a listing (a saved page, a daily-papers export, ...).
-- feed_date is '' when the listing had no date, so that the primary key stays unique.
CREATE TABLE appearances (
    listing   TEXT NOT NULL,
    feed_date TEXT NOT NULL DEFAULT '',
    paper_pk  INTEGER NOT NULL REFERENCES papers (pk) ON DELETE CASCADE,
    rank      INTEGER,
    source    TEXT NOT NULL,
    PRIMARY KEY (listing, feed_date, paper_pk)
);
CREATE INDEX appearances_day ON appearances (feed_date, rank);
CREATE INDEX appearances_paper ON appearances (paper_pk);

-- Records that could not be ingested, with where they were and why. One row per
-- (listing, locator, reason): re-ingesting the same bad file adds nothing.
CREATE TABLE quarantine (
    id         INTEGER PRIMARY KEY,
    source     TEXT NOT NULL,
    listing    TEXT NOT NULL,
    path       TEXT NOT NULL,
    locator    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    raw        TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    UNIQUE (listing, locator, reason)
);

CREATE TABLE ingest_runs (
    id          INTEGER PRIMARY KEY,
    path        TEXT NOT NULL,
    format      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL,                 -- running | done | interrupted | failed
    added       INTEGER NOT NULL DEFAULT 0,
    merged      INTEGER NOT NULL DEFAULT 0,
    unchanged   INTEGER NOT NULL DEFAULT 0,
    quarantined INTEGER NOT NULL DEFAULT 0,
    appearances INTEGER NOT NULL DEFAULT 0
);
