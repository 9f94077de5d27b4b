-- Product-usage events. Property keys are kept; values that look like an email, phone number,
-- IP address or long digit run are stored as {email}, {phone}, {ip}, {id}. Without analytics
-- consent (or with GPC / DNT), identifiers are stripped (identifiers_stripped, consent_reason)
-- or the event is not stored at all, as the policy says.
CREATE TABLE IF NOT EXISTS usage_events
(
    tenant_id LowCardinality(String),
    time DateTime64(3, 'UTC'),
    event LowCardinality(String),
    feature LowCardinality(String),
    action LowCardinality(String),
    user_pseudonym String,
    session_pseudonym String,
    url_host LowCardinality(String),
    url_path String,
    url_query String,
    properties Map(LowCardinality(String), String),
    identifiers_stripped Bool,
    consent_reason LowCardinality(String),
    policy_version UInt32,
    key_epoch LowCardinality(String),
    retention_days UInt16
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (tenant_id, toDate(time), event, feature, time)
TTL toDateTime(time) + toIntervalDay(retention_days)
SETTINGS non_replicated_deduplication_window = 10000;
