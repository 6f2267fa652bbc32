-- SQLite keeps usage_monthly in line order (its 0030); PostgreSQL reads a period's line
-- sums through the primary key index already.
SELECT 1;
