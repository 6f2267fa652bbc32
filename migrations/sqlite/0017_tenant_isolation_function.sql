-- PostgreSQL defines its row-level-security policy once in this migration (a function each
-- tenant-owned table calls); SQLite has none. Kept so both backends share migration numbers.
SELECT 1;
