-- Live sources (paperfeed fetch). `fetch_state` remembers how far each source + query got
-- (an arXiv start offset, an OAI-PMH resumption token, the last day fetched) as a JSON
-- cursor written after each page is stored, so a killed fetch resumes where it stopped.
CREATE TABLE fetch_state (
    source     TEXT NOT NULL,                 -- arxiv | arxiv-rss | oai | hf-daily | schedule
    key        TEXT NOT NULL,                 -- the query: a category, a set, ...
    cursor     TEXT NOT NULL DEFAULT '{}',    -- JSON, shaped by the source
    updated_at TEXT NOT NULL,
    PRIMARY KEY (source, key)
) WITHOUT ROWID;

-- One row per fetch of one source + query: what came, what failed.
CREATE TABLE fetch_runs (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    query       TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL,                -- running | done | failed | interrupted | abandoned
    pages       INTEGER NOT NULL DEFAULT 0,
    requests    INTEGER NOT NULL DEFAULT 0,
    retries     INTEGER NOT NULL DEFAULT 0,
    added       INTEGER NOT NULL DEFAULT 0,
    merged      INTEGER NOT NULL DEFAULT 0,
    unchanged   INTEGER NOT NULL DEFAULT 0,
    quarantined INTEGER NOT NULL DEFAULT 0,
    appearances INTEGER NOT NULL DEFAULT 0,
    error       TEXT
);
CREATE INDEX fetch_runs_source ON fetch_runs (source, query, id);
