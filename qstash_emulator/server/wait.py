"""``qstash-emulator wait``: return once a dev server is ready, for scripts (docs/ci.md#waiting)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import httpx

from ..model.durations import duration_arg

__all__ = ["NotReady", "add_parser", "run", "wait_ready"]

DEFAULT_URL = "http://127.0.0.1:8080"
PROBE = "/_emulator/health"
_NAME = "qstash-emulator"  # the probe's "emulator" field (api/health.py)
# The option a 403 names when the emulator refuses the URL's host name (api/_browser_guard.py).
_ALLOWED_HOSTS = "--allowed-hosts"


class NotReady(Exception):
    """The server did not become ready; the message says why."""


def add_parser(commands: Any) -> None:
    """The ``wait`` subcommand, on the CLI's subparsers."""
    wait = commands.add_parser(
        "wait",
        help="wait until a dev server is ready: exit 0, or 1 saying why not",
        description=f"Poll GET {PROBE} until the server answers it: exit 0 once it does, 1 "
        "with the reason when the timeout passes (connection refused, a store that does not "
        "answer) or at once when something other than the emulator answers, or the emulator "
        "refuses the URL's host name (the dev server's --allowed-hosts).",
    )
    wait.add_argument(
        "--url",
        type=_url,
        default=None,
        help=f"the server's address (default: $QSTASH_URL, else {DEFAULT_URL})",
    )
    wait.add_argument(
        "--timeout",
        type=duration_arg,
        default=30.0,
        metavar="DURATION",
        help="how long to keep trying: 30, 30s, 2m (default 30s)",
    )


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL, not {raw!r}")
    return raw.rstrip("/")


def run(args: argparse.Namespace) -> int:
    """Wait as ``args`` say; print the outcome; the exit status."""
    url = args.url or _url(os.environ.get("QSTASH_URL") or DEFAULT_URL)
    try:
        health = wait_ready(url, args.timeout)
    except NotReady as exc:
        print(f"qstash-emulator wait: {exc}", file=sys.stderr)
        return 1
    print(
        f"{_NAME} {health.get('version')} is ready at {url} "
        f"(store: {health.get('store')}, up {health.get('uptimeMs', 0) / 1_000:.1f}s)"
    )
    return 0


def wait_ready(url: str, timeout: float, interval: float = 0.05) -> dict[str, Any]:
    """The probe's answer once ``url`` is a ready emulator; NotReady if it is not by
    ``timeout`` seconds, or at once if something else answers."""
    deadline = time.monotonic() + timeout
    why = "no answer yet"
    with httpx.Client(timeout=2.0) as client:  # each probe; the last may end past the timeout
        while True:
            try:
                answer = client.get(url + PROBE)
            except httpx.TimeoutException:
                why = "no answer within 2s"
            except httpx.TransportError as exc:
                why = f"cannot connect ({exc or type(exc).__name__})"
            else:
                body = _json(answer)
                if answer.status_code == 200 and body.get("emulator") == _NAME:
                    return body
                error = str(body.get("error") or "")
                if answer.status_code == 403 and _ALLOWED_HOSTS in error:
                    raise NotReady(_foreign_name(url))
                detail = f"{answer.status_code} {error or answer.text[:200]!r}"
                if answer.status_code != 503:
                    raise NotReady(
                        f"{url} answered GET {PROBE} with {detail}: not a {_NAME} "
                        "(another server on this port, or an older version without the probe?)"
                    )
                why = f"answered {detail}"  # 503: not yet (the store, say, does not answer)
            left = deadline - time.monotonic()
            if left <= 0:
                raise NotReady(f"{url} not ready after {timeout:g}s: {why}")
            time.sleep(min(interval, left))


def _foreign_name(url: str) -> str:
    """Why an emulator that refuses the host name in ``url`` will never be ready there."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return (
        f"{url} is a {_NAME} that does not answer to the name {parsed.host!r}: start it with "
        f"{_ALLOWED_HOSTS} {parsed.host}, or wait on {parsed.scheme}://127.0.0.1{port}"
    )


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
