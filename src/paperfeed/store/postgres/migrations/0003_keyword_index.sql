-- Full-text index over title (weight A), abstract (B) and authors (C). Category codes are
-- not in it: `cat:` terms are matched exactly on papers.categories.
--
-- Text is folded the way the query side folds it (paperfeed.store.postgres.keyword):
-- lower case, diacritics removed, every run of characters other than letters and digits
-- made a space, so that document and query split words identically ("text-to-image" is
-- three words on both sides). Stemming is Snowball English without a stopword list, so
-- phrases keep every word, as in SQLite's FTS5 index.
CREATE TEXT SEARCH DICTIONARY paperfeed_stem (TEMPLATE = snowball, Language = english);
CREATE TEXT SEARCH CONFIGURATION paperfeed (COPY = english);
ALTER TEXT SEARCH CONFIGURATION paperfeed ALTER MAPPING REPLACE english_stem WITH paperfeed_stem;

CREATE FUNCTION paperfeed_fold(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN regexp_replace(
    regexp_replace(
        normalize(lower(t), NFKD),
        '[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]', '', 'g'),
    '[^[:alnum:]]+', ' ', 'g');

CREATE FUNCTION paperfeed_tsv(title text, abstract text, authors jsonb) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN setweight(to_tsvector('paperfeed', paperfeed_fold(title)), 'A')
    || setweight(to_tsvector('paperfeed', paperfeed_fold(abstract)), 'B')
    || setweight(to_tsvector('paperfeed', paperfeed_fold(authors::text)), 'C');

-- New papers are not indexed inside the ingest transaction: they are queued in
-- `keyword_pending` and indexed in bulk right after (Store.refresh_keyword_index), which
-- keeps ingest fast. A paper already indexed is re-indexed at once when its text changes.
CREATE TABLE paper_search (
    paper_pk BIGINT PRIMARY KEY REFERENCES papers (pk) ON DELETE CASCADE,
    tsv      tsvector NOT NULL
);
CREATE INDEX paper_search_tsv ON paper_search USING gin (tsv);

CREATE TABLE keyword_pending (
    pk BIGINT PRIMARY KEY REFERENCES papers (pk) ON DELETE CASCADE
);

CREATE FUNCTION paperfeed_queue_keywords() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO keyword_pending (pk) VALUES (NEW.pk) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER papers_keywords_insert AFTER INSERT ON papers
FOR EACH ROW EXECUTE FUNCTION paperfeed_queue_keywords();

CREATE FUNCTION paperfeed_reindex_keywords() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE paper_search SET tsv = paperfeed_tsv(NEW.title, NEW.abstract, NEW.authors)
    WHERE paper_pk = NEW.pk;
    RETURN NULL;
END $$;

CREATE TRIGGER papers_keywords_update AFTER UPDATE OF title, abstract, authors ON papers
FOR EACH ROW
WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.abstract IS DISTINCT FROM NEW.abstract
      OR OLD.authors IS DISTINCT FROM NEW.authors)
EXECUTE FUNCTION paperfeed_reindex_keywords();

INSERT INTO keyword_pending (pk) SELECT pk FROM papers;
