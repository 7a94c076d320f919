-- The ledger of `paperfeed migrate-store`, which copies a SQLite store into this one: per
-- source store and table, the last key copied and whether the table is complete. Each
-- batch of rows is committed together with its ledger row, so a copy killed midway
-- resumes after the last committed batch; a non-empty store without a ledger for the same
-- source is refused as a target.
CREATE TABLE store_copies (
    source     TEXT COLLATE "C" NOT NULL,     -- the source store's location
    item       TEXT COLLATE "C" NOT NULL,     -- a table name, or vectors:<model id>
    after_key  JSONB,                         -- the last key copied (NULL: none yet)
    rows       BIGINT NOT NULL DEFAULT 0,
    done       BOOLEAN NOT NULL DEFAULT false,
    started_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, item)
);
