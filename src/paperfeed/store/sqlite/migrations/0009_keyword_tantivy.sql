-- The keyword index moves from FTS5 to a tantivy index directory beside the database
-- (store/sqlite/keyword_index.py): FTS5 scores every match of a query, which took
-- seconds at a million papers.
--
-- What stays is the queue: every write of a paper queues its key in `keyword_pending`,
-- and Store.refresh_keyword_index re-indexes the queued keys (a deleted paper's key
-- removes it from the index). The store queues every paper when it creates the index.
DROP TRIGGER IF EXISTS papers_fts_insert;
DROP TRIGGER IF EXISTS papers_fts_delete;
DROP TRIGGER IF EXISTS papers_fts_delete_pending;
DROP TRIGGER IF EXISTS papers_fts_update;
DROP TABLE IF EXISTS papers_fts;

CREATE TRIGGER keyword_queue_insert AFTER INSERT ON papers BEGIN
    INSERT OR IGNORE INTO keyword_pending (pk) VALUES (new.pk);
END;

CREATE TRIGGER keyword_queue_delete AFTER DELETE ON papers BEGIN
    INSERT OR IGNORE INTO keyword_pending (pk) VALUES (old.pk);
END;

CREATE TRIGGER keyword_queue_update
AFTER UPDATE OF title, abstract, authors, categories, published ON papers BEGIN
    INSERT OR IGNORE INTO keyword_pending (pk) VALUES (new.pk);
END;
