"""A workflow run as the server keeps it: its record, and the messages recorded in it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .._json import b64
from ..model.message import Message
from ..model.options import RUN, PublishOptions, named

__all__ = ["TRIGGER_API", "UNKNOWN_SDK", "CallType", "Run", "RunState", "RunStep"]

# Marks in a run's feature list for runs the trigger API started (for an SDK that said which
# version it is, or for one that did not: it gets the run id and starts the run itself).
TRIGGER_API = "TriggerApi"
UNKNOWN_SDK = "UnknownSdk"


class RunState:
    """The states of a run, as the logs name them."""

    STARTED = "RUN_STARTED"
    SUCCESS = "RUN_SUCCESS"
    FAILED = "RUN_FAILED"
    CANCELED = "RUN_CANCELED"


class CallType:
    """How a message is recorded in its run (``callType`` of a delivery body's items)."""

    STEP = "step"
    TO_CALLBACK = "toCallback"  # a context.call to a third party
    FROM_CALLBACK = "fromCallback"  # the third party's answer, on its way to the workflow
    FAILURE_CALL = "failureCall"  # the failure function's call after the run failed


@dataclass
class Run:
    """One run of a workflow: where it runs, how its messages are configured, how it ended."""

    user: str
    run_id: str
    url: str
    created_at: int
    init_message_id: str
    state: str = RunState.STARTED
    completed_at: int | None = None
    response: str | None = None  # the body of the DELETE that ended it successfully
    # The trigger's forwarded headers (Upstash-Workflow-* left out): sent again with every
    # delivery to the workflow, since newer SDKs send them on the trigger only.
    headers: dict[str, list[str]] = field(default_factory=dict)
    # The trigger's options a run keeps (model.options.RUN: retries, labels, redaction ...),
    # for the run's later messages that carry none of their own.
    options: PublishOptions = field(default_factory=PublishOptions)
    features: list[str] = field(default_factory=list)
    caller_ip: str = ""
    # A child run started by context.invoke: the parent run and how to publish to it.
    invoker: dict[str, Any] | None = None
    dlq_id: str | None = None
    # The failure function's call, once the run failed: messageId, url, state, failStatus ...
    failure: dict[str, Any] | None = None

    @property
    def ended(self) -> bool:
        return self.state != RunState.STARTED

    @staticmethod
    def kept(opts: PublishOptions) -> PublishOptions:
        """The options a run started with ``opts`` keeps."""
        return PublishOptions().taking(opts, RUN)

    def applied(self, opts: PublishOptions) -> PublishOptions:
        """``opts`` with the run's options where they set none of their own."""
        return opts.filled(self.options, RUN)

    def message_options(
        self, msg: PublishOptions, default_retries: int, given: set[str] | None = None
    ) -> PublishOptions:
        """A message's options ``msg`` with the run's: all of them, or those whose header
        (lower case) is among ``given``."""
        names = RUN if given is None else named(given, RUN)
        return msg.taking(self.options.for_message(default_retries), names)

    def override(self, opts: PublishOptions, given: set[str]) -> None:
        """Take the options whose header (lower case) is among ``given`` from ``opts``."""
        self.options = self.options.taking(opts, named(given, RUN))

    def record(self) -> dict[str, Any]:
        """Every field that is set, for storage as JSON: its options as one sub-object."""
        record = {
            name: value
            for name in _FIELDS
            if (value := getattr(self, name)) is not None and value != [] and value != {}
        }
        record["options"] = self.options.record()
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Run:
        """The run a record holds (one an older emulator wrote too, with its options as
        fields of their own: a fixed list, which a new option never needs to join)."""
        options = record.pop("options", None)
        if options is None:
            options = {
                name: record.pop(name)
                for name in (
                    "retries",
                    "retry_delay",
                    "flow",
                    "failure_callback",
                    "labels",
                    "redact",
                )
                if name in record
            }
        return cls(**record, options=PublishOptions(**options))


_FIELDS = tuple(f.name for f in dataclasses.fields(Run) if f.name != "options")


@dataclass(frozen=True)
class RunStep:
    """One message recorded in a run, in the order the server accepted it."""

    message_id: str
    call_type: str
    body: bytes
    at: int  # when it was accepted, ms
    header: dict[str, list[str]] = field(default_factory=dict)
    retries: int = 0  # the message's retries (what the logs show)
    url: str = ""
    method: str = "POST"
    # An ended run's body was dropped from the body budget: ``body`` holds only the fields
    # the logs show (a step result without its ``out``), or nothing.
    body_dropped: bool = False

    @classmethod
    def of(cls, msg: Message, call_type: str) -> RunStep:
        return cls(
            msg.id,
            call_type,
            msg.body,
            msg.created_at,
            msg.options.header,
            msg.max_retries,
            msg.url,
            msg.options.method,
        )

    def raw(self) -> dict[str, Any]:
        """The delivery body's item for this message (``RawStep``)."""
        return {"messageId": self.message_id, "body": b64(self.body), "callType": self.call_type}
