"""Settings, with one table that the CLI, the environment and the docs all read."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..model.durations import duration_ms
from ..services.users import DEFAULT_USERS, User

__all__ = ["FLAGS", "QUOTAS", "Flag", "FlagKind", "Quota", "Settings"]

# How an option's text is read: as is, an integer, a duration, a byte size or a flag.
FlagKind = Literal["str", "int", "seconds", "size", "bool", "names"]


@dataclass(frozen=True)
class Quota:
    """One plan's limits (docs/behaviour.md#quotas)."""

    name: str
    max_message_size: int
    max_delay_s: int
    max_timeout_s: int
    max_queues: int
    max_queue_parallelism: int
    max_schedules: int
    max_url_groups: int
    max_endpoints_per_group: int
    max_parallelism: int
    messages_per_day: int | None
    # How long a dead letter is kept (None: until deleted), by the wall clock.
    dlq_retention_s: int | None = None


_YEAR = 365 * 86_400
QUOTAS = {
    "free": Quota("free", 1 << 20, 7 * 86_400, 15 * 60, 10, 2, 10, 1, 100, 10, 1_000, 3 * 86_400),
    "payg": Quota(
        "payg", 10 << 20, _YEAR, 2 * 3_600, 100, 10, 1_000, 100, 100, 100, None, 7 * 86_400
    ),
    "pro": Quota(
        "pro",
        50 << 20,
        10 * _YEAR,
        6 * 3_600,
        1_000,
        10,
        10_000,
        1_000,
        1_000,
        200,
        None,
        30 * 86_400,
    ),
    "unlimited": Quota(
        "unlimited",
        1 << 30,
        100 * _YEAR,
        24 * 3_600,
        10**9,
        10**6,
        10**9,
        10**9,
        10**9,
        10**6,
        None,
    ),
}


@dataclass
class Settings:
    """Everything the emulator can be told; defaults match the official dev server."""

    host: str = "127.0.0.1"
    port: int = 8080
    users: tuple[User, ...] = DEFAULT_USERS
    redis_url: str | None = None
    redis_prefix: str = "qe:"  # lets several emulators share one Redis
    quota: str = "payg"
    dedup_window_s: float = 600.0
    message_grace_s: float = 60.0
    default_retries: int = 3
    max_retries: int = 20
    max_message_size: int | None = None
    log_retention: int = 10_000
    # Bytes of bodies kept by the logs, and apart from them by the recorded attempts; the
    # oldest are dropped first (docs/behaviour.md#memory).
    body_budget: int = 256 << 20
    region: str = "EU-CENTRAL-1"
    strict_destinations: bool = False
    # Attempts in flight to one destination (scheme, host, port) and of one user; the engine
    # has at most 1,024 in all (docs/behaviour.md#delivery).
    in_flight_per_destination: int = 256
    in_flight_per_user: int = 512
    # False: every answer closes its connection, so an SDK client that is never closed
    # (qstash 3.x gives no way to) holds no idle socket to be collected unclosed later.
    keep_alive: bool = True
    # Names besides loopback and --host that the API and dashboard answer to (the Host rule).
    allowed_hosts: tuple[str, ...] = ()
    # Connections open at once, and how long a request's headers may take (server.connections).
    max_connections: int = 1_000
    header_timeout_s: float = 10.0

    @property
    def limits(self) -> Quota:
        return QUOTAS[self.quota]

    @property
    def message_size_limit(self) -> int:
        return self.max_message_size or self.limits.max_message_size

    def with_default_user(
        self, token: str | None, current_key: str | None, next_key: str | None
    ) -> Settings:
        """Override the default user's token or keys, keeping the other dev users."""
        first = self.users[0]
        changed = dataclasses.replace(
            first,
            token=token or first.token,
            current_signing_key=current_key or first.current_signing_key,
            next_signing_key=next_key or first.next_signing_key,
        )
        return dataclasses.replace(self, users=(changed, *self.users[1:]))


@dataclass(frozen=True)
class Flag:
    """A setting as the command line and the environment spell it."""

    flag: str
    env: str
    dest: str
    kind: FlagKind
    help: str
    aliases: tuple[str, ...] = ()

    def parse(self, raw: str) -> Any:
        """The value ``raw`` stands for; ValueError saying why if it is not one."""
        if self.kind == "int":
            try:
                return int(raw)
            except ValueError:
                raise ValueError(f"{raw!r} is not a whole number") from None
        if self.kind == "seconds":
            ms = duration_ms(raw)
            if ms is None:
                raise ValueError(f"{raw!r} is not a duration such as 10s, 5m or 1h30m")
            return ms / 1_000
        if self.kind == "size":
            try:
                return _parse_size(raw)
            except ValueError:
                raise ValueError(f"{raw!r} is not a size such as 512KB, 1MB or 1048576") from None
        if self.kind == "bool":
            return raw.strip().lower() in {"1", "t", "true", "yes", "on"}
        if self.kind == "names":
            return tuple(name.strip().lower() for name in raw.split(",") if name.strip())
        return raw


def _parse_size(raw: str) -> int:
    text = raw.strip().upper().removesuffix("B")
    for suffix, factor in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)):
        if text.endswith(suffix):
            return int(float(text[:-1]) * factor)
    return int(text)


FLAGS = (
    Flag(
        "--host",
        "QSTASH_EMULATOR_HOST",
        "host",
        "str",
        "interface to bind; anything but loopback exposes your tokens to the network",
    ),
    Flag(
        "--port",
        "QSTASH_EMULATOR_PORT",
        "port",
        "int",
        "API port (0 picks a free one)",
        ("QSTASH_DEV_PORT",),
    ),
    Flag(
        "--token",
        "QSTASH_EMULATOR_TOKEN",
        "token",
        "str",
        "the default user's token (default: the official dev server's)",
        ("QSTASH_TOKEN",),
    ),
    Flag(
        "--current-signing-key",
        "QSTASH_EMULATOR_CURRENT_SIGNING_KEY",
        "current_key",
        "str",
        "the default user's current signing key",
        ("QSTASH_CURRENT_SIGNING_KEY",),
    ),
    Flag(
        "--next-signing-key",
        "QSTASH_EMULATOR_NEXT_SIGNING_KEY",
        "next_key",
        "str",
        "the default user's next signing key",
        ("QSTASH_NEXT_SIGNING_KEY",),
    ),
    Flag(
        "--redis-url",
        "QSTASH_EMULATOR_REDIS_URL",
        "redis_url",
        "str",
        "keep state in this Redis (redis://host:6379/0) so it survives restarts; "
        "default: in memory, lost on exit",
    ),
    Flag(
        "--quota",
        "QSTASH_EMULATOR_QUOTA",
        "quota",
        "str",
        "plan limits to enforce: free, payg, pro or unlimited",
        ("QSTASH_DEV_QUOTA",),
    ),
    Flag(
        "--dedup-window",
        "QSTASH_EMULATOR_DEDUP_WINDOW",
        "dedup_window_s",
        "seconds",
        "how long a deduplication id is remembered (default 10m)",
    ),
    Flag(
        "--message-grace",
        "QSTASH_EMULATOR_MESSAGE_GRACE",
        "message_grace_s",
        "seconds",
        "how long GET /v2/messages/{id} still answers after delivery or failure (default 60s)",
    ),
    Flag(
        "--default-retries",
        "QSTASH_EMULATOR_DEFAULT_RETRIES",
        "default_retries",
        "int",
        "retries when Upstash-Retries is absent (default 3)",
    ),
    Flag(
        "--max-retries",
        "QSTASH_EMULATOR_MAX_RETRIES",
        "max_retries",
        "int",
        "largest Upstash-Retries accepted (default 20)",
    ),
    Flag(
        "--max-message-size",
        "QSTASH_EMULATOR_MAX_MESSAGE_SIZE",
        "max_message_size",
        "size",
        "largest body accepted, e.g. 1MB (default: the quota's)",
    ),
    Flag(
        "--log-retention",
        "QSTASH_EMULATOR_LOG_RETENTION",
        "log_retention",
        "int",
        "log entries (and workflow runs) kept per user (default 10000)",
    ),
    Flag(
        "--in-flight-per-destination",
        "QSTASH_EMULATOR_IN_FLIGHT_PER_DESTINATION",
        "in_flight_per_destination",
        "int",
        "attempts in flight to one scheme://host:port at most (default 256)",
    ),
    Flag(
        "--in-flight-per-user",
        "QSTASH_EMULATOR_IN_FLIGHT_PER_USER",
        "in_flight_per_user",
        "int",
        "attempts in flight of one user at most (default 512)",
    ),
    Flag(
        "--body-budget",
        "QSTASH_EMULATOR_BODY_BUDGET",
        "body_budget",
        "size",
        "bytes of message and response bodies the logs keep, and the recorded attempts "
        "apart from them; the oldest are dropped first (default 256MB)",
    ),
    Flag(
        "--allowed-hosts",
        "QSTASH_EMULATOR_ALLOWED_HOSTS",
        "allowed_hosts",
        "names",
        "other names the server answers to, comma-separated (a docker compose service name, "
        "a tunnel's); the API refuses any other Host, which stops DNS rebinding",
    ),
    Flag(
        "--max-connections",
        "QSTASH_EMULATOR_MAX_CONNECTIONS",
        "max_connections",
        "int",
        "connections open at once; more are closed as they arrive (default 1000)",
    ),
    Flag(
        "--header-timeout",
        "QSTASH_EMULATOR_HEADER_TIMEOUT",
        "header_timeout_s",
        "seconds",
        "a connection whose request headers are not all there this long after it opened "
        "(or after its last answer) is closed (default 10s)",
    ),
    Flag(
        "--strict-destinations",
        "QSTASH_EMULATOR_STRICT_DESTINATIONS",
        "strict_destinations",
        "bool",
        "refuse loopback and private destinations as production does",
    ),
)


def settings_from(values: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from parsed flags, falling back to the environment, then the defaults."""
    env = os.environ if environ is None else environ
    resolved: dict[str, Any] = {}
    for option in FLAGS:
        value = values.get(option.dest)
        if value is None:
            for name in (option.env, *option.aliases):
                if env.get(name):
                    try:
                        value = option.parse(env[name])
                    except ValueError as exc:
                        raise ValueError(f"{name}: {exc}") from None
                    break
        if value is not None:
            resolved[option.dest] = value
    user_keys = {k: resolved.pop(k, None) for k in ("token", "current_key", "next_key")}
    settings = Settings(**resolved)
    if any(user_keys.values()):
        settings = settings.with_default_user(
            user_keys["token"], user_keys["current_key"], user_keys["next_key"]
        )
    if settings.quota not in QUOTAS:
        raise ValueError(f"--quota must be one of {', '.join(QUOTAS)}, not {settings.quota!r}")
    for flag, value in (
        ("--in-flight-per-destination", settings.in_flight_per_destination),
        ("--in-flight-per-user", settings.in_flight_per_user),
    ):
        if value < 1:
            raise ValueError(f"{flag} must be at least 1, not {value}")
    return settings
