-- Papers and how they are recognised. `pk` is internal (foreign keys use it) so that a
-- paper's public `id` can be upgraded (title hash -> DOI -> arXiv id) without rewriting
-- the rows that point at it.
CREATE TABLE papers (
    pk           INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    title        TEXT NOT NULL,
    abstract     TEXT NOT NULL DEFAULT '',
    authors      TEXT NOT NULL DEFAULT '[]',   -- JSON array of names
    categories   TEXT NOT NULL DEFAULT '[]',   -- JSON array, primary first
    arxiv_id     TEXT,
    doi          TEXT,
    published    TEXT,                          -- ISO date
    updated      TEXT,                          -- ISO date
    links        TEXT NOT NULL DEFAULT '{}',    -- JSON object: abs, pdf, code, project
    upvotes      INTEGER,
    first_seen   TEXT NOT NULL,                 -- ISO datetime, UTC
    changed_at   TEXT NOT NULL,
    content_hash TEXT NOT NULL
);
CREATE INDEX papers_published ON papers (published);

-- Every identity a paper is known by: 'arxiv:<id>', 'doi:<doi>', 'title:<hash>', and any
-- id it had before an upgrade. A title key may be shared by distinct papers.
CREATE TABLE paper_keys (
    key      TEXT NOT NULL,
    paper_pk INTEGER NOT NULL REFERENCES papers (pk) ON DELETE CASCADE,
    PRIMARY KEY (key, paper_pk)
) WITHOUT ROWID;
CREATE INDEX paper_keys_paper ON paper_keys (paper_pk);

CREATE TABLE paper_sources (
    paper_pk   INTEGER NOT NULL REFERENCES papers (pk) ON DELETE CASCADE,
    source     TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    PRIMARY KEY (paper_pk, source)
) WITHOUT ROWID;
CREATE INDEX paper_sources_source ON paper_sources (source);
