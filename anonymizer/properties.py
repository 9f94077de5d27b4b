"""Free-form event properties: keys are kept, values that look like personal data are replaced.

A property map is where senders put whatever they had at hand, so keys and values go through the
detectors (anonymizer.detectors: email, phone, card, IBAN, IP, token, UUID, long digit runs) and
what they find is replaced by a placeholder naming the class.
"""

from __future__ import annotations

from anonymizer.detectors import ALL

PropertyValue = str | int | float | bool


def redact_value(value: PropertyValue) -> str:
    """The stored form of one value: its text, with what the detectors find replaced by
    placeholders (the row builder runs the policy's detectors over the whole map too)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value) if isinstance(value, float) else str(value)
    return ALL.redact(text)[0]


def redact_properties(props: tuple[tuple[str, PropertyValue], ...]) -> dict[str, str]:
    return {key: redact_value(value) for key, value in props}
