-- BM25 keyword search that ranks exactly like the SQLite store's tantivy index
-- (paperfeed.index.keyword_terms holds the analysis and the formula both use). The
-- weighted tsvector and ts_rank of 0003 go: ts_rank scored every paper matching any
-- word (seconds per query at 100k papers) and ranked differently from SQLite.
--
-- Terms are analyzed by paperfeed (tantivy's analyzers, in Python), not by the server:
-- `Store.refresh_keyword_index` indexes the papers queued in `keyword_pending`. Every
-- insert, text change and delete of a paper queues its key (the queue no longer
-- references papers, so a deleted paper's key stays queued and its postings and
-- statistics are removed by the next refresh). Searches see the papers indexed so far,
-- as with SQLite's index.
DROP TRIGGER IF EXISTS papers_keywords_update ON papers;
DROP TRIGGER IF EXISTS papers_keywords_insert ON papers;
DROP FUNCTION IF EXISTS paperfeed_reindex_keywords();
DROP FUNCTION IF EXISTS paperfeed_queue_keywords();
DROP TABLE IF EXISTS paper_search;
DROP FUNCTION IF EXISTS paperfeed_tsv(text, text, jsonb);
DROP FUNCTION IF EXISTS paperfeed_fold(text);
DROP TEXT SEARCH CONFIGURATION IF EXISTS paperfeed;
DROP TEXT SEARCH DICTIONARY IF EXISTS paperfeed_stem;

ALTER TABLE keyword_pending DROP CONSTRAINT IF EXISTS keyword_pending_pk_fkey;

CREATE FUNCTION paperfeed_queue_keywords() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO keyword_pending (pk) VALUES (OLD.pk) ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO keyword_pending (pk) VALUES (NEW.pk) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER papers_keywords_insert AFTER INSERT ON papers
FOR EACH ROW EXECUTE FUNCTION paperfeed_queue_keywords();

CREATE TRIGGER papers_keywords_delete AFTER DELETE ON papers
FOR EACH ROW EXECUTE FUNCTION paperfeed_queue_keywords();

CREATE TRIGGER papers_keywords_update AFTER UPDATE OF title, abstract, authors, categories
ON papers FOR EACH ROW
WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.abstract IS DISTINCT FROM NEW.abstract
      OR OLD.authors IS DISTINCT FROM NEW.authors
      OR OLD.categories IS DISTINCT FROM NEW.categories)
EXECUTE FUNCTION paperfeed_queue_keywords();

-- One row per distinct term of a field family: 0 = stemmed words (the fields text,
-- title and abstract), 1 = author names, 2 = category codes. Document frequencies per
-- field, for idf.
CREATE TABLE keyword_terms (
    id          INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    family      SMALLINT NOT NULL,
    token       TEXT COLLATE "C" NOT NULL,
    df          INTEGER NOT NULL DEFAULT 0,   -- text / authors / categories
    df_title    INTEGER NOT NULL DEFAULT 0,
    df_abstract INTEGER NOT NULL DEFAULT 0,
    UNIQUE (family, token)
);

-- One row per (term, paper). For words: `tf` in the text field (title x4 + abstract +
-- authors), `tf_title`, `tf_abstract`; `fn` is the paper's fieldnorm code (0-255) of
-- the field `tf` counts in (text, authors or categories), kept here so that scoring a
-- term reads its postings and nothing else. The primary key's index includes every
-- column, so a search reads a term's postings from the index alone (an index-only scan,
-- once VACUUM has marked the pages visible: Store.refresh_keyword_index runs it after a
-- large refresh). Columns ordered for the narrowest row.
CREATE TABLE keyword_postings (
    paper_pk    BIGINT NOT NULL,
    term_id     INTEGER NOT NULL,
    tf          INTEGER NOT NULL,
    tf_abstract INTEGER NOT NULL,
    tf_title    SMALLINT NOT NULL,             -- capped at 32767 (a title is short)
    fn          SMALLINT NOT NULL,
    PRIMARY KEY (term_id, paper_pk) INCLUDE (tf, tf_abstract, tf_title, fn)
);

-- One row per indexed paper: the fieldnorm codes of title and abstract (for ti: / abs:),
-- its exact field lengths (to take them off the totals again) and its term ids (to find
-- its postings again).
CREATE TABLE keyword_docs (
    paper_pk        BIGINT PRIMARY KEY,
    fn_title        SMALLINT NOT NULL,
    fn_abstract     SMALLINT NOT NULL,
    len_text        INTEGER NOT NULL,
    len_title       INTEGER NOT NULL,
    len_abstract    INTEGER NOT NULL,
    len_authors     INTEGER NOT NULL,
    len_categories  INTEGER NOT NULL,
    terms           INTEGER[] NOT NULL
);

-- The corpus totals BM25 needs: documents, and tokens per field (for avgdl).
CREATE TABLE keyword_totals (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    docs               BIGINT NOT NULL,
    tokens_text        BIGINT NOT NULL,
    tokens_title       BIGINT NOT NULL,
    tokens_abstract    BIGINT NOT NULL,
    tokens_authors     BIGINT NOT NULL,
    tokens_categories  BIGINT NOT NULL
);
INSERT INTO keyword_totals VALUES (1, 0, 0, 0, 0, 0, 0);

-- Existing papers are indexed by the next refresh (paperfeed ingest / serve / search
-- catch the index up, with a progress bar).
DELETE FROM keyword_pending;
INSERT INTO keyword_pending (pk) SELECT pk FROM papers;
