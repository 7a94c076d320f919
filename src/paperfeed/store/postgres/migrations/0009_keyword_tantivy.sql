-- Kept in step with the SQLite migrations, which share their numbers and names: there,
-- this step moves the keyword index from FTS5 to a tantivy index beside the database.
-- PostgreSQL keeps its weighted tsvector search (0003), so nothing changes here.
SELECT 1;
