"""A local Upstash QStash for development and tests."""

from ._clock import Clock, RealClock, VirtualClock
from ._config import Settings
from ._emulator import Emulator
from ._errors import (
    BadRequest,
    EmulatorError,
    Forbidden,
    NotFound,
    QuotaExceeded,
    RateLimited,
    Unauthorized,
)
from ._faults import Fault
from ._inspection import Waiting
from ._random import seed_ids
from ._records import Attempt, AttemptRequest, AttemptResponse
from ._signing import SignatureCheck, check_signature, sign
from ._users import DEFAULT_USERS, User

__version__ = "0.1.0"

__all__ = [
    "Attempt",
    "AttemptRequest",
    "AttemptResponse",
    "BadRequest",
    "Clock",
    "DEFAULT_USERS",
    "Emulator",
    "EmulatorError",
    "Fault",
    "Forbidden",
    "NotFound",
    "QuotaExceeded",
    "RateLimited",
    "RealClock",
    "Settings",
    "SignatureCheck",
    "Unauthorized",
    "User",
    "VirtualClock",
    "Waiting",
    "__version__",
    "check_signature",
    "seed_ids",
    "sign",
]
