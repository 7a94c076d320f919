-- Kept in step with the PostgreSQL migrations, which share their numbers and names:
-- there, this step replaces the tsvector keyword index with BM25 postings that score like
-- the tantivy index this store already has (store/sqlite/keyword_index.py), so nothing
-- changes here.
SELECT 1;
