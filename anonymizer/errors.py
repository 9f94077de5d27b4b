"""The one exception tree of the anonymizer library."""


class AnonymizerError(Exception):
    """Base class for every error the anonymizer raises."""


class PolicyError(AnonymizerError):
    """A policy that cannot be put in force; names the key, and the line when it is known."""

    def __init__(self, key: str, reason: str, line: int | None = None) -> None:
        self.key = key
        self.reason = reason
        self.line = line
        where = f"{key} (line {line})" if line is not None else key
        super().__init__(f"{where}: {reason}")


class InvalidValueError(AnonymizerError):
    """A value that cannot be transformed; the message never repeats the value itself."""


class RecordInvalid(InvalidValueError):
    """A raw record that cannot be taken; names the field and the reason, never the value."""

    def __init__(self, field: str, error: str) -> None:
        self.field = field
        self.error = error
        super().__init__(f"{field}: {error}" if field else error)
