"""Free-form event properties: keys are kept, values that look like personal data are replaced.

A property map is where senders put whatever they had at hand, so keys and values go through the
detectors (anonymizer.detectors: email, phone, card, IBAN, IP, token, UUID, long digit runs) and
what they find is replaced by a placeholder naming the class.
"""

from __future__ import annotations

from anonymizer.detectors import ALL

PropertyValue = str | int | float | bool


def property_text(value: PropertyValue) -> str:
    """A value as the text the map column stores (before the detectors)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def property_texts(props: tuple[tuple[str, PropertyValue], ...]) -> dict[str, str]:
    """The map as text; the row builder then runs the policy's detectors over keys and values
    (`anonymize.detect_free_text`), so `pii.action` decides: replace or reject."""
    return {key: property_text(value) for key, value in props}


def redact_value(value: PropertyValue) -> str:
    """The stored form of one value under the default detectors: its text, with what they find
    replaced in place by placeholders."""
    return ALL.redact(property_text(value))[0]


def redact_properties(props: tuple[tuple[str, PropertyValue], ...]) -> dict[str, str]:
    return {key: redact_value(value) for key, value in props}
