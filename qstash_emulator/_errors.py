"""The emulator's error model.

Every failure that reaches an API client is one of these, and each maps to one HTTP status
and a ``{"error": "..."}`` body:

    EmulatorError
    ├── BadRequest            400  a header, query parameter or body field is invalid
    │   └── PlanLimit         400  a value past the plan's limit (412 on a workflow's message)
    ├── Unauthorized          401  missing or unknown token
    ├── Forbidden             403  a write with a read-only token
    ├── NotFound              404  unknown message, DLQ entry, schedule, queue, group, key
    ├── BodyTooLarge          413  a request body past its route's limit (not read past it)
    ├── QuotaExceeded         412  a plan limit (queues, schedules, parallelism ...)
    └── RateLimited           429  daily or burst limit, with its rate-limit headers
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "BodyTooLarge",
    "EmulatorError",
    "Forbidden",
    "NotFound",
    "PlanLimit",
    "QuotaExceeded",
    "RateLimited",
    "Unauthorized",
]


class EmulatorError(Exception):
    """Base class: an API error with its HTTP status and message."""

    status_code = 500

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(EmulatorError):
    status_code = 400


class PlanLimit(BadRequest):
    """A value past the plan's limit (retries, delay, timeout, size): 400 for a message, and
    412 for a message of a workflow run, which the workflow SDKs read as a quota error."""

    def for_workflow(self) -> QuotaExceeded:
        return QuotaExceeded(self.message, self.headers)


class BodyTooLarge(EmulatorError):
    status_code = 413


class Unauthorized(EmulatorError):
    status_code = 401


class Forbidden(EmulatorError):
    status_code = 403


class NotFound(EmulatorError):
    status_code = 404


class QuotaExceeded(EmulatorError):
    status_code = 412


class RateLimited(EmulatorError):
    status_code = 429
