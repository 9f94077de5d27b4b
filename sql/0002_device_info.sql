-- Device information, anonymized: the device id and user id only as keyed pseudonyms, the
-- address only as its network prefix (and the geography looked up on the full address).
CREATE TABLE IF NOT EXISTS device_info
(
    tenant_id LowCardinality(String),
    time DateTime64(3, 'UTC'),
    device_pseudonym String,
    user_pseudonym String,
    manufacturer LowCardinality(String),
    model LowCardinality(String),
    os LowCardinality(String),
    os_version LowCardinality(String),
    app_version LowCardinality(String),
    screen LowCardinality(String),
    locale LowCardinality(String),
    ip_prefix String,
    ip_version UInt8,
    geo_country LowCardinality(String),
    geo_region LowCardinality(String),
    geo_city LowCardinality(String),
    browser_family LowCardinality(String),
    browser_major LowCardinality(String),
    is_bot Bool,
    policy_version UInt32,
    key_epoch LowCardinality(String),
    retention_days UInt16
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (tenant_id, toDate(time), manufacturer, model, time)
TTL toDateTime(time) + toIntervalDay(retention_days)
SETTINGS non_replicated_deduplication_window = 10000;
