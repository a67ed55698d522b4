"""Broadcasts (manual notices): to a group, a segment, a topic's subscribers or a list of
numbers, now or at a time, honouring opt-outs and each recipient's window.

A broadcast row goes scheduled → running → done (or cancelled). Running it expands the
recipients once, then queues them in chunks (BROADCAST_CHUNK per transaction) with the
progress (total / queued / skipped) updated in the same transaction as each chunk; a runner
that stops half-way is resumed from what is already queued. Cancelling flips the status and
cancels every not-yet-claimed message of the broadcast in one transaction; a chunk written
after that finds the broadcast cancelled and queues nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from common.phones import canonical
from gateway.mt_text import mt_text
from store import notices as sn
from store.models import PRIORITY_BULK, groups, topics
from store.notices import BROADCAST_CHUNK, NoticePolicy
from store.store import Store

log = logging.getLogger("smsgw.broadcasts")

T = TypeVar("T")
Write = Callable[[Callable[[Connection], T]], Awaitable[T]]

# A 'running' broadcast untouched this long is taken as abandoned and resumed.
STALE_AFTER = timedelta(seconds=60)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class InvalidTarget(ValueError):
    """A broadcast target that could never run; ``details`` lists bad numbers one by one
    (``{"index", "to", "reason"}``, as the bulk send reports them)."""

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.details = details


def check_target(conn: Connection, kind: str, target: Any) -> Any:
    """The target as it is to be stored, or InvalidTarget: a group or topic that does not
    exist, a list with a number that is not a phone number (numbers come back canonical).
    The shape itself (an empty segment, unknown filters) is `store.notices`' check, at
    create_broadcast. Run before creating, so the operator hears it at once (422), not from
    the server log when the broadcast is due.
    """
    if kind == "list":
        numbers = target.get("numbers") if isinstance(target, Mapping) else target
        if isinstance(numbers, str):
            numbers = [n for n in re.split(r"[\s,;]+", numbers) if n]
        if not isinstance(numbers, list):
            return target
        good: list[str] = []
        bad: list[dict[str, Any]] = []
        for index, raw in enumerate(numbers):
            try:
                good.append(canonical(str(raw)))
            except ValueError as exc:
                bad.append({"index": index, "to": str(raw), "reason": str(exc)})
        if bad:
            raise InvalidTarget(f"{len(bad)} of {len(numbers)} numbers are not phone numbers; "
                                f"first: item {bad[0]['index']}: {bad[0]['reason']}", bad)
        return good
    if kind in ("group", "topic"):
        name = target.get(kind) if isinstance(target, Mapping) else target
        if not isinstance(name, str) or not name:
            return target  # create_broadcast names the missing part
        if kind == "group":
            found = conn.execute(sa.select(groups.c.id).where(groups.c.name == name)).first()
        else:
            found = conn.execute(sa.select(topics.c.id)
                                 .where(topics.c.code == name.upper())).first()
        if found is None:
            raise InvalidTarget(f"no {kind} {name!r}: create it first (POST /{kind}s) or "
                                f"check the spelling")
    return target


def check_service_number(number: str | None, configured: Sequence[str]) -> str | None:
    """The number a broadcast goes out from, as stored (None: the default number), or
    ValueError naming the configured ones. ``configured``: the numbers of SMSGW_NUMBERS_FILE,
    or just SMSGW_SOURCE_ADDR without it. A number the gateway does not answer on would
    send texts people cannot reply to."""
    if number is None:
        return None
    wanted = number.strip().removeprefix("+")
    if wanted not in configured:
        raise ValueError(f"service_number {number!r} is not a configured service number; "
                         f"use one of: {', '.join(configured)}")
    return wanted


def create_checked(conn: Connection, *, name: str, target_kind: str, target: Any, text: str,
                   now: datetime, priority: int = PRIORITY_BULK,
                   schedule_at: datetime | None = None, created_by: str | None = None,
                   service_number: str | None = None,
                   configured_numbers: Sequence[str] = ()) -> int:
    """`store.notices.create_broadcast` after the checks every entry point owes it: the
    target (`check_target`), the text (`gateway.mt_text`) and the service number
    (`check_service_number` against ``configured_numbers``). Raises ValueError."""
    number = check_service_number(service_number, configured_numbers)
    target = check_target(conn, target_kind, target)
    return sn.create_broadcast(conn, name=name, target_kind=target_kind, target=target,
                               text=mt_text(text), now=now, priority=priority,
                               schedule_at=schedule_at, created_by=created_by,
                               service_number=number)


async def run_broadcast(write: Write, broadcast_id: int, *, policy: NoticePolicy,
                        chunk: int = BROADCAST_CHUNK, clock: Callable[[], datetime] = _utcnow,
                        stale_after: timedelta = STALE_AFTER,
                        on_chunk: Callable[[int], None] = lambda n: None) -> str | None:
    """Run one due broadcast to the end; returns its final status, or None when it was not
    due / taken by another runner."""
    try:
        plan = await write(lambda c: sn.start_broadcast(c, broadcast_id, now=clock(),
                                                        stale_after=stale_after))
    except ValueError as exc:  # e.g. the group or topic was deleted after creation
        error = f"cannot run: {exc}"
        log.warning("broadcast %d %s", broadcast_id, error)
        await write(lambda c: sn.fail_broadcast(c, broadcast_id, now=clock(), error=error))
        return "cancelled"
    if plan is None:
        return None
    log.info("broadcast %d: %d recipients, %d opted out, %d to queue", plan.id, plan.total,
             plan.opted_out, len(plan.pending))
    for i in range(0, len(plan.pending), chunk):
        part = plan.pending[i:i + chunk]
        n = await write(lambda c, part=part: sn.enqueue_broadcast_chunk(
            c, broadcast_id, part, now=clock(), policy=policy))
        if n is None:
            log.info("broadcast %d cancelled while queuing", broadcast_id)
            return "cancelled"
        on_chunk(n)
    done = await write(lambda c: sn.finish_broadcast(c, broadcast_id, now=clock()))
    return "done" if done else "cancelled"


class BroadcastRunner:
    """Runs due broadcasts in the gateway process (poll, or at once when woken)."""

    def __init__(self, store: Store, policy: NoticePolicy, *, poll_interval: float = 1.0,
                 on_enqueued: Callable[[], None] = lambda: None,
                 clock: Callable[[], datetime] = _utcnow, chunk: int = BROADCAST_CHUNK):
        self.store = store
        self.policy = policy
        self.poll_interval = poll_interval
        self.on_enqueued = on_enqueued
        self.clock = clock
        self.chunk = chunk
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="broadcasts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run_due(self) -> dict[int, str | None]:
        ids = await self.store.read(lambda c: sn.due_broadcasts(
            c, now=self.clock(), stale_after=STALE_AFTER))
        out = {}
        for bid in ids:
            out[bid] = await run_broadcast(self.store.write, bid, policy=self.policy,
                                           chunk=self.chunk, clock=self.clock,
                                           on_chunk=lambda n: self.on_enqueued())
        return out

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_due()
            except Exception:
                log.exception("broadcast runner failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)


# ---------------------------------------------------------------------------------------------
# CLI-friendly: blocking, on a database URL (a running gateway picks a scheduled one up)
# ---------------------------------------------------------------------------------------------


def broadcast_sync(database_url: str | None, *, name: str, target_kind: str, target: Any,
                   text: str, at: datetime | None = None, priority: int = PRIORITY_BULK,
                   run_now: bool = False, quiet_hours: str | None = None,
                   source_addr: str | None = None, created_by: str | None = "cli",
                   ) -> dict[str, Any]:
    """Create a broadcast; with ``run_now`` also queue it here (no running gateway needed).

    Returns `get_broadcast` of the result. Without ``run_now`` a running gateway's
    BroadcastRunner queues it at ``at`` (or at once).
    """
    store = Store.open(database_url)
    try:
        now = _utcnow()
        bid = store.run(lambda c: create_checked(
            c, name=name, target_kind=target_kind, target=target, text=text, now=now,
            priority=priority, schedule_at=at, created_by=created_by))
        if run_now and (at is None or at <= now):
            policy = NoticePolicy(source_addr=source_addr,
                                  quiet_hours=sn.parse_quiet_hours(quiet_hours))

            async def write(fn: Callable[[Connection], T]) -> T:
                return store.run(fn)

            asyncio.run(run_broadcast(write, bid, policy=policy))
        result = store.run(lambda c: sn.get_broadcast(c, bid))
        assert result is not None
        return result
    finally:
        asyncio.run(store.close())


def format_progress(b: dict[str, Any]) -> str:
    return (f"broadcast {b['id']} {b['name']!r}: {b['status']}, total {b['total']}, "
            f"queued {b['queued']}, skipped {b['skipped']}")


__all__: Sequence[str] = ("BroadcastRunner", "broadcast_sync", "format_progress",
                          "run_broadcast")
