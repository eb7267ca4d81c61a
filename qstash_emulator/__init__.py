"""A local Upstash QStash for development and tests."""

from ._errors import (
    BadRequest,
    EmulatorError,
    Forbidden,
    NotFound,
    QuotaExceeded,
    RateLimited,
    Unauthorized,
)
from .delivery.clock import Clock, RealClock, VirtualClock
from .delivery.records import Attempt, AttemptRequest, AttemptResponse
from .delivery.signing import SignatureCheck, check_signature, sign
from .model.ids import seed_ids
from .server.config import Settings
from .server.emulator import Emulator
from .services.faults import Fault
from .services.inspection import Waiting
from .services.users import DEFAULT_USERS, User

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
