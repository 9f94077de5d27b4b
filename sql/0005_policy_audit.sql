-- Every change of a tenant's effective anonymization policy: at start, on a file reload
-- (SIGHUP) and through PUT /v1/policy. `actor` is the API key id (first 12 hex digits of the
-- key's SHA-256) or `file`/`startup`; `diff` has one `setting: old -> new` line per change.
CREATE TABLE IF NOT EXISTS policy_audit
(
    time DateTime64(3, 'UTC'),
    tenant_id LowCardinality(String),
    actor String,
    source LowCardinality(String),
    old_version UInt32,
    new_version UInt32,
    diff String
)
ENGINE = MergeTree
ORDER BY (tenant_id, time);
