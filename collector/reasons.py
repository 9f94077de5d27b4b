"""Why a record was rejected, as a code from a fixed set: a metric label or a table column must
never carry sender-chosen text, and a rejection's message may name what it saw."""

from __future__ import annotations

from anonymizer.errors import RecordInvalid

# (substring of a rejection's message, its code); the first match wins, else "invalid_value"
_CODES: tuple[tuple[str, str], ...] = (
    ("unknown field", "unknown_field"),
    ("is required", "missing_field"),
    ("holds personal data", "personal_data"),
    ("older than the retention", "too_old"),
    ("in the future", "in_future"),
    ("longer than", "too_long"),
    ("more than", "too_many"),
    ("not valid JSON", "malformed"),
    ("must be a JSON object", "malformed"),
    ("empty line", "malformed"),
    ("log line", "unparseable_line"),
    ("not a line of", "unparseable_line"),  # collector.line_formats: none of the formats tried
    ("no record kind", "no_kind"),
)
REASONS = frozenset(code for _, code in _CODES) | {"invalid_value"}

# a request refused as a whole, after its tenant was known: its HTTP status -> reason code.
# Not here: 401/403 (no tenant to count it for), 429 (counted in records as `rate_limited`),
# 503 (not the request's fault; its records are counted `failed`).
REFUSALS: dict[int, str] = {
    400: "malformed_body",  # the body (or a parameter or header describing it) cannot be read
    408: "body_timeout",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "idempotency_conflict",
}


def reason_code(error: RecordInvalid) -> str:
    """The rejection's reason as a code of `REASONS`."""
    text = error.error
    return next((code for part, code in _CODES if part in text), "invalid_value")
