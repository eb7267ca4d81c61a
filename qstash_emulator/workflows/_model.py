"""A workflow run as the server keeps it: its record, and the messages recorded in it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .._json import b64
from ..model.message import Message
from ..model.options import OPTIONS, CallbackConfig, FlowControl, PublishOptions, option_fields

__all__ = ["RUN_SETTINGS", "TRIGGER_API", "UNKNOWN_SDK", "CallType", "Run", "RunState", "RunStep"]

# Marks in a run's feature list for runs the trigger API started (for an SDK that said which
# version it is, or for one that did not: it gets the run id and starts the run itself).
TRIGGER_API = "TriggerApi"
UNKNOWN_SDK = "UnknownSdk"


# The trigger's settings a run applies to its later messages: the options the table marks
# ``run``, each a Run field and a PublishOptions field of the same name, with its header.
RUN_SETTINGS: tuple[tuple[str, str], ...] = tuple((o.name, o.header) for o in OPTIONS if o.run)


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
    # The trigger's configuration, for the run's later messages that carry none of their own.
    retries: int | None = None
    retry_delay: str | None = None
    flow: FlowControl | None = None
    failure_callback: CallbackConfig | None = None
    labels: list[str] = field(default_factory=list)
    redact: list[str] = field(default_factory=list)  # Upstash-Redact-Fields, as parsed
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
    def settings_of(opts: PublishOptions) -> dict[str, Any]:
        """The settings a run started with ``opts`` keeps (keyword arguments of Run)."""
        return {name: getattr(opts, name) for name, _ in RUN_SETTINGS}

    def applied(self, opts: PublishOptions) -> PublishOptions:
        """``opts`` with the run's settings where they set none of their own."""
        unset = {
            name: getattr(self, name)
            for name, _ in RUN_SETTINGS
            if getattr(opts, name) in (None, "", [])
        }
        return dataclasses.replace(opts, **unset)

    def message_fields(self, default_retries: int, given: set[str] | None = None) -> dict[str, Any]:
        """A message's fields for the run's settings: all of them, or those whose header
        (lower case) is among ``given``."""
        named = _SETTING_HEADERS if given is None else _SETTING_HEADERS & given
        fields = option_fields(self.applied(PublishOptions()), default_retries, named)
        if fields.get("max_retries", 0) is None:
            fields["max_retries"] = default_retries
        return fields

    def override(self, opts: PublishOptions, given: set[str]) -> None:
        """Take the settings whose header (lower case) is among ``given`` from ``opts``."""
        for name, header in RUN_SETTINGS:
            if header in given:
                setattr(self, name, getattr(opts, name))

    def record(self) -> dict[str, Any]:
        """Every field that is set, for storage as JSON."""
        return {
            name: value
            for name in _FIELDS
            if (value := getattr(self, name)) is not None and value != [] and value != {}
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Run:
        return cls(**record)


_FIELDS = tuple(f.name for f in dataclasses.fields(Run))
_SETTING_HEADERS = frozenset(header for _, header in RUN_SETTINGS)


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

    @classmethod
    def of(cls, msg: Message, call_type: str) -> RunStep:
        return cls(
            msg.id,
            call_type,
            msg.body,
            msg.created_at,
            msg.header,
            msg.max_retries,
            msg.url,
            msg.method,
        )

    def raw(self) -> dict[str, Any]:
        """The delivery body's item for this message (``RawStep``)."""
        return {"messageId": self.message_id, "body": b64(self.body), "callType": self.call_type}
