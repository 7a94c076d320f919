-- Which papers are embedded by which model, and from which text. The vectors themselves
-- live in the vector index files beside the store (keys = paper pk); this table is how a
-- paper whose text did not change is never embedded again, and how a model change is
-- caught up in the background while the old index keeps answering.
CREATE TABLE embeddings (
    model_id     TEXT NOT NULL,
    paper_pk     INTEGER NOT NULL REFERENCES papers (pk) ON DELETE CASCADE,
    text_hash    TEXT NOT NULL,      -- hash of the embedded text (title + abstract)
    content_hash TEXT NOT NULL,      -- papers.content_hash when embedded: a cheap change test
    PRIMARY KEY (model_id, paper_pk)
) WITHOUT ROWID;
CREATE INDEX embeddings_paper ON embeddings (paper_pk);

-- Small named settings of the indexes, e.g. the model whose vectors answer searches.
CREATE TABLE index_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
