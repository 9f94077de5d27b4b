-- Access logs, anonymized before they get here: no full IP, no raw identifier, no raw user agent.
-- One row per request. Pseudonyms are keyed BLAKE2b-128 (hex) under the tenant's key for
-- `key_epoch`; `retention_days` is stamped per row from the tenant's plan and drives the TTL.
CREATE TABLE IF NOT EXISTS access_log
(
    tenant_id LowCardinality(String),
    time DateTime64(3, 'UTC'),
    service LowCardinality(String),
    host LowCardinality(String),
    method LowCardinality(String),
    path String,
    query String,
    status UInt16,
    bytes UInt64,
    duration_ms Nullable(Float32),
    referrer_host LowCardinality(String),
    ip_prefix String,
    ip_version UInt8,
    geo_country LowCardinality(String),
    geo_region LowCardinality(String),
    geo_city LowCardinality(String),
    browser_family LowCardinality(String),
    browser_major LowCardinality(String),
    os_family LowCardinality(String),
    os_version LowCardinality(String),
    device_family LowCardinality(String),
    device_brand LowCardinality(String),
    device_model LowCardinality(String),
    is_mobile Bool,
    is_tablet Bool,
    is_pc Bool,
    is_bot Bool,
    user_pseudonym String,
    session_pseudonym String,
    policy_version UInt32,
    key_epoch LowCardinality(String),
    retention_days UInt16
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (tenant_id, toDate(time), service, host, time)
TTL toDateTime(time) + toIntervalDay(retention_days)
SETTINGS non_replicated_deduplication_window = 10000;
