"""The in-process testing API: what a test harness that runs the emulator in its own process
may rely on (the pytest plugin is built on this module and ``qstash_emulator`` alone; a
unittest or behave suite can be too).

``Emulator`` is the entry point: besides what scripts use (``url``, ``token``, ``reset``,
``run_until_idle`` ...) its in-process members let a harness give each test its own user
(``create_user``, ``bind_token``, ``remove_user``, ``purge_user``), hear each delivery
(``on_attempt``) and API call (``on_api_call``), route deliveries into the app under test
(``mount``, ``rewrite``, ``add_responder``, ``keep_local``), program API faults (``faults``),
look inside (``inspector``) and drive time (``idle``, ``next_due``, a ``VirtualClock``). The
README's "The in-process testing API" lists them. Coroutine members run on the emulator's
event loop: ``emulator.call(emulator.purge_user(user_id))``.

The contract recorder and replay the plugin's ``--qstash-contract`` uses are the public
``qstash_emulator.contracts``. The names below keep their meaning across minor versions;
modules whose name starts with an underscore may change at any time.
"""

from __future__ import annotations

from .delivery.clock import Clock, RealClock, VirtualClock
from .delivery.records import Attempt, AttemptRequest, AttemptResponse
from .delivery.retry import Outcome
from .delivery.routing import Responder
from .delivery.signing import SignatureCheck, check_signature, sign
from .delivery.transport import DeliveryError, Response
from .model.durations import duration_ms
from .model.ids import seed_ids
from .model.message import Kind
from .server.config import Settings
from .server.docs import docs_path
from .server.emulator import Emulator
from .services.faults import FAULT_KINDS, Fault, FaultKind, Faults
from .services.inspection import STATES, Inspector, Waiting, WaitingState, format_ms
from .services.users import User, make_token, new_signing_key
from .workflows import RunFilter, Runs, Waits, run_log, select_runs

__all__ = [
    "FAULT_KINDS",
    "STATES",
    "Attempt",
    "AttemptRequest",
    "AttemptResponse",
    "Clock",
    "DeliveryError",
    "Emulator",
    "Fault",
    "FaultKind",
    "Faults",
    "Inspector",
    "Kind",
    "Outcome",
    "RealClock",
    "Responder",
    "Response",
    "RunFilter",
    "Runs",
    "Settings",
    "SignatureCheck",
    "User",
    "VirtualClock",
    "Waiting",
    "WaitingState",
    "Waits",
    "check_signature",
    "docs_path",
    "duration_ms",
    "format_ms",
    "make_token",
    "new_signing_key",
    "run_log",
    "seed_ids",
    "select_runs",
    "sign",
]
