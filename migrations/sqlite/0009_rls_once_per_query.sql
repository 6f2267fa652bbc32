-- PostgreSQL's row-level security policies are rewritten in this migration; SQLite has none.
-- Kept so both backends share migration numbers.
SELECT 1;
