-- Mail-scan events. Never the full 31-digit IMb: barcode id, service type and mailer id (a
-- business) are kept, the serial is a keyed pseudonym (of mailer id + serial), the routing code
-- is cut to ZIP5 or ZIP3 by policy ([mail] routing_zip); ZIP+4 and delivery point are dropped.
CREATE TABLE IF NOT EXISTS mail_scans
(
    tenant_id LowCardinality(String),
    time DateTime64(3, 'UTC'),
    event LowCardinality(String),
    barcode_id LowCardinality(String),
    service_type LowCardinality(String),
    mailer_id LowCardinality(String),
    serial_pseudonym String,
    routing_zip LowCardinality(String),
    facility_zip LowCardinality(String),
    operation_code LowCardinality(String),
    mail_class LowCardinality(String),
    delivery_status LowCardinality(String),
    policy_version UInt32,
    key_epoch LowCardinality(String),
    retention_days UInt16
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (tenant_id, toDate(time), mailer_id, event, time)
TTL toDateTime(time) + toIntervalDay(retention_days)
SETTINGS non_replicated_deduplication_window = 10000;
