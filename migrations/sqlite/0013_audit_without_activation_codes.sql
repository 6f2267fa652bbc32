-- Line audit events used to copy the whole line into `before`/`after`, activation code
-- included (see the PostgreSQL migration); this removes it from events written before.
UPDATE audit_events
SET before = CASE WHEN json_type(before, '$.activation_code') IS NOT NULL
                  THEN json_remove(before, '$.activation_code') ELSE before END,
    after = CASE WHEN json_type(after, '$.activation_code') IS NOT NULL
                 THEN json_remove(after, '$.activation_code') ELSE after END
WHERE json_type(before, '$.activation_code') IS NOT NULL
   OR json_type(after, '$.activation_code') IS NOT NULL;
