"""Domain errors: each carries an HTTP status and a message that says what to fix.

One handler in the API turns them into responses; the CLI prints them without a traceback.
"""

from __future__ import annotations

from typing import Any


class CoffeetraceError(Exception):
    """Base of every error the project raises on purpose."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class ConfigError(CoffeetraceError):
    """A setting is wrong or points at something unreachable; names the setting."""

    code = "configuration"
    status_code = 500


class NotFound(CoffeetraceError):
    status_code = 404
    code = "not_found"


class Conflict(CoffeetraceError):
    status_code = 409
    code = "conflict"


class ValidationFailed(CoffeetraceError):
    status_code = 422
    code = "invalid"


class RuleViolation(CoffeetraceError):
    """A domain rule (mass balance, consumption, geometry...) refused the request."""

    status_code = 422
    code = "rule_violation"

    def __init__(self, rule: str, message: str, **details: Any) -> None:
        super().__init__(message, rule=rule, **details)
        self.rule = rule


class Unauthorized(CoffeetraceError):
    status_code = 401
    code = "unauthorized"


class Forbidden(CoffeetraceError):
    status_code = 403
    code = "forbidden"


class ServiceUnavailable(CoffeetraceError):
    """A server the request depends on (the MQTT broker, ...) did not do its part; nothing
    was changed. Says which and why."""

    status_code = 503
    code = "unavailable"


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message in one line for logs and replies (its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__
