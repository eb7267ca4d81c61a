"""``qstash-emulator dev``: the standalone server, a drop-in for ``qstash-cli dev``."""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import uvicorn

from ..contracts import _command as contract_command
from ..model.durations import duration_arg
from ..store.core import Store
from ..store.lease import StoreTaken, StoreUnreachable
from .app import create_app
from .config import FLAGS, Flag, Settings, settings_from
from .connections import raise_file_limit, uvicorn_options
from .docs import docs_path
from .feed import Feed
from .masking import mask_secrets
from .runtime import Runtime
from .serving import Server, listen
from .wait import add_parser as add_wait_parser, run as run_wait

__all__ = ["main"]

# How long a stop waits for the requests and deliveries under way (docs/ci.md#stopping).
DRAIN_S = 10.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qstash-emulator",
        description="A local Upstash QStash: the v2 API, delivery with retries, DLQ, schedules.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser(
        "dev",
        help="run the development server (default 127.0.0.1:8080)",
        description="Run the QStash development server. Every option can also be set by the "
        "environment variable shown.",
    )
    for option in FLAGS:
        names = ", ".join((option.env, *option.aliases))
        kwargs: dict[str, object] = {
            "dest": option.dest,
            "default": None,
            "help": f"{option.help} [env: {names}]",
        }
        if option.kind == "bool":
            kwargs["action"] = "store_const"
            kwargs["const"] = True
        else:
            kwargs["type"] = _argument(option)
        dev.add_argument(option.flag, **kwargs)  # type: ignore[arg-type]
    dev.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="server log verbosity (default warning)",
    )
    dev.add_argument(
        "--quiet",
        action="store_true",
        help="do not print the live activity feed (one line per published, delivered, "
        "retried or dead-lettered message, callback, schedule run and queue pause)",
    )
    dev.add_argument(
        "--drain-timeout",
        type=duration_arg,
        default=DRAIN_S,
        metavar="DURATION",
        help="on SIGTERM or SIGINT, how long the requests and deliveries under way may take to "
        "finish (default 10s); exit status 0 if they did, 1 if some were dropped",
    )
    dev.add_argument(
        "--show-bodies",
        action="store_true",
        help="print message and response bodies (their first 200 characters) in the feed",
    )
    contract_command.add_record_option(dev)
    contract_command.add_replay_command(commands)
    add_wait_parser(commands)
    return parser


def _argument(option: Flag) -> Callable[[str], Any]:
    """``option.parse`` as argparse wants it: a bad value is a usage error, not a traceback."""

    def parse(raw: str) -> Any:
        try:
            return option.parse(raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def banner(settings: Settings, url: str) -> str:
    """The block the official dev server prints, ready to paste into ``.env``."""
    user = settings.users[0]
    store = (
        mask_secrets(settings.redis_url)
        if settings.redis_url
        else "in memory (lost on exit; use --redis-url to keep it)"
    )
    return "\n".join(
        [
            f"Upstash QStash development server is running at {url}",
            f"Dashboard: {url}/ (open it in a browser)",
            f"State: {store}",
            "A default user has been created for you to authorize your requests.",
            f"QSTASH_URL={url}",
            f"QSTASH_TOKEN={user.token}",
            f"QSTASH_CURRENT_SIGNING_KEY={user.current_signing_key}",
            f"QSTASH_NEXT_SIGNING_KEY={user.next_signing_key}",
            "",
            "Sample cURL request:",
            f"curl -X POST {url}/v2/publish/https://example.com "
            f'-H "Authorization: Bearer {user.token}"',
            "",
            f"Other test users: {', '.join(u.user_id for u in settings.users[1:]) or 'none'} "
            f"(their tokens: the dashboard, or 'The dev server' in {docs_path()})",
        ]
    )


def _exposed(host: str) -> bool:
    if host in ("localhost",):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "replay":
        return contract_command.run_replay(args)
    if args.command == "wait":
        return run_wait(args)
    try:
        settings = settings_from(vars(args))
        if settings.redis_url:
            Store.check_url(settings.redis_url)
    except ValueError as exc:
        print(f"qstash-emulator: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    host = settings.host
    try:
        sock = listen(host, settings.port)
    except OSError as exc:
        print(f"qstash-emulator: cannot listen on {host}:{settings.port}: {exc}", file=sys.stderr)
        return 1
    # The port actually bound: with --port 0 the system picks one.
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
    if _exposed(host):
        print(
            f"WARNING: listening on {host}: anyone who can reach this machine can use the "
            "well-known dev tokens. Bind 127.0.0.1 unless you mean it.",
            file=sys.stderr,
        )
    runtime = Runtime(settings)
    runtime.loops.port = port
    if runtime.lease is not None:
        runtime.lease.address = url
        try:
            asyncio.run(runtime.lease.acquire_at(settings.redis_url or ""))
        except (StoreTaken, StoreUnreachable, OSError) as exc:
            sock.close()
            print(f"qstash-emulator: {exc}", file=sys.stderr)
            return 1
    feed = None
    if not args.quiet:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        feed = Feed(
            sys.stdout, color=color, bodies=args.show_bodies, default_user=settings.users[0].user_id
        )
        feed.attach(runtime)
    recorder = contract_command.record(args.record_contract, runtime)
    raise_file_limit()
    config = uvicorn.Config(
        create_app(runtime),
        log_level=args.log_level,
        access_log=False,
        lifespan="on",
        **uvicorn_options(settings.max_connections, settings.header_timeout_s),
    )
    # The server owns this process: keep start-up objects out of every collection, and let
    # the many short-lived objects of each message pile up longer between young-generation
    # collections (default 700). Under wrk: ~0.66 -> ~0.55 ms of CPU a message (median of 5).
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)

    def ready() -> None:
        # Only now: the app has started and the port accepts connections (docs/ci.md).
        sys.stdout.write(banner(settings, url) + "\n")
        sys.stdout.flush()

    server = Server(config, on_ready=ready, drain=runtime.engine.drain, drain_s=args.drain_timeout)
    try:
        server.run(sockets=[sock])
    finally:
        if feed is not None:
            feed.close()
        contract_command.write_recorded(args.record_contract, recorder)
    if not server.drained:
        why = (
            "a second signal came"
            if server.force_exit
            else f"--drain-timeout {args.drain_timeout:g}s passed"
        )
        print(
            f"qstash-emulator: {why} with {runtime.engine.dropped} deliveries and "
            f"{server.requests_left} requests under way; they were dropped",
            file=sys.stderr,
        )
        return 1
    return 0
