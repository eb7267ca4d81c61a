"""The keyspace: every Redis key the emulator reads or writes, and what it holds.

Every key starts with one prefix (``qe:`` unless told otherwise), so several emulators, or a
test's own data, can share a Redis. Scores and times are Unix milliseconds; "emulator clock"
means the virtual clock when one drives the emulator.

Shared by all users:
    schema                  string  the layout's version (``SCHEMA``); upgrades run on start
    lease                   string  the emulator serving this keyspace (JSON: token, url,
                                    host, pid), with a TTL it renews (``store.lease``)
    m:{id}                  hash    r = message record (JSON), b = body bytes (bref instead:
                                    a finished big body's digest, kept as body:{digest})
    due                     zset    message id -> next delivery time (emulator clock); while
                                    in flight CLAIMED + claim time, moved back on start-up
    finished                zset    message id -> wall time its grace ends and it is deleted
    qwake                   zset    [user, queue, message id] (JSON) -> when a delayed queue
                                    message joins its queue's line
    schedule-due            zset    {user}\\0{schedule id} -> the schedule's next run time
    flow-wake               zset    {user}\\0{flow key} -> when the key's rate window opens,
                                    or PARKED while only an event can release its waiters
    waits                   zset    {user}\\n{event id}\\n{waiter id} -> the waiter's deadline
    bodies                  zset    u:{user}:body:{digest} key -> bytes of bodies stored
                                    before it: the oldest are deleted past the body budget
    inflight                zset    schema 1 only: message ids in flight (now on ``due``)

Each user's, under ``u:{user}:`` (a user's purge deletes them all):
    pending                 zset    message id -> created at; the messages not final
    retrying                set     message ids waiting for a retry (not final): counts by
                                    state without reading records
    dedup:{key}             string  {message id}|{when the key stops counting}, with a TTL
    logs                    stream  state changes, several rows an entry (``store.streams``)
    body:{digest}           string  a long body log rows, dead letters, finished messages
                                    or ended workflow runs refer to
                                    (``store.bodies``)
    dlq                     stream  one entry per dead letter; its id is the dlqId (r record,
                                    b body, resp last response, rb its body or rbref the
                                    {digest}:{length} of a long one under body:{digest})
    keys                    hash    current / next signing key after a rotation
    daily:{day}             string  messages published that day (days since 1970, emulator
                                    clock, UTC): the plan's daily quota
    groups                  hash    url group name -> group (JSON: endpoints, headers)
    queues                  hash    queue name -> config (JSON: parallelism, paused)
    qseq                    string  the last place in line given to a queue message
    q:{queue}:members       zset    message id -> place in line; the queue's lag
    q:{queue}:ready         zset    message id -> place in line; waiting for a free slot
    q:{queue}:active        set     message ids holding a slot
    q:{queue}:hold          hash    message id -> its callbacks not final yet
    schedules               zset    schedule id -> created at
    schedule:{id}           hash    r = schedule record (JSON), b = body bytes
    flow                    hash    flow-control key -> config and rate window (JSON)
    flow-wait:{key}         list    message ids waiting for the flow-control key
    runs                    zset    workflow run ref -> created at (a ref is
                                    {run id}@{created at}: an id may start a new run once
                                    its run ended)
    active                  hash    workflow run id -> created at of its run while it runs
    run:{ref}               hash    r = run record (JSON)
    run:{ref}:steps         list    the run's messages in the order accepted (JSON each;
                                    once it ended, not failed, a long body as bref, under
                                    body:{digest})
    run:{ref}:status        hash    message id -> its delivery state for the logs (JSON)
    run:{ref}:waits         set     the run's waiters, as {event id}\\n{waiter id}
    run:{ref}:invoked       hash    message id of an invoke step's result -> the child run
    wait:{eventId}          hash    waiter id -> waiter (JSON)
    lookback:{runId}        hash    event id -> data notified before the run waited for it
"""

from __future__ import annotations

from typing import Literal

__all__ = ["SCHEMA", "Keyspace", "QueuePart", "RunPart"]

# The layout's version. 1: in-flight ids in ``inflight``; 2: on ``due``, scored past any time;
# 3: a message's and a run's options one sub-object of their record (older records are read as
# they are: Message.from_record, Run.from_record), which an emulator of layout 2 cannot read.
SCHEMA = 3

QueuePart = Literal["members", "ready", "active", "hold"]
RunPart = Literal["steps", "status", "waits", "invoked"]


class Keyspace:
    """The name of every key, under one prefix; the only place that spells them."""

    def __init__(self, prefix: str = "qe:") -> None:
        self.prefix = prefix
        self.schema = prefix + "schema"
        self.lease = prefix + "lease"
        self.due = prefix + "due"
        self.finished = prefix + "finished"
        self.queue_wake = prefix + "qwake"
        self.schedule_due = prefix + "schedule-due"
        self.flow_wake = prefix + "flow-wake"
        self.waits = prefix + "waits"
        self.legacy_inflight = prefix + "inflight"
        # The indexes scored by when something comes due for the engine: every write of a
        # score to them goes through the batcher (``Writes.zadd``), which wakes the engine.
        self.due_indexes = frozenset(
            {self.due, self.queue_wake, self.schedule_due, self.flow_wake, self.waits}
        )
        self.bodies = prefix + "bodies"

    @staticmethod
    def literal(text: str) -> str:
        """``text`` in a SCAN pattern, matching only itself."""
        return "".join("\\" + c if c in "*?[]\\" else c for c in text)

    def everything(self) -> str:
        """A SCAN pattern matching every key of this emulator."""
        return self.prefix + "*"

    def message(self, message_id: str) -> str:
        return self.prefix + "m:" + message_id

    # One user's -----------------------------------------------------------------------------

    def _user(self, user: str, *parts: str) -> str:
        return self.prefix + "u:" + user + ":" + ":".join(parts)

    def of_user(self, user: str) -> str:
        """A SCAN pattern matching every key of ``user``."""
        return self._user(user, "*")

    def all_queue_configs(self) -> str:
        """A SCAN pattern matching every user's ``queues`` hash."""
        return self._user("*", "queues")

    def all_dlqs(self) -> str:
        """A SCAN pattern matching every user's ``dlq`` stream."""
        return self._user("*", "dlq")

    def user_of_queue_configs(self, key: str) -> str:
        """The user whose ``queues`` hash ``key`` is."""
        return key[len(self.prefix + "u:") : -len(":queues")]

    def pending(self, user: str) -> str:
        return self._user(user, "pending")

    def retrying(self, user: str) -> str:
        return self._user(user, "retrying")

    def dedup(self, user: str, dedup_key: str) -> str:
        return self._user(user, "dedup", dedup_key)

    def logs(self, user: str) -> str:
        return self._user(user, "logs")

    def body(self, user: str, digest: str) -> str:
        return self._user(user, "body", digest)

    def dlq(self, user: str) -> str:
        return self._user(user, "dlq")

    def signing_keys(self, user: str) -> str:
        return self._user(user, "keys")

    def daily(self, user: str, day: str) -> str:
        return self._user(user, "daily", day)

    def groups(self, user: str) -> str:
        return self._user(user, "groups")

    def queues(self, user: str) -> str:
        return self._user(user, "queues")

    def queue_seq(self, user: str) -> str:
        return self._user(user, "qseq")

    def queue(self, user: str, queue: str, part: QueuePart) -> str:
        return self._user(user, "q", queue, part)

    def schedules(self, user: str) -> str:
        return self._user(user, "schedules")

    def schedule(self, user: str, schedule_id: str) -> str:
        return self._user(user, "schedule", schedule_id)

    def flow(self, user: str) -> str:
        return self._user(user, "flow")

    def flow_wait(self, user: str, key: str) -> str:
        return self._user(user, "flow-wait", key)

    def runs(self, user: str) -> str:
        return self._user(user, "runs")

    def active_runs(self, user: str) -> str:
        return self._user(user, "active")

    def run(self, user: str, run_ref: str, part: RunPart | None = None) -> str:
        """A run's record, or with ``part`` its steps, status, waits or invoked steps."""
        return self._user(user, "run", run_ref, *([part] if part else []))

    def event_waiters(self, user: str, event_id: str) -> str:
        return self._user(user, "wait", event_id)

    def lookback(self, user: str, run_id: str) -> str:
        return self._user(user, "lookback", run_id)
