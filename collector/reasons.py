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
    ("no record kind", "no_kind"),
)
REASONS = frozenset(code for _, code in _CODES) | {"invalid_value"}


def reason_code(error: RecordInvalid) -> str:
    """The rejection's reason as a code of `REASONS`."""
    text = error.error
    return next((code for part, code in _CODES if part in text), "invalid_value")
