"""Processing of stored MOs: reassembly, sender guards, PIN check, rules and commands.

Runs after the MO is committed and acknowledged. A message's whole effect — domain writes,
the reply and any notices queued, the MO(s) marked processed — is ONE write op, so it commits
once or not at all: exactly-once processing on top of the deduplicated store.

Concatenated MOs: every part is stored (and acknowledged) on its own; the text is processed
when the last part arrives, in any order. Waiting parts live only in the store: each stored
part looks its siblings up there, so the parts of one message may arrive on different binds,
even of different instances, and the part stored last (its read follows its own commit, so it
sees every earlier part) completes the message; `claim_mos` makes sure only one instance
processes it. A message with no new part for `reassembly_timeout` gets a clear reply
instead of silence (any instance may find it; the claim again makes it once).

The sender guards (rate limit, reply storms) keep their state in the database and run in the
MO's own write transaction (commands.guards.SenderGuards), so they hold across instances.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from commands import engine, pins
from commands.clock import local_today
from commands.context import Context, Notice, Outcome
from commands.guards import SenderGuards
from commands.normalize import is_cjk
from commands.parsed import Parsed
from commands.rules import RuleCache
from commands.templates import OVERRIDES, render
from gateway.metrics import METRICS
from gateway.smpp import text as smstext
from store import inbound, outbound
from store.db import StoreUnavailable
from store.events import record_event
from store.store import RETRY_MAX_PAUSE, Store

log = logging.getLogger("smsgw.mo")

PRIORITY_REPLY = inbound.PRIORITY_REPLY
_WAIT = object()  # a redelivery whose original is not processed yet


@dataclass(frozen=True, slots=True)
class StoredMo:
    id: int
    connection: str
    source: str
    dest: str
    text: str
    concat: smstext.ConcatInfo | None
    duplicate_of: int | None = None  # the original, when the SMSC is redelivering it


@dataclass(frozen=True, slots=True)
class Done:
    """What became of a message: the outcome actually sent, and the disposition stored."""

    outcome: Outcome
    disposition: str


class MoProcessor:
    def __init__(self, store: Store, *, source_addr: str, rules: RuleCache,
                 guards: SenderGuards | None = None,
                 reassembly_timeout: float = 120.0,
                 on_enqueued: Callable[[], None] = lambda: None,
                 numbers: Any = None):
        self.store = store
        self.source_addr = source_addr
        self.numbers = numbers  # gateway.numbers.NumberPlan: replies from the number texted
        self.rules = rules
        self.guards = guards or SenderGuards()
        self.reassembly_timeout = reassembly_timeout
        self._expiring: set[int] = set()  # first part ids of incomplete messages being answered
        # Redeliveries waiting for their original to be processed, by original id.
        self._waiting: dict[int, list[StoredMo]] = {}
        self.on_enqueued = on_enqueued
        self._tasks: set[asyncio.Task[None]] = set()
        self._expiry_task: asyncio.Task[None] | None = None

    # -- entry points ---------------------------------------------------------------------------

    def submit(self, mo: StoredMo) -> None:
        """A new MO is on disk: process it (or hold it until its siblings arrive)."""
        if mo.duplicate_of is not None:
            self._spawn(self._redelivery(mo))
            return
        if mo.concat is None or mo.concat.total <= 1:
            self._spawn(self.process([mo.id], mo.source, mo.text))
            return
        self._spawn(self._part(mo))

    def start(self) -> None:
        self._expiry_task = asyncio.get_running_loop().create_task(self._expire_loop())

    async def drain(self) -> None:
        """Wait until every MO handed in so far is settled (tasks may spawn tasks)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

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
                                 row.text, _concat_of(row), row.duplicate_of))
        return len(rows)

    async def _part(self, mo: StoredMo) -> None:
        """A part is on disk: if every part of its message is there too, process the whole."""
        assert mo.concat is not None
        info = mo.concat
        # Each part may come up to the timeout after the one before it (the wait counts from
        # the newest part), so a whole message spans at most `total` timeouts.
        since = _now() - timedelta(seconds=self.reassembly_timeout * info.total)
        rows = await self.store.read(lambda c: inbound.concat_parts(
            c, source_addr=mo.source, dest_addr=mo.dest, ref=info.ref, total=info.total,
            since=since))
        by_seq = {r.concat_seq: r for r in rows}  # a repeated seq: the latest copy's text
        if any(seq not in by_seq for seq in range(1, info.total + 1)):
            log.info("mo=%d part %d/%d from=%s held for reassembly (%d of %d here)", mo.id,
                     info.seq, info.total, mo.source, len(by_seq), info.total)
            return
        ids = sorted(r.id for r in rows)  # extra copies of a seq are settled with the rest
        whole = "".join(by_seq[seq].text for seq in range(1, info.total + 1))
        log.info("mo=%s reassembled %d parts from=%s", ",".join(map(str, ids)), info.total,
                 mo.source)
        await self.process(ids, mo.source, whole)

    # -- processing -----------------------------------------------------------------------------

    async def process(self, mo_ids: list[int], phone: str, text: str) -> None:
        first = mo_ids[0]
        try:
            done = await self._until_store_answers(
                lambda: self._handle(mo_ids, phone, text), f"mo={first}")
        except Exception as exc:  # a bug must not lose the MO: mark it failed, keep it
            log.exception("mo=%d disposition=failed from=%s: processing raised", first, phone)
            error = f"{type(exc).__name__}: {exc}"
            def failed(c) -> None:  # type: ignore[no-untyped-def]
                for i in mo_ids:
                    inbound.mark_mo_failed(c, i, error=error, now=_now())
                inbound.mask_secrets(c, mo_ids)  # the parts as one text

            await self.store.write_until_done(failed, what=f"mo={first} disposition=failed")
            METRICS.mo_dispositions.labels("failed").inc(len(mo_ids))
            self._release_waiting(mo_ids)
            return
        self._finished(mo_ids, phone, done)
        self._release_waiting(mo_ids)

    async def _until_store_answers(self, attempt: Callable[[], Any], what: str) -> Any:
        """Run ``attempt`` again while the database is unavailable.

        A database outage is not the MO's fault: it is safe on disk (acknowledged), and its
        transaction did not commit, so it is processed in full once the database is back,
        without a restart, rather than marked failed.
        """
        pause, warned = 0.05, False
        while True:
            try:
                return await attempt()
            except StoreUnavailable as exc:
                if not warned:
                    log.warning("%s waits for the database before processing: %s", what, exc)
                    warned = True
                await asyncio.sleep(pause)
                pause = min(RETRY_MAX_PAUSE, pause * 2)

    def _finished(self, mo_ids: list[int], phone: str, done: Done | None) -> None:
        if done is None:  # another worker had already processed it
            return
        o = done.outcome
        METRICS.mo_dispositions.labels(done.disposition).inc(len(mo_ids))
        log.info("mo=%s disposition=%s from=%s command=%s error=%s",
                 ",".join(map(str, mo_ids)), done.disposition, phone, o.command, o.error)
        if o.reply or o.notices:
            self.on_enqueued()

    async def _handle(self, mo_ids: list[int], phone: str, text: str) -> Done | None:
        now = _now()
        prepared = engine.prepare(text, local_today(now))
        pin: pins.PinCheck | None = None
        parsed = prepared.result
        if isinstance(parsed, Parsed) and pins.pin_in(parsed) is not None:
            # On a read thread: a not yet upgraded scrypt hash costs ~24 ms (commands/pins.py).
            pin = await self.store.read(lambda c: pins.check(c, phone, parsed))
        rules = await self.rules.current(self.store)
        await OVERRIDES.refresh(self.store)  # operators' template edits (no I/O most times)

        def run(conn) -> Done | None:  # type: ignore[no-untyped-def]
            if not inbound.claim_mos(conn, mo_ids):
                return None
            # The guard's state is shared by every instance, and counted in this transaction
            # (after the claim: a message another worker already handled does not count).
            verdict, confirm = self.guards.check(conn, phone, now, opt_out=prepared.opt_out)
            if verdict != "ok" and not prepared.opt_out:
                lang = "zh" if any(is_cjk(c) for c in text) else "en"
                notify = verdict == "limited_notify"
                reply = render(lang, "e12_rate_limited") if notify else None
                return self._commit(conn, mo_ids, phone, text, Outcome(reply, lang, None, "E12"),
                                    now, disposition="rate_limited_notified" if notify
                                    else "rate_limited")
            # An opt-out is applied whatever the limit says; over it, confirmed once a window.
            ctx = Context(conn=conn, phone=phone, now=now, today=local_today(now),
                          mo_id=mo_ids[0], pin_ok=pin.ok if pin else None,
                          pin_rehash=pin.rehash if pin else None)
            number = self._number(conn, mo_ids[0])
            if number is not None:
                ctx.number, ctx.number_commands = number.number, number.keywords
                ctx.number_lang = number.language
            outcome = engine.process(ctx, prepared, rules)
            return self._commit(conn, mo_ids, phone, text, outcome, now,
                                disposition=None if confirm else "opt_out_reply_limited",
                                source=number.number if number is not None else None)

        return await self.store.write(run)

    def _number(self, conn, mo_id: int) -> Any:  # type: ignore[no-untyped-def]
        """The service number an MO was sent to (None: one number, source_addr)."""
        if self.numbers is None:
            return None
        row = inbound.get_mo(conn, mo_id)
        return self.numbers.match(row.dest_addr) if row is not None else None

    def _commit(self, conn, mo_ids: list[int], phone: str, text: str,  # type: ignore[no-untyped-def]
                outcome: Outcome, now: datetime, *, disposition: str | None = None,
                source: str | None = None) -> Done:
        reply = outcome.reply
        withheld: str | None = None
        if disposition == "opt_out_reply_limited":
            withheld, reply = reply, None
        elif disposition is None:
            if reply and outcome.error and not self.guards.allow_reply(conn, phone, text,
                                                                       reply, now):
                withheld, reply, disposition = reply, None, "reply_suppressed"
            elif outcome.error == "INCOMPLETE":
                disposition = "incomplete"
            elif (outcome.command or "").startswith("FORWARD:"):
                disposition = "forwarded"
            else:
                disposition = "answered" if reply else "no_reply"
        if withheld is not None:  # what was not sent is recorded with the MO
            record_event(conn, "in", mo_ids[0], "reply_withheld", now=now,
                         detail=f"{disposition}: {withheld}")
        if reply:
            outbound.enqueue_mt(conn, dest_addr=phone, text=reply, priority=PRIORITY_REPLY,
                                now=now, source_addr=source or self.source_addr,
                                in_reply_to=mo_ids[0])
        for notice in outcome.notices:
            self._enqueue_notice(conn, notice, now)
        # What operators filter on: the command and, when it failed, the error ("ORD E05");
        # an unmatched message is just "E01".
        label = " ".join(x for x in (outcome.command, outcome.error) if x) or None
        for mo_id in mo_ids:
            inbound.mark_mo_processed(conn, mo_id, command=label, now=now,
                                      disposition=disposition, mask=False)
        inbound.mask_secrets(conn, mo_ids, whole=text)  # the parts of a long message, as one
        sent = outcome if reply == outcome.reply else Outcome(
            reply, outcome.lang, outcome.command, outcome.error, outcome.notices)
        return Done(sent, disposition)

    def _enqueue_notice(self, conn, notice: Notice, now: datetime) -> None:  # type: ignore[no-untyped-def]
        outbound.enqueue_mt(conn, dest_addr=notice.to, text=notice.text,
                            priority=notice.priority, now=now, source_addr=self.source_addr)

    # -- SMSC redeliveries ------------------------------------------------------------------------

    async def _redelivery(self, mo: StoredMo) -> None:
        """No second effect; the person gets the original's answer again (issue 8).

        A read-only command is answered afresh (an earlier answer may be stale). A part of a
        long message is recorded only: the whole message is answered once. Otherwise the
        original's reply is re-queued, once the original is processed.
        """
        assert mo.duplicate_of is not None
        if mo.concat is not None and mo.concat.total > 1:
            done = await self.store.write_until_done(lambda c: self._settle_duplicate(
                c, mo, "duplicate_part", []), what=f"mo={mo.id} duplicate part")
            self._finished([mo.id], mo.source, done)
            return
        if engine.prepare(mo.text, local_today(_now())).read_only:
            await self.process([mo.id], mo.source, mo.text)
            return
        try:
            done = await self.store.write_until_done(lambda c: self._replay(c, mo),
                                                     what=f"mo={mo.id} replay")
        except Exception as exc:
            log.exception("mo=%d disposition=failed: replay raised", mo.id)
            error = f"{type(exc).__name__}: {exc}"
            await self.store.write_until_done(
                lambda c: inbound.mark_mo_failed(c, mo.id, error=error, now=_now()),
                what=f"mo={mo.id} disposition=failed")
            METRICS.mo_dispositions.labels("failed").inc()
            return
        if done is _WAIT:
            log.info("mo=%d redelivery waits for mo=%d to be processed", mo.id,
                     mo.duplicate_of)
            self._waiting.setdefault(mo.duplicate_of, []).append(mo)
            return
        self._finished([mo.id], mo.source, done)

    def _replay(self, conn, mo: StoredMo) -> Done | object | None:  # type: ignore[no-untyped-def]
        assert mo.duplicate_of is not None
        original = inbound.get_mo(conn, mo.duplicate_of)
        if original is not None and original.status == "received":
            return _WAIT
        command = original.command if original is not None else None
        texts = inbound.replies_to(conn, mo.duplicate_of)
        if texts and _is_error_label(command):
            # A phone resending the same text within the storm window gets the same error
            # answer once, replayed or not.
            now = _now()
            kept = [x for x in texts if self.guards.allow_reply(conn, mo.source, mo.text, x,
                                                                 now)]
            if not kept:
                record_event(conn, "in", mo.id, "reply_withheld", now=_now(),
                             detail="reply_suppressed: " + "\n".join(texts))
                return self._settle_duplicate(conn, mo, "reply_suppressed", [],
                                              command=command)
            texts = kept
        return self._settle_duplicate(
            conn, mo, "replayed_duplicate" if texts else "duplicate_no_reply", texts,
            command=command)

    def _settle_duplicate(self, conn, mo: StoredMo, disposition: str, texts: list[str], *,  # type: ignore[no-untyped-def]
                          command: str | None = None) -> Done | None:
        now = _now()
        if not inbound.mark_mo_processed(conn, mo.id, command=command, now=now,
                                         disposition=disposition):
            return None
        # From the number that was texted, as the original's reply was (issue 12).
        number = self.numbers.match(mo.dest) if self.numbers is not None else None
        source = number.number if number is not None else self.source_addr
        for text in texts:
            outbound.enqueue_mt(conn, dest_addr=mo.source, text=text, priority=PRIORITY_REPLY,
                                now=now, source_addr=source, in_reply_to=mo.id)
        reply = "\n".join(texts) or None
        return Done(Outcome(reply, "en", command, None), disposition)

    def _release_waiting(self, mo_ids: list[int]) -> None:
        for mo_id in mo_ids:
            for mo in self._waiting.pop(mo_id, []):
                self._spawn(self._redelivery(mo))

    def _retry_waiting(self) -> None:
        """Originals processed by another instance (or after a restart) release no one here:
        look again."""
        waiting, self._waiting = self._waiting, {}
        for mos in waiting.values():
            for mo in mos:
                self._spawn(self._redelivery(mo))

    # -- incomplete concatenations --------------------------------------------------------------

    async def _expire_loop(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(1.0)
            ticks += 1
            self._retry_waiting()
            try:
                await self.expire_incomplete()
                if ticks % 60 == 0:  # guard state idle a whole window decides nothing
                    await self.store.write(lambda c: self.guards.purge(c, _now()))
            except Exception:
                log.exception("incomplete-message sweep failed; retrying")

    async def expire_incomplete(self) -> int:
        """Answer every long MO still missing a part after the reassembly timeout."""
        older = _now() - timedelta(seconds=self.reassembly_timeout)
        groups = await self.store.read(lambda c: inbound.stale_concat_groups(c,
                                                                              older_than=older))
        fresh = [g for g in groups if g.parts[0].id not in self._expiring]
        for g in fresh:
            self._expiring.add(g.parts[0].id)
            self._spawn(self._incomplete(g))
        return len(fresh)

    async def _incomplete(self, group: inbound.StaleGroup) -> None:
        phone = group.source_addr
        ids = [r.id for r in group.parts]
        by_seq = {r.concat_seq: r.text for r in group.parts}
        partial = "".join(by_seq[s] for s in sorted(by_seq))
        lang = "zh" if any(is_cjk(c) for c in partial) else "en"
        missing = ",".join(str(s) for s in range(1, group.total + 1) if s not in by_seq)
        reply = render(lang, "incomplete_message", missing=missing)
        outcome = Outcome(reply, lang, None, "INCOMPLETE")
        try:
            done = await self.store.write(lambda c: self._commit(
                c, ids, phone, partial, outcome, _now()) if inbound.claim_mos(c, ids) else None)
        finally:
            self._expiring.discard(ids[0])
        if done is not None:  # None: another instance answered it
            log.warning("mo=%s incomplete long message from=%s: parts %s never arrived",
                        ",".join(map(str, ids)), phone, missing)
        self._finished(ids, phone, done)
        self._release_waiting(ids)

    def _spawn(self, coro) -> None:  # type: ignore[no-untyped-def]
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _is_error_label(label: str | None) -> bool:
    """Whether an MO's stored command label ("ORD E03", "E01") says its reply was an error."""
    last = (label or "").rsplit(" ", 1)[-1]
    return len(last) == 3 and last[0] == "E" and last[1:].isdigit()


def _concat_of(row) -> smstext.ConcatInfo | None:  # type: ignore[no-untyped-def]
    if row.concat_total is None or row.concat_total <= 1:
        return None
    return smstext.ConcatInfo(row.concat_ref, row.concat_total, row.concat_seq)


def _now() -> datetime:
    return datetime.now(UTC)
