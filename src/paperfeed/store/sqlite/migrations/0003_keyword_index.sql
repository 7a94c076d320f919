-- BM25 keyword index over title, abstract, authors and categories (external content: the
-- text is stored once, in `papers`).
--
-- New papers are not indexed inside the ingest transaction: they are queued in
-- `keyword_pending` and indexed in bulk right after (Store.refresh_keyword_index), which
-- keeps ingest fast. Updates and deletes of papers already indexed are applied at once
-- by the triggers, which still see the old values that FTS5 needs to remove them.
CREATE VIRTUAL TABLE papers_fts USING fts5 (
    title, abstract, authors, categories,
    content = 'papers', content_rowid = 'pk',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TABLE keyword_pending (pk INTEGER PRIMARY KEY);

CREATE TRIGGER papers_fts_insert AFTER INSERT ON papers BEGIN
    INSERT OR IGNORE INTO keyword_pending (pk) VALUES (new.pk);
END;

CREATE TRIGGER papers_fts_delete AFTER DELETE ON papers
WHEN old.pk NOT IN (SELECT pk FROM keyword_pending) BEGIN
    INSERT INTO papers_fts (papers_fts, rowid, title, abstract, authors, categories)
    VALUES ('delete', old.pk, old.title, old.abstract, old.authors, old.categories);
END;

CREATE TRIGGER papers_fts_delete_pending AFTER DELETE ON papers
WHEN old.pk IN (SELECT pk FROM keyword_pending) BEGIN
    DELETE FROM keyword_pending WHERE pk = old.pk;
END;

CREATE TRIGGER papers_fts_update AFTER UPDATE OF title, abstract, authors, categories ON papers
WHEN old.pk NOT IN (SELECT pk FROM keyword_pending) BEGIN
    INSERT INTO papers_fts (papers_fts, rowid, title, abstract, authors, categories)
    VALUES ('delete', old.pk, old.title, old.abstract, old.authors, old.categories);
    INSERT INTO papers_fts (rowid, title, abstract, authors, categories)
    VALUES (new.pk, new.title, new.abstract, new.authors, new.categories);
END;

INSERT INTO keyword_pending (pk) SELECT pk FROM papers;
