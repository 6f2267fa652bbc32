-- Line audit events used to copy the whole line into `before`/`after`, activation code
-- included, so anyone who could read the audit log (or its CSV export) could install a
-- ready eSIM. Lines are now recorded without it; this removes it from events written before.
-- The one rewrite of audit rows: a secret that should never have been recorded.
-- Every tenant's events are rewritten, so this runs as system work (this transaction only).
SELECT set_config('app.system', 'on', true);
UPDATE audit_events
SET before = CASE WHEN jsonb_typeof(before) = 'object' THEN before - 'activation_code' ELSE before END,
    after = CASE WHEN jsonb_typeof(after) = 'object' THEN after - 'activation_code' ELSE after END
WHERE (jsonb_typeof(before) = 'object' AND before ? 'activation_code')
   OR (jsonb_typeof(after) = 'object' AND after ? 'activation_code');
