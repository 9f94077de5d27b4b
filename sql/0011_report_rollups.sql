-- Rollups for the analyst reports (GET /v1/reports/summary, /timeseries, /breakdown): each
-- breakdown dimension on its own (one row per day, dimension and value), so a small group of one
-- dimension is never hidden by the others it would be crossed with, and an hourly total for the
-- summary and time series. Distinct visitors are uniqCombined64 sketches, merged across days and
-- hours by the reports, never summed. `extension` (the path's file extension, lower case, at most
-- 8 letters or digits) is kept so that pageviews can leave out static assets by the policy's
-- current list (`[reports] asset_extensions`) at query time. Added beside 0008, whose rollups the
-- named reports (`/v1/reports/traffic` ...) still read.

CREATE TABLE IF NOT EXISTS access_dims_daily
(
    tenant_id LowCardinality(String),
    day Date,
    dimension LowCardinality(String),
    value String,
    is_bot Bool,
    extension LowCardinality(String),
    retention_days UInt16,
    requests SimpleAggregateFunction(sum, UInt64),
    visitors AggregateFunction(uniqCombined64, Nullable(String)),
    users AggregateFunction(uniqCombined64, Nullable(String))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (tenant_id, dimension, day, value, is_bot, extension, retention_days)
TTL day + toIntervalDay(retention_days)
-- a retried source insert is dropped here too (see 0009_rollup_dedup.sql)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS access_dims_daily_mv TO access_dims_daily AS
SELECT
    tenant_id, toDate(time) AS day,
    tupleElement(pair, 1) AS dimension, tupleElement(pair, 2) AS value,
    is_bot, lower(extract(path, '\\.([A-Za-z0-9]{1,8})$')) AS extension, retention_days,
    count() AS requests,
    uniqCombined64State(nullIf(visitor_id, '')) AS visitors,
    uniqCombined64State(nullIf(user_pseudonym, '')) AS users
FROM access_log
ARRAY JOIN [
        ('pages', toString(route)),
        ('referrers', toString(referrer_host)),
        ('utm_source', extractURLParameter(concat('?', query), 'utm_source')),
        ('utm_medium', extractURLParameter(concat('?', query), 'utm_medium')),
        ('utm_campaign', extractURLParameter(concat('?', query), 'utm_campaign')),
        ('countries', toString(geo_country)),
        ('regions', if(geo_region = '', '', concat(geo_country, '-', geo_region))),
        ('browsers', toString(browser_family)),
        ('os', toString(os_family)),
        ('devices', multiIf(is_bot, 'bot', is_tablet, 'tablet', is_mobile, 'mobile', is_pc, 'desktop', 'other')),
        ('status', if(status = 0, '', toString(status))),
        ('services', toString(service))
] AS pair
GROUP BY tenant_id, day, dimension, value, is_bot, extension, retention_days;

CREATE TABLE IF NOT EXISTS access_hourly
(
    tenant_id LowCardinality(String),
    hour DateTime('UTC'),
    is_bot Bool,
    extension LowCardinality(String),
    retention_days UInt16,
    requests SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    visitors AggregateFunction(uniqCombined64, Nullable(String)),
    users AggregateFunction(uniqCombined64, Nullable(String)),
    duration_ms AggregateFunction(quantiles(0.5, 0.95), Nullable(Float32))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (tenant_id, hour, is_bot, extension, retention_days)
TTL toDate(hour) + toIntervalDay(retention_days)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS access_hourly_mv TO access_hourly AS
SELECT
    tenant_id, toStartOfHour(time, 'UTC') AS hour,
    is_bot, lower(extract(path, '\\.([A-Za-z0-9]{1,8})$')) AS extension, retention_days,
    count() AS requests, countIf(status >= 500) AS errors,
    uniqCombined64State(nullIf(visitor_id, '')) AS visitors,
    uniqCombined64State(nullIf(user_pseudonym, '')) AS users,
    quantilesState(0.5, 0.95)(duration_ms) AS duration_ms
FROM access_log
GROUP BY tenant_id, hour, is_bot, extension, retention_days;
