"""Delivery records: every attempt as the destination saw it, what it answered, what came next."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlsplit

import orjson

from qstash_emulator.testing import (
    Attempt,
    AttemptRequest,
    AttemptResponse,
    Kind,
    Outcome,
    SignatureCheck,
    check_signature,
    format_ms,
)

__all__ = ["Delivery"]


class Delivery:
    """One delivery attempt: the request, the response or network error, and the retry decision.

    ``url`` is the URL that was published (and signed as ``sub``); ``destination_url`` is where
    the request went after rewriting (a local server standing in for the public URL).
    """

    __slots__ = ("__dict__", "attempt", "destination_url", "keys")

    def __init__(self, attempt: Attempt, destination_url: str, keys: tuple[str, str]) -> None:
        self.attempt = attempt
        self.destination_url = destination_url
        self.keys = keys

    # The request ------------------------------------------------------------------------------

    @property
    def message_id(self) -> str:
        return self.attempt.message_id

    @property
    def kind(self) -> Kind:
        """ "message", "callback" or "failure_callback"."""
        return self.attempt.kind

    @property
    def retried(self) -> int:
        """How many attempts came before this one (the ``Upstash-Retried`` header)."""
        return self.attempt.retried

    @property
    def number(self) -> int:
        """1 for the first attempt of a message, 2 for its first retry, ..."""
        return self.attempt.retried + 1

    @property
    def method(self) -> str:
        return self.attempt.request.method

    @property
    def url(self) -> str:
        return self.attempt.request.url

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    @property
    def headers(self) -> dict[str, str]:
        return self.attempt.request.headers

    def header(self, name: str) -> str | None:
        """A request header, by case-insensitive name."""
        return self.attempt.request.header(name)

    @property
    def body(self) -> bytes:
        """The request body as sent, ``bytes`` (empty once dropped: see ``body_dropped``);
        ``text`` decodes it, ``json()`` parses it."""
        return self.attempt.request.body

    @property
    def body_dropped(self) -> bool:
        """Whether the body was dropped to stay within the server's body budget."""
        return self.attempt.request.body_dropped

    @property
    def text(self) -> str:
        """The request body as ``str`` (UTF-8)."""
        return self.attempt.request.text

    def json(self) -> Any:
        """The request body parsed from JSON."""
        return orjson.loads(self.body)

    # What happened ----------------------------------------------------------------------------

    @property
    def response(self) -> AttemptResponse | None:
        return self.attempt.response

    @property
    def status(self) -> int | None:
        """The destination's status, or None when there was no response (see ``error``)."""
        return self.attempt.status

    @property
    def error(self) -> str | None:
        """Why there was no response: refused, timed out, reset."""
        return self.attempt.error

    @property
    def outcome(self) -> Outcome:
        """ "delivered", "retry" or "failed" (dead-lettered, or a callback given up)."""
        return self.attempt.outcome

    @property
    def delivered(self) -> bool:
        return self.attempt.outcome == "delivered"

    @property
    def reason(self) -> str:
        """Why the outcome: the status, the non-retryable header, retries used up."""
        return self.attempt.reason

    @property
    def max_retries(self) -> int:
        return self.attempt.max_retries

    @property
    def retries_left(self) -> int:
        """Retries still allowed after this attempt."""
        return max(0, self.attempt.max_retries - self.attempt.retried)

    @property
    def next_delay_ms(self) -> int | None:
        """How long until the retry, in ms; None when no retry follows."""
        return self.attempt.next_delay_ms

    @property
    def delay_source(self) -> str | None:
        """How ``next_delay_ms`` was computed: default backoff, Retry-After, or the expression."""
        return self.attempt.delay_source

    @property
    def next_attempt_at(self) -> int | None:
        """When the retry is due, on the emulator's clock (ms)."""
        delay = self.attempt.next_delay_ms
        return None if delay is None else self.attempt.finished_at + delay

    @property
    def started_at(self) -> int:
        """When the attempt started: Unix ms on the emulator's clock, like ``qstash.now_ms``."""
        return self.attempt.started_at

    @property
    def finished_at(self) -> int:
        """When the attempt ended: Unix ms on the emulator's clock."""
        return self.attempt.finished_at

    @property
    def wall_started(self) -> float:
        """When the attempt started in wall time: Unix seconds (``time.time()``)."""
        return self.attempt.wall_started

    @property
    def wall_finished(self) -> float:
        """When the attempt ended in wall time: Unix seconds."""
        return self.attempt.wall_finished

    # The signature ----------------------------------------------------------------------------

    @functools.cached_property
    def signature(self) -> SignatureCheck:
        """What the app's receiver concludes: it holds the keys set for the test and checks
        the URL the message was published to (its public URL, also when rewritten).

        ``failed_claim`` names what is wrong: "sub" (URL), "body" (hash), "exp", "key", ...
        """
        return self.check_signature()

    def check_signature(
        self, url: str | None = None, keys: tuple[str, str] | None = None
    ) -> SignatureCheck:
        """Check ``Upstash-Signature`` against ``url`` (default: the published URL)."""
        return check_signature(
            self.header("Upstash-Signature"),
            keys or self.keys,
            url or self.url,
            self.body,
            int(self.attempt.wall_started),
        )

    # Reading ----------------------------------------------------------------------------------

    def describe(self) -> str:
        """One line: which attempt went where and how it ended (an error answer's body
        starts with why: a rejected signature, the exception a scripted function raised)."""
        if self.status is not None:
            result = f"{self.status} {self.outcome}"
            if self.status >= 400 and self.response is not None and self.response.body:
                result += f" {_short(self.response.body, 80)}"
        else:
            result = f"{self.error} ({self.outcome})"
        kind = "" if self.kind == "message" else f" {self.kind.replace('_', ' ')}"
        return (
            f"{self.message_id}{kind} attempt {self.number}: {self.method} {self.url} -> {result}"
        )

    def explain(self) -> str:
        """A transcript of this attempt: request, response, decision and signature check."""
        lines = [self.describe()]
        if self.destination_url != self.url:
            lines.append(f"  delivered to {self.destination_url} (rewritten)")
        lines.append(f"  at {format_ms(self.started_at)} (emulator clock)")
        lines.append(f"  request body: {_shown(self.attempt.request)}")
        if self.response is not None:
            lines.append(f"  response body: {_shown(self.response)}")
        lines.append(f"  decision: {self.outcome} because {self.reason}")
        if self.next_delay_ms is not None:
            lines.append(
                f"  next attempt after {self.next_delay_ms} ms ({self.delay_source}), "
                f"at {format_ms(self.next_attempt_at)}; {self.retries_left} retries left"
            )
        if self.body_dropped:  # its hash is the body claim: nothing to check it against
            lines.append("  signature: not checked (the body was dropped)")
            return "\n".join(lines)
        check = self.signature
        lines.append(
            "  signature: valid"
            if check.ok
            else f"  signature: invalid {check.failed_claim}: {check.reason}"
        )
        return "\n".join(lines)

    def result(self) -> str:
        """How it ended, briefly: the status and the start of the body, or the error."""
        if self.status is None:
            return f"error {self.error}"
        body = self.response.body if self.response is not None else b""
        return f"status {self.status}" + (f" {_short(body, 80)}" if body else "")

    def __repr__(self) -> str:
        return f"<Delivery {self.describe()}>"


def _shown(part: AttemptRequest | AttemptResponse) -> str:
    return "(dropped: over the body budget)" if part.body_dropped else _short(part.body)


def _short(data: bytes, limit: int = 200) -> str:
    text = data.decode("utf-8", "replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")
