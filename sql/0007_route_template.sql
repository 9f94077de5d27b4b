-- Route templates, so analysts can group by route: the scrubbed path with every number, long hex
-- string and placeholder segment as `{id}` (`/orders/42/items` -> `/orders/{id}/items`).
ALTER TABLE access_log ADD COLUMN IF NOT EXISTS route LowCardinality(String) AFTER path;
ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS url_route LowCardinality(String) AFTER url_path;
