"""The collector's exception tree. Each HTTP-facing error carries its status and a safe message:
messages name fields and reasons, never the raw values that were sent."""

from __future__ import annotations

from anonymizer import PolicyError


class CollectorError(Exception):
    """Base class for every error the collector raises on purpose."""


class ConfigError(CollectorError):
    """A configuration file that cannot be used; names the key."""


class SinkError(CollectorError):
    """The storage engine refused or failed a statement."""


class SinkUnavailable(SinkError):
    """The storage engine cannot be reached or opened right now; retrying later may work."""


class MigrationError(SinkError):
    """A schema migration failed; the service does not start on a half-migrated schema."""


class PolicyRefused(CollectorError):
    """A policy file or body that cannot be put in force; names the file, key and line."""

    def __init__(self, where: str, error: PolicyError | str) -> None:
        self.where = where
        self.error = error
        super().__init__(f"{where}: {error}")


class HttpError(CollectorError):
    """An error answered to the client as `{"error": ..., "detail": ...}` with `status`."""

    status = 500
    error = "internal error"

    def __init__(self, detail: str = "", *, retry_after: int | None = None) -> None:
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(detail or self.error)


class BadRequest(HttpError):
    """The body cannot be decoded at all."""

    status = 400
    error = "bad request"


class Unauthorized(HttpError):
    """No API key, or one that no tenant owns."""

    status = 401
    error = "unauthorized"


class Forbidden(HttpError):
    """A known key whose scopes do not cover this endpoint."""

    status = 403
    error = "forbidden"


class NotFound(HttpError):
    """No such resource (a report name, say)."""

    status = 404
    error = "not found"


class PayloadTooLarge(HttpError):
    """The body, once decompressed, or its record count is over a limit."""

    status = 413
    error = "payload too large"


class UnprocessableEntity(HttpError):
    """A well-formed request that contradicts an earlier one (an Idempotency-Key reused)."""

    status = 422
    error = "unprocessable entity"


class UnsupportedMediaType(HttpError):
    """A content type or content encoding this endpoint does not read."""

    status = 415
    error = "unsupported media type"


class TooManyRequests(HttpError):
    """The tenant is over its record rate; retry after `Retry-After` seconds."""

    status = 429
    error = "too many requests"


class ServiceUnavailable(HttpError):
    """Storage is failing, the queue is full, or the service is stopping; retry later."""

    status = 503
    error = "service unavailable"


class RequestTimeout(HttpError):
    """The body did not arrive within `server.body_read_timeout_s`."""

    status = 408
    error = "request timeout"
