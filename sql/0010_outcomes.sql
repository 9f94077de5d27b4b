-- What became of the records each tenant sent, per hour of receipt (like Sentry Relay's
-- outcomes): accepted, rejected (with a reason code), filtered by consent rules, or failed to be
-- stored. Counts only, never a value: the collector adds them up in memory and inserts one row
-- per (tenant, hour, kind, outcome, reason) per flush; SummingMergeTree adds the rows up.
CREATE TABLE IF NOT EXISTS outcomes
(
    tenant_id LowCardinality(String),
    hour DateTime('UTC'),
    kind LowCardinality(String),
    outcome LowCardinality(String),
    reason LowCardinality(String),
    count UInt64
)
ENGINE = SummingMergeTree(count)
PARTITION BY toYYYYMM(hour)
ORDER BY (tenant_id, hour, kind, outcome, reason)
TTL hour + toIntervalDay(90);
