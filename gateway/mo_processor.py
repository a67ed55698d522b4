"""Processing of stored MOs: reassembly, sender guards, PIN check, rules and commands.

Runs after the MO is committed and acknowledged. A message's whole effect — domain writes,
the reply and any notices queued, the MO(s) marked processed — is ONE write op, so it commits
once or not at all: exactly-once processing on top of the deduplicated store.

Concatenated MOs: every part is stored (and acknowledged) on its own; the text is processed
when the last part arrives, in any order. Parts waiting for their siblings survive a restart
(they are rebuilt from the store), and a message still incomplete after `reassembly_timeout`
gets a clear reply instead of silence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from commands import engine, pins
from commands.clock import local_today
from commands.context import Context, Notice, Outcome
from commands.guards import RateLimiter, ReplyStormGuard
from commands.normalize import is_cjk
from commands.parsed import Parsed
from commands.rules import RuleCache
from commands.templates import render
from gateway.smpp import text as smstext
from store import inbound, outbound
from store.store import Store

log = logging.getLogger("smsgw.mo")

PRIORITY_REPLY = 1


@dataclass(frozen=True, slots=True)
class StoredMo:
    id: int
    connection: str
    source: str
    dest: str
    text: str
    concat: smstext.ConcatInfo | None


class MoProcessor:
    def __init__(self, store: Store, *, source_addr: str, rules: RuleCache,
                 rate_limiter: RateLimiter | None = None,
                 storm_guard: ReplyStormGuard | None = None,
                 reassembly_timeout: float = 120.0,
                 on_enqueued: Callable[[], None] = lambda: None):
        self.store = store
        self.source_addr = source_addr
        self.rules = rules
        # `is None`, not `or`: the guards define __len__, so an empty one is falsy.
        self.rate = RateLimiter() if rate_limiter is None else rate_limiter
        self.storm = ReplyStormGuard() if storm_guard is None else storm_guard
        self.reassembler = smstext.Reassembler(timeout=reassembly_timeout)
        self._part_ids: dict[tuple, list[int]] = {}
        self.on_enqueued = on_enqueued
        self._tasks: set[asyncio.Task[None]] = set()
        self._expiry_task: asyncio.Task[None] | None = None

    # -- entry points ---------------------------------------------------------------------------

    def submit(self, mo: StoredMo) -> None:
        """A new MO is on disk: process it (or hold it until its siblings arrive)."""
        if mo.concat is None or mo.concat.total <= 1:
            self._spawn(self.process([mo.id], mo.source, mo.text))
            return
        key = (mo.connection, mo.source, mo.dest, mo.concat.ref, mo.concat.total)
        self._part_ids.setdefault(key, []).append(mo.id)
        whole = self.reassembler.add(key, mo.concat, mo.text, time.monotonic())
        if whole is None:
            log.info("mo=%d part %d/%d from=%s held for reassembly", mo.id, mo.concat.seq,
                     mo.concat.total, mo.source)
            return
        ids = sorted(self._part_ids.pop(key, [mo.id]))
        log.info("mo=%s reassembled %d parts from=%s", ",".join(map(str, ids)),
                 mo.concat.total, mo.source)
        self._spawn(self.process(ids, mo.source, whole))

    def start(self) -> None:
        self._expiry_task = asyncio.get_running_loop().create_task(self._expire_loop())

    async def stop(self) -> None:
        if self._expiry_task is not None:
            self._expiry_task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def recover(self) -> int:
        """Process what a previous run stored but did not process; re-hold waiting parts."""
        rows = await self.store.read(lambda c: inbound.unprocessed_mos(c, 100_000))
        for row in rows:
            self.submit(StoredMo(row.id, row.connection, row.source_addr, row.dest_addr,
                                 row.text, _concat_of(row)))
        return len(rows)

    # -- processing -----------------------------------------------------------------------------

    async def process(self, mo_ids: list[int], phone: str, text: str) -> None:
        first = mo_ids[0]
        try:
            outcome = await self._handle(mo_ids, phone, text)
        except Exception as exc:  # a bug must not lose the MO: mark it failed, keep it
            log.exception("mo=%d processing failed", first)
            error = f"{type(exc).__name__}: {exc}"
            await self.store.write(lambda c: [inbound.mark_mo_failed(c, i, error=error,
                                                                      now=_now())
                                              for i in mo_ids])
            return
        log.info("mo=%d processed from=%s command=%s error=%s%s", first, phone,
                 outcome.command, outcome.error,
                 "" if outcome.reply else " (no reply)")
        if outcome.reply or outcome.notices:
            self.on_enqueued()

    async def _handle(self, mo_ids: list[int], phone: str, text: str) -> Outcome:
        now = _now()
        verdict = self.rate.check(phone, time.monotonic())
        if verdict != "ok":
            lang = "zh" if any(is_cjk(c) for c in text) else "en"
            reply = render(lang, "e12_rate_limited") if verdict == "limited_notify" else None
            outcome = Outcome(reply, lang, None, "E12")
            await self.store.write(lambda c: self._commit(c, mo_ids, phone, outcome, now))
            return outcome
        prepared = engine.prepare(text, local_today(now))
        pin_ok: bool | None = None
        parsed = prepared.result
        if isinstance(parsed, Parsed) and pins.pin_in(parsed) is not None:
            # The KDF (~24 ms) runs on a read thread, never on the single writer thread.
            pin_ok = await self.store.read(lambda c: pins.precheck(c, phone, parsed))
        rules = await self.rules.current(self.store)

        def run(conn) -> Outcome:  # type: ignore[no-untyped-def]
            ctx = Context(conn=conn, phone=phone, now=now, today=local_today(now),
                          mo_id=mo_ids[0], pin_ok=pin_ok)
            outcome = engine.process(ctx, prepared, rules)
            return self._commit(conn, mo_ids, phone, outcome, now)

        return await self.store.write(run)

    def _commit(self, conn, mo_ids: list[int], phone: str, outcome: Outcome,  # type: ignore[no-untyped-def]
                now: datetime) -> Outcome:
        reply = outcome.reply
        if reply and outcome.error and not self.storm.allow(phone, reply, time.monotonic()):
            log.info("mo=%d same error reply to %s within a minute: not sent again",
                     mo_ids[0], phone)
            reply = None
        if reply:
            outbound.enqueue_mt(conn, dest_addr=phone, text=reply, priority=PRIORITY_REPLY,
                                now=now, source_addr=self.source_addr, in_reply_to=mo_ids[0])
        for notice in outcome.notices:
            self._enqueue_notice(conn, notice, now)
        # What operators filter on: the command and, when it failed, the error ("ORD E05");
        # an unmatched message is just "E01".
        label = " ".join(x for x in (outcome.command, outcome.error) if x) or None
        for mo_id in mo_ids:
            inbound.mark_mo_processed(conn, mo_id, command=label, now=now)
        return outcome if reply == outcome.reply else Outcome(
            reply, outcome.lang, outcome.command, outcome.error, outcome.notices)

    def _enqueue_notice(self, conn, notice: Notice, now: datetime) -> None:  # type: ignore[no-untyped-def]
        outbound.enqueue_mt(conn, dest_addr=notice.to, text=notice.text,
                            priority=notice.priority, now=now, source_addr=self.source_addr)

    # -- incomplete concatenations --------------------------------------------------------------

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for expired in self.reassembler.expire(time.monotonic()):
                ids = sorted(self._part_ids.pop(expired.key, []))
                if ids:
                    self._spawn(self._incomplete(ids, expired))

    async def _incomplete(self, ids: list[int], expired: smstext.Expired) -> None:
        _connection, phone, *_ = expired.key
        partial = expired.partial_text
        lang = "zh" if any(is_cjk(c) for c in partial) else "en"
        missing = ",".join(map(str, expired.missing))
        reply = render(lang, "incomplete_message", missing=missing)
        outcome = Outcome(reply, lang, None, "INCOMPLETE")
        log.warning("mo=%s incomplete long message from=%s: parts %s never arrived",
                    ",".join(map(str, ids)), phone, missing)
        await self.store.write(lambda c: self._commit(c, ids, phone, outcome, _now()))
        self.on_enqueued()

    def _spawn(self, coro) -> None:  # type: ignore[no-untyped-def]
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _concat_of(row) -> smstext.ConcatInfo | None:  # type: ignore[no-untyped-def]
    if row.concat_total is None or row.concat_total <= 1:
        return None
    return smstext.ConcatInfo(row.concat_ref, row.concat_total, row.concat_seq)


def _now() -> datetime:
    return datetime.now(UTC)
