-- Daily rollups for analysts: AggregatingMergeTree tables fed by materialized views from the
-- anonymized tables (so they hold nothing the raw tables do not), with distinct counts as
-- uniqCombined64 sketches of pseudonyms and visitor ids, never the pseudonyms themselves.
-- Reports (GET /v1/reports/{name}) read these and apply k-anonymity. A data-subject deletion
-- rebuilds the affected days from the raw tables. Each rollup keeps its rows' retention_days.

CREATE TABLE IF NOT EXISTS access_daily
(
    tenant_id LowCardinality(String),
    day Date,
    service LowCardinality(String),
    host LowCardinality(String),
    route LowCardinality(String),
    status_class LowCardinality(String),
    browser_family LowCardinality(String),
    os_family LowCardinality(String),
    device_family LowCardinality(String),
    geo_country LowCardinality(String),
    is_bot Bool,
    retention_days UInt16,
    requests SimpleAggregateFunction(sum, UInt64),
    bytes SimpleAggregateFunction(sum, UInt64),
    visitors AggregateFunction(uniqCombined64, Nullable(String)),
    users AggregateFunction(uniqCombined64, Nullable(String)),
    duration_ms AggregateFunction(quantiles(0.5, 0.9, 0.99), Nullable(Float32))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (tenant_id, day, service, host, route, status_class, browser_family, os_family,
          device_family, geo_country, is_bot, retention_days)
TTL day + toIntervalDay(retention_days);

CREATE MATERIALIZED VIEW IF NOT EXISTS access_daily_mv TO access_daily AS
SELECT
    tenant_id, toDate(time) AS day, service, host, route,
    if(status = 0, '', concat(toString(intDiv(status, 100)), 'xx')) AS status_class,
    browser_family, os_family, device_family, geo_country, is_bot, retention_days,
    count() AS requests, sum(bytes) AS bytes,
    uniqCombined64State(nullIf(visitor_id, '')) AS visitors,
    uniqCombined64State(nullIf(user_pseudonym, '')) AS users,
    quantilesState(0.5, 0.9, 0.99)(duration_ms) AS duration_ms
FROM access_log
GROUP BY tenant_id, day, service, host, route, status_class, browser_family, os_family,
         device_family, geo_country, is_bot, retention_days;

CREATE TABLE IF NOT EXISTS events_daily
(
    tenant_id LowCardinality(String),
    day Date,
    event LowCardinality(String),
    feature LowCardinality(String),
    action LowCardinality(String),
    retention_days UInt16,
    events SimpleAggregateFunction(sum, UInt64),
    identified SimpleAggregateFunction(sum, UInt64),
    users AggregateFunction(uniqCombined64, Nullable(String))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (tenant_id, day, event, feature, action, retention_days)
TTL day + toIntervalDay(retention_days);

CREATE MATERIALIZED VIEW IF NOT EXISTS events_daily_mv TO events_daily AS
SELECT
    tenant_id, toDate(time) AS day, event, feature, action, retention_days,
    count() AS events, countIf(user_pseudonym != '') AS identified,
    uniqCombined64State(nullIf(user_pseudonym, '')) AS users
FROM usage_events
GROUP BY tenant_id, day, event, feature, action, retention_days;

CREATE TABLE IF NOT EXISTS mail_daily
(
    tenant_id LowCardinality(String),
    day Date,
    mailer_id LowCardinality(String),
    zip3 LowCardinality(String),
    event LowCardinality(String),
    retention_days UInt16,
    scans SimpleAggregateFunction(sum, UInt64),
    pieces AggregateFunction(uniqCombined64, Nullable(String))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (tenant_id, day, mailer_id, zip3, event, retention_days)
TTL day + toIntervalDay(retention_days);

CREATE MATERIALIZED VIEW IF NOT EXISTS mail_daily_mv TO mail_daily AS
SELECT
    tenant_id, toDate(time) AS day, mailer_id, left(routing_zip, 3) AS zip3, event,
    retention_days,
    count() AS scans,
    uniqCombined64State(nullIf(serial_pseudonym, '')) AS pieces
FROM mail_scans
GROUP BY tenant_id, day, mailer_id, zip3, event, retention_days;
