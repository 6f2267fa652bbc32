-- SQLite only (see migrations/sqlite/0033_roaming_index_covers_countries.sql): with the
-- country in the roaming index, the new-country count reads the index alone there. On
-- PostgreSQL the wider index measured no faster (issue 14), likely because freshly ingested
-- rows are not yet all-visible and an index-only scan still visits them.
SELECT 1;
