-- Cookieless daily visitor id: keyed BLAKE2b of (tenant, full IP, user agent) under a salt that
-- exists for one UTC day plus a grace hour and is then destroyed, so a visitor cannot be linked
-- across days. Empty when the policy has `visitor_id = "none"` or the day's salt is gone.
ALTER TABLE access_log ADD COLUMN IF NOT EXISTS visitor_id String AFTER session_pseudonym;
ALTER TABLE device_info ADD COLUMN IF NOT EXISTS visitor_id String AFTER user_pseudonym;
