"""``qstash-emulator replay CONTRACT --to URL``, and the dev server's ``--record-contract``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import BadRequest
from ..model.destination import validate_url
from ._document import ContractError, build, dumps, load
from ._record import Recorder
from ._replay import Attempts, ReplayError, Target, replay, targets

if TYPE_CHECKING:
    from ..server.runtime import Runtime

__all__ = ["add_record_option", "add_replay_command", "record", "run_replay", "write_recorded"]


def add_replay_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "replay",
        help="deliver a contract's exemplars to a running consumer, as QStash would",
        description="Deliver each entry's exemplar of CONTRACT to a running consumer, signed "
        "for the URL it is sent to, with the Upstash-* and forwarded headers, no retries; "
        "print whether each was accepted (a 2xx) and the answer. Exit 1 if any was refused.",
    )
    parser.add_argument("contract", metavar="CONTRACT", help="a contract file")
    parser.add_argument(
        "--to",
        metavar="URL",
        help="the consumer's address (http://127.0.0.1:3000): replaces each destination's "
        "origin; default: the destination's own URL",
    )
    parser.add_argument(
        "--only",
        metavar="PREFIX",
        help="replay only the entries whose destination starts with PREFIX",
    )
    parser.add_argument(
        "--current-signing-key",
        default=os.environ.get("QSTASH_CURRENT_SIGNING_KEY"),
        help="sign with this key (env: QSTASH_CURRENT_SIGNING_KEY; default: the dev server's)",
    )
    parser.add_argument(
        "--next-signing-key",
        default=os.environ.get("QSTASH_NEXT_SIGNING_KEY"),
        help="the next signing key (env: QSTASH_NEXT_SIGNING_KEY; default: the dev server's)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the consumer's answer to each entry (default 30)",
    )


def run_replay(args: argparse.Namespace) -> int:
    """The ``replay`` command: 0 when every entry was accepted, 1 if any was refused, 2 when
    the contract cannot be read."""
    import httpx

    from ..server.config import Settings
    from ..server.emulator import Emulator

    try:
        document = load(args.contract)
    except (OSError, ContractError) as exc:
        print(f"qstash-emulator replay: {exc}", file=sys.stderr)
        return 2
    if args.to is not None:
        try:
            validate_url(args.to, "--to")
        except BadRequest as exc:
            print(f"qstash-emulator replay: {exc}", file=sys.stderr)
            return 2
    found = targets(document, args.to, args.only)
    if not found:
        print(f"qstash-emulator replay: no entry of {args.contract} matches", file=sys.stderr)
        return 2
    settings = Settings(port=0).with_default_user(
        None, args.current_signing_key, args.next_signing_key
    )
    attempts = Attempts()
    with Emulator(settings) as emulator, httpx.Client(base_url=emulator.url) as client:
        emulator.on_attempt(attempts)
        auth = {"Authorization": f"Bearer {emulator.token}"}

        def publish(target: Target) -> str:
            answer = client.post(
                target.publish_path(),
                headers={**target.publish_headers(), **auth},
                content=target.body,
            )
            if answer.status_code >= 300:
                raise ReplayError(f"the emulator refused the publish: {answer.text}")
            return str(answer.json()["messageId"])

        report = replay(found, publish, lambda message_id: attempts.wait(message_id, args.timeout))
    print(report)
    return 0 if report.accepted else 1


def add_record_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--record-contract",
        metavar="PATH",
        help="write every distinct way clients used QStash to PATH as a contract on exit",
    )


def record(path: str | None, runtime: Runtime) -> Recorder | None:
    """A recorder on ``runtime`` when ``--record-contract`` was given."""
    if not path:
        return None
    recorder = Recorder()
    recorder.attach(runtime)
    return recorder


def write_recorded(path: str | None, recorder: Recorder | None) -> None:
    """Write what ``recorder`` heard to ``path`` (on the dev server's exit)."""
    if path and recorder is not None:
        document = build(recorder.usages())
        Path(path).write_bytes(dumps(document))
        count = len(document["entries"])
        entries = f"{count} {'entry' if count == 1 else 'entries'}"
        print(f"qstash-emulator: contract written to {path} ({entries})", file=sys.stderr)
