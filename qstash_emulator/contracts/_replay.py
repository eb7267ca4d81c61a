"""Replaying a contract to a consumer: each entry's exemplar is published through an emulator
with no retries, so the consumer gets it exactly as QStash delivers (signed for the URL it is
sent to, the ``Upstash-*`` headers, the forwarded headers), and the first answer says
whether the consumer still accepts it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import orjson

from ..model.headers import H
from ..model.sendable import canonical
from ._document import label

if TYPE_CHECKING:
    from ..delivery.records import Attempt

__all__ = [
    "Answer",
    "Attempts",
    "ReplayError",
    "Report",
    "Result",
    "Target",
    "replay",
    "targets",
]


class ReplayError(Exception):
    """An entry that could not be sent (the emulator refused to publish it)."""


_SHOWN_BODY = 300


@dataclass(frozen=True)
class Target:
    """One entry's exemplar, addressed to the consumer."""

    label: str
    url: str
    method: str
    headers: dict[str, str]
    body: bytes
    skipped: str | None = None

    def publish_headers(self) -> dict[str, str]:
        """The publish request's headers: the exemplar's forwarded, no retries, no delay."""
        headers = {"Upstash-Method": self.method, "Upstash-Retries": "0"}
        for name, value in self.headers.items():
            if name == H.CONTENT_TYPE:
                headers["Content-Type"] = value
            else:
                headers[f"Upstash-Forward-{canonical(name)}"] = value
        return headers

    def publish_path(self) -> str:
        return "/v2/publish/" + quote(self.url, safe=":/?&=%@+,;~!$'()*")


@dataclass(frozen=True)
class Answer:
    """The consumer's first answer to a delivery: a status and body, or a network error."""

    status: int | None
    body: bytes = b""
    error: str | None = None


@dataclass(frozen=True)
class Result:
    target: Target
    answer: Answer | None

    @property
    def accepted(self) -> bool:
        answer = self.answer
        return answer is not None and answer.status is not None and 200 <= answer.status < 300

    def line(self) -> str:
        target, answer = self.target, self.answer
        if target.skipped is not None or answer is None:
            return f"skipped   {target.label}: {target.skipped}"
        word = "accepted" if self.accepted else "refused "
        if answer.status is None:
            said = f"no answer: {answer.error}"
        else:
            text = answer.body.decode("utf-8", "replace").strip()
            cut = text[:_SHOWN_BODY] + ("..." if len(text) > _SHOWN_BODY else "")
            said = f"{answer.status}" + (f" {cut}" if cut else "")
        return f"{word}  {target.label} -> {target.method} {target.url}: {said}"


@dataclass
class Report:
    """What the consumer said to each entry; ``str()`` is one line per entry."""

    results: list[Result] = field(default_factory=list)

    @property
    def refused(self) -> list[Result]:
        return [r for r in self.results if r.target.skipped is None and not r.accepted]

    @property
    def accepted(self) -> bool:
        """Every entry replayed was accepted (a 2xx)."""
        return not self.refused

    def __str__(self) -> str:
        sent = [r for r in self.results if r.target.skipped is None]
        summary = (
            f"{len(sent)} replayed: {len(sent) - len(self.refused)} accepted, "
            f"{len(self.refused)} refused"
        )
        skipped = len(self.results) - len(sent)
        if skipped:
            summary += f", {skipped} skipped"
        return "\n".join([*(r.line() for r in self.results), summary])

    def check(self) -> None:
        """Raise ``AssertionError`` listing what was refused."""
        __tracebackhide__ = True
        if not self.accepted:
            raise AssertionError(f"the consumer refused what producers send:\n{self}")


def rebase(url: str, to: str | None) -> str:
    """``url`` sent to ``to`` instead: its origin replaced, ``to``'s path put in front."""
    if not to:
        return url
    parts, base = urlsplit(url), urlsplit(to)
    rest = url[len(f"{parts.scheme}://{parts.netloc}") :] or "/"
    return f"{base.scheme}://{base.netloc}{base.path.rstrip('/')}{rest}"


def targets(
    document: dict[str, Any], to: str | None = None, only: str | None = None
) -> list[Target]:
    """Each entry of ``document`` whose destination starts with ``only``, addressed to ``to``
    (an origin such as ``http://127.0.0.1:3000``; by default the exemplar's own URL)."""
    found = []
    for entry in document["entries"]:
        if only and not entry["destination"].startswith(only):
            continue
        exemplar = entry["exemplar"]
        body = exemplar.get("body")
        data = (
            b""
            if body is None
            else body.encode()
            if isinstance(body, str) and (entry.get("body") or {}).get("format") != "json"
            else orjson.dumps(body)
        )
        skipped = None
        url = exemplar["url"]
        if entry["kind"] == "workflow":
            skipped = "a workflow run is started by its SDK, not replayed"
        elif not url.startswith(("http://", "https://")):
            skipped = "sent to a URL group: replay its endpoints' entries"
        elif "{port}" in url and not to:
            skipped = "recorded on a local port that changes every run: give the consumer's URL"
        found.append(
            Target(
                label(entry),
                rebase(url, to) if skipped is None else url,
                entry["method"],
                dict(exemplar.get("headers") or {}),
                data,
                skipped,
            )
        )
    return found


def replay(
    found: list[Target],
    publish: Callable[[Target], str],
    wait: Callable[[str], Answer],
) -> Report:
    """Publish each target (``publish`` returns the message id) and collect the consumer's
    first answer to it (``wait``)."""
    report = Report()
    for target in found:
        if target.skipped is not None:
            report.results.append(Result(target, None))
            continue
        try:
            message_id = publish(target)
        except ReplayError as exc:
            report.results.append(Result(target, Answer(None, error=str(exc))))
            continue
        report.results.append(Result(target, wait(message_id)))
    return report


class Attempts:
    """Delivery attempts by message id, for ``wait``: an emulator listener (``on_attempt``)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._answers: dict[str, Answer] = {}

    def __call__(self, attempt: Attempt) -> None:
        response = attempt.response
        answer = (
            Answer(response.status, response.body)
            if response is not None
            else Answer(None, error=attempt.error or "no answer")
        )
        with self._cond:
            self._answers.setdefault(attempt.message_id, answer)
            self._cond.notify_all()

    def wait(self, message_id: str, timeout: float) -> Answer:
        with self._cond:
            if not self._cond.wait_for(lambda: message_id in self._answers, timeout):
                return Answer(None, error=f"not delivered within {timeout:g} s")
            return self._answers[message_id]
