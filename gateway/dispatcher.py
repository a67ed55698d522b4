"""Outbound dispatcher: claims queued MTs in priority order and submits them over every bind.

Shape (issue 4, parts 2 and 5):

- One `ConnectionSender` per configured SMSC connection: its own EsmeClient, window, token
  bucket (`gateway/ratelimit.py`) and two tasks - a *claimer* and an *issuer*.
- The claimer takes small batches from the shared durable queue, only rows this connection
  is a cheapest live route for (`Router.claim_filter` → `outbound.dest_prefix_filter`, a
  plain SQL condition on dest_addr). Each claimed row then gets the full routing decision
  (`Router.choose`: encoding, weighted choice among equal-cost connections) and goes into
  the chosen sender's in-memory buffer, failed (no connection can ever carry it) or back to
  the queue (capable connections exist but none is up).
- Claims are durable ('sending', claimed_by this instance), so a crash leaves nothing in
  limbo: on start `release_claims` puts them back. What is buffered in memory is bounded:
  a claimer claims only while fewer than `batch + window` rows it claimed are unfinished,
  wherever they were routed. That bound is also the priority guarantee: a priority-1 reply
  waits behind at most one such buffer, never behind a whole broadcast, and within a buffer
  it goes first (the buffer is a heap on (priority, claim order)).
- The issuer sends parts strictly in buffer order: window slot, token, then submit_sm. Two
  messages to one destination are never in flight together, so a handset gets its messages
  in order even when the SMSC throttles one of them.
- `ESME_RTHROTTLED` / `ESME_RMSGQFUL`: the part goes back into the buffer at its original
  place and the whole connection pauses with exponential backoff (reset after a run of
  successes); after the pause the buffer resumes from that part, so the stream keeps its
  order (a per-message retry would reorder it - the Jasmin failure mode). The message keeps
  its claim and the parts already accepted keep their SMSC ids, so receipt correlation is
  untouched.
- Permanent errors fail the message with the SMPP status kept. A missing submit_sm_resp is
  retried once on a fresh sequence number and the message flagged possibly duplicated
  (protocol.md, delivery rules). A response that comes after its timeout still counts
  (`Dispatcher.late_response`): its SMSC id is recorded, so receipts match, and a message
  failed for want of a response gets its true state back (issue 8). While the retry is in
  flight a late ESME_ROK for the first attempt settles the part whatever the retry gets.
- A bind that goes down returns its buffered messages to the queue at once (flagged possibly
  duplicated only if a part may have reached the SMSC); its prefixes then fall to the next
  cheapest live connection's claims (failover).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import heapq
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.connectors import Connector, Link
from gateway.esme import EsmeClient
from gateway.metrics import METRICS
from gateway.mt_outcomes import MtOutcomes
from gateway.ratelimit import TokenBucket
from gateway.routing import ConnectionSpec, NoRouteEver, NoRouteNow, Routed, Router
from gateway.smpp import status as st
from gateway.smpp import text as smstext
from gateway.smpp.address import INTERNATIONAL, ton_npi
from gateway.smpp.codec import Pdu
from gateway.smpp.connection import ConnectionClosed, ResponseTimeout
from gateway.smpp.session import Pending
from store import outbound
from store.db import StoreUnavailable
from store.store import Store

log = logging.getLogger("smsgw.dispatcher")

# Our own status for "no response after the retry" (outside the SMPP range, kept in
# error_code so operators can filter on it).
NO_RESPONSE = outbound.NO_SUBMIT_RESPONSE
THROTTLE_PAUSE_MIN = 0.2
THROTTLE_PAUSE_MAX = 10.0
THROTTLE_STATUSES = frozenset({st.ESME_RTHROTTLED, st.ESME_RMSGQFUL})
# Ids a claimer skips because they cannot go anywhere right now (e.g. a UCS2 text whose
# only UCS2-capable route is down). Cleared whenever a bind comes up or goes down.
MAX_SKIPPED = 5000
# How long stop() lets submits already on the wire finish before giving up on them (the
# gateway passes SMSGW_DRAIN_TIMEOUT).
STOP_GRACE = 3.0
# How long a claimer waits before looking again while receipts are behind.
RECEIPT_PAUSE = 0.02
# Receipts awaited before a full inbound window is blamed on them (receipts_behind).
RECEIPT_BACKLOG_MIN = 50
# Destinations whose last concatenation reference is remembered (ConcatRefs): ~150 bytes
# each, so ~2.4 MB once full; a long message to one handset is long reassembled by the time
# 16,384 other messages went out.
REF_DESTINATIONS = 16_384


def _now() -> datetime:
    return datetime.now(UTC)


class ConcatRefs:
    """The concatenation reference of each long MT: it rotates per destination, so two long
    messages to one handset are never mixed up by its reassembly (3GPP TS 23.040
    §9.2.3.24.1).

    Only the last ``size`` destinations are remembered: a dict of every number ever sent to
    grew by ~150 bytes a recipient (a 1,000,000-message broadcast: ~150 MB of RSS). A
    destination not seen for that many messages starts from its message id, not from 0.
    """

    def __init__(self, size: int = REF_DESTINATIONS) -> None:
        self.size = size
        self._last: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._last)

    def next(self, dest: str, mt_id: int) -> int:
        last = self._last.pop(dest, None)
        ref = (last + 1) % 256 if last is not None else mt_id % 256
        self._last[dest] = ref
        if len(self._last) > self.size:
            self._last.popitem(last=False)
        return ref


@dataclass(eq=False)
class Job:
    """One claimed message on its way out: its parts, which are done, where it is."""

    row: Any
    seq: int
    owner: ConnectionSender  # the claimer (its in-memory bound counts this job)
    split: smstext.SplitResult
    todo: list[int]  # part numbers (1-based) not yet on the wire, ascending
    done: set[int] = field(default_factory=set)
    inflight: int = 0
    queued: bool = False  # in a sender's buffer heap
    finished: bool = False  # submitted, failed or handed back to the queue
    sent_any: bool = False  # some part may have reached the SMSC
    cost_millis: int = 0
    epochs: dict[int, int] = field(default_factory=dict)  # part → pause epoch it left in
    # part → SMSC id from a submit_sm_resp that came after its timeout (retry in flight)
    late_ok: dict[int, str] = field(default_factory=dict)

    @property
    def id(self) -> int:
        return int(self.row.id)

    @property
    def dest(self) -> str:
        return str(self.row.dest_addr)

    @property
    def parts(self) -> int:
        return len(self.split.parts)


@dataclass(frozen=True, slots=True)
class SubmitContext:
    """What a submit_sm request carries through the session, for its late response."""

    mt_id: int
    part: int
    parts: int


class ConnectionSender:
    """The sending loop of one connection (see the module docstring)."""

    def __init__(self, dispatcher: Dispatcher, spec: ConnectionSpec, client: Connector, *,
                 clock: Any = time.monotonic):
        self.d = dispatcher
        self.spec = spec
        self.client = client
        self.bucket = TokenBucket(spec.tps, clock=clock)
        self.window = spec.window
        # Unfinished jobs this sender claimed, wherever routed; it claims only below `high`.
        self.outstanding = 0
        self.high = dispatcher.batch + spec.window
        self.min_claim = max(1, min(dispatcher.batch, self.high) // 5)
        self._heap: list[tuple[int, int, Job]] = []
        self._inflight = 0
        self._busy: dict[str, Job] = {}  # destination → the job with a part in flight
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self.skip: set[int] = set()
        self._next_expiry = 0.0  # loop time of the next claim that also expires rows
        self._pause_until = 0.0
        self._backoff = 0.0
        self._epoch = 0
        self._ok_in_epoch = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._sends: set[asyncio.Task[None]] = set()
        # Draining: no new claim. A claim in progress (its write and routing) is never
        # cancelled, or its rows would stay 'sending' with nobody holding them.
        self._stopping = False
        self._claiming = False
        # Counters for status pages, tests and the benchmark.
        self.submitted = 0
        self.throttled = 0
        self.pauses = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def up(self) -> bool:
        return self.client.bound

    @property
    def buffered(self) -> int:
        return sum(1 for _, _, j in self._heap if not j.finished)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._claim_loop(), name=f"claim-{self.name}"),
                       loop.create_task(self._issue_loop(), name=f"issue-{self.name}")]

    async def stop_loops(self) -> None:
        """Stop claiming and issuing; a claim already in progress completes first."""
        self._stopping = True
        claim, issue = self._tasks if self._tasks else (None, None)
        if issue is not None:
            issue.cancel()
        if claim is not None and not self._claiming:
            claim.cancel()  # it waits (bind, room, wake, poll): nothing half done
        self._room.set()
        self._wake.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    # -- buffer -------------------------------------------------------------------------------

    def push(self, job: Job) -> None:
        if job.finished or job.queued:
            return
        job.queued = True
        heapq.heappush(self._heap, (int(job.row.priority), job.seq, job))
        self._changed.set()

    def _drain_buffer(self) -> list[Job]:
        jobs = [j for _, _, j in self._heap if not j.finished]
        self._heap.clear()
        for j in jobs:
            j.queued = False
        return jobs

    # -- claiming -----------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        d = self.d
        loop = asyncio.get_running_loop()
        while not self._stopping:
            await self.client.wait_bound()
            room = self.high - self.outstanding
            # Receipts not keeping pace: let them (and the MOs behind them at the SMSC) in
            # before sending more bulk. Replies still go: holding them would only make
            # people wait, and one reply brings back one receipt.
            urgent_only = d.receipts_behind(self.client)
            if room < self.min_claim:
                self._room.clear()
                await wait_event(self._room, d.poll_interval)
                continue
            f = d.router.claim_filter(self.name, d.up())
            where = outbound.dest_prefix_filter(serve=f.serve, exclude=f.exclude,
                                                exclude_all=f.exclude_all,
                                                unserved_except=f.unserved_except)
            if urgent_only:
                where = outbound.urgent_only(where)
            skip = frozenset(self.skip)
            limit = min(d.batch, room)
            self._wake.clear()
            if self._stopping:
                return
            self._claiming = True
            try:
                # Expiring queued rows once a second is enough: an expired row is never
                # claimed, it only changes status a little later.
                expire = loop.time() >= self._next_expiry
                if expire:
                    self._next_expiry = loop.time() + 1.0
                key = (f, urgent_only)  # one compiled claim per routing filter and mode
                rows = await d.store.write(
                    lambda c, n=limit, w=where, x=skip, e=expire, k=key: outbound.claim_batch(
                        c, instance=d.instance, connection=self.name, now=_now(), limit=n,
                        where=w, exclude_ids=x, where_key=k, expire=e))
                if rows:
                    await d.route(self, rows)
            except StoreUnavailable as exc:  # nothing claimed; try again after a pause
                log.warning("conn=%s claim failed: %s", self.name, exc)
                rows = None
            except Exception:
                log.exception("conn=%s claim failed", self.name)
                rows = None
            finally:
                self._claiming = False
            if rows is None:
                await asyncio.sleep(d.poll_interval)
            elif urgent_only and len(rows) < limit:
                await asyncio.sleep(RECEIPT_PAUSE)  # look at the receipts again soon
            elif not rows:
                await wait_event(self._wake, d.poll_interval)

    def release(self, job: Job) -> None:
        """``job`` (claimed by this sender) is finished: make room for the next claim."""
        self.outstanding -= 1
        if self.high - self.outstanding >= self.min_claim:
            self._room.set()

    # -- issuing ------------------------------------------------------------------------------

    async def _issue_loop(self) -> None:
        loop = asyncio.get_running_loop()
        have_token = False
        while True:
            self._changed.clear()
            conn = await self.client.wait_bound()
            while self._heap and self._heap[0][2].finished:
                heapq.heappop(self._heap)[2].queued = False
            if not self._heap:
                await self._wait_changed()
                continue
            now = loop.time()
            if self._pause_until > now:
                await asyncio.sleep(self._pause_until - now)
                continue
            job = self._heap[0][2]
            busy = self._busy.get(job.dest)
            if (busy is not None and busy is not job) or self._inflight >= self.window:
                await self._wait_changed()
                continue
            if not have_token:
                have_token = True
                delay = self.bucket.reserve()
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue  # look again: a pause or a more urgent message may have come
            have_token = False
            part = job.todo.pop(0)
            if not job.todo:
                heapq.heappop(self._heap)
                job.queued = False
            job.inflight += 1
            job.sent_any = True
            job.epochs[part] = self._epoch
            self._inflight += 1
            self._busy[job.dest] = job
            task = loop.create_task(self._send_part(conn, job, part))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    async def _wait_changed(self) -> None:
        await wait_event(self._changed, 1.0)

    def _slot_free(self, job: Job) -> None:
        self._inflight -= 1
        job.inflight -= 1
        if job.inflight == 0 and self._busy.get(job.dest) is job:
            del self._busy[job.dest]
        self._changed.set()

    async def _send_part(self, conn: Link, job: Job, part: int) -> None:
        row = job.row
        source = row.source_addr or self.d.source_addr
        src_ton, src_npi = ton_npi(source)
        # dest_addr is canonical (E.164 digits): said so, not left for the SMSC to guess.
        dst_ton, dst_npi = ton_npi(row.dest_addr, numeric=INTERNATIONAL)
        params = {
            "source_addr_ton": src_ton, "source_addr_npi": src_npi,
            "source_addr": source,
            "dest_addr_ton": dst_ton, "dest_addr_npi": dst_npi,
            "destination_addr": row.dest_addr,
            "esm_class": job.split.esm_class,
            "data_coding": job.split.data_coding,
            "short_message": job.split.parts[part - 1],
            "registered_delivery": 1 if row.registered_delivery else 0,
        }
        try:
            resp = await self._submit(conn, params, job, part)
        except ConnectionClosed as exc:
            self._slot_free(job)
            await self.d.give_back([job], f"bind {self.name} lost: {exc}")
            return
        except asyncio.CancelledError:
            self._slot_free(job)
            raise
        except Exception as exc:
            self._slot_free(job)
            log.exception("mt=%d part %d send crashed", job.id, part)
            await self.d.give_back([job], f"error: {exc!r}", possibly_duplicate=True)
            return
        self._slot_free(job)
        if job.finished:
            return  # given back (bind lost) or failed by another part meanwhile
        status = resp.status
        if status in THROTTLE_STATUSES:
            self._on_throttled(job, part, status)
            return
        if status != st.ESME_ROK:
            await self.d.fail(job, status, f"part {part}/{job.parts} refused")
            return
        self.submitted += 1
        if job.epochs.get(part) == self._epoch:
            self._ok_in_epoch += 1
            if self._ok_in_epoch >= self.window:
                self._backoff = 0.0
        smsc_id = str(resp.get("message_id", ""))
        # The SMSC has it: recorded whatever the database is doing right now (batched with
        # the other submit responses and receipts of the moment, gateway/mt_outcomes.py).
        await self.d.outcomes.submitted(
            outbound.SubmittedPart(job.id, part, job.parts, smsc_id, job.cost_millis,
                                   self.name),
            receipt_expected=bool(job.row.registered_delivery))
        log.debug("mt=%d part %d/%d submitted smsc_id=%s to=%s conn=%s", job.id, part,
                  job.parts, smsc_id, job.dest, self.name)
        job.done.add(part)
        if len(job.done) == job.parts and not job.finished:
            job.finished = True
            self.d.finished(job)
            METRICS.messages_out.labels("submitted").inc()
            log.info("mt=%d submitted parts=%d to=%s conn=%s cost_millis=%d", job.id,
                     job.parts, job.dest, self.name, job.cost_millis)

    def _on_throttled(self, job: Job, part: int, status: int) -> None:
        """Put the part back at its place and pause the whole connection."""
        self.throttled += 1
        bisect.insort(job.todo, part)
        self.push(job)
        if job.epochs.get(part) == self._epoch:
            # First throttle for something sent since the last pause: pause (again). Parts
            # that left before this pause and come back throttled too just wait their turn.
            self._epoch += 1
            self._ok_in_epoch = 0
            self._backoff = min(self.d.pause_max, max(self.d.pause_min, self._backoff * 2))
            self._pause_until = asyncio.get_running_loop().time() + self._backoff
            self.pauses += 1
            log.warning("conn=%s %s on mt=%d part %d: pausing the connection %.2fs, then "
                        "resuming in the original order", self.name, st.name(status), job.id,
                        part, self._backoff)
        self._changed.set()

    async def _submit(self, conn: Link, params: dict[str, Any], job: Job,
                      part: int) -> Pdu:
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                resp = await conn.request("submit_sm", params,
                                          context=SubmitContext(job.id, part, job.parts))
            except ResponseTimeout:
                if part in job.late_ok:
                    return _accepted(job.late_ok[part])
                if attempt == 2:
                    # Retried once already (protocol.md): fail it, keep the reason; the
                    # message may well have reached the SMSC, so it is not sent a third time.
                    log.error("mt=%d part %d: no submit_sm_resp after the retry", job.id,
                              part)
                    return Pdu("generic_nack", 0, NO_RESPONSE)
                log.warning("mt=%d part %d: no submit_sm_resp, retrying once on a fresh "
                            "sequence (possibly duplicated)", job.id, part)
                await self.d.store.write_until_done(
                    lambda c: outbound.flag_possible_duplicate(c, job.id, now=_now()),
                    what=f"mt={job.id} flagged possibly duplicated")
                await self.bucket.acquire()
                continue
            METRICS.submit_latency.observe(time.perf_counter() - started)
            if resp.status != st.ESME_ROK and part in job.late_ok:
                # The first attempt was accepted after all (its response came late): the
                # retry's refusal does not undo that, and resending would send a third copy.
                return _accepted(job.late_ok[part])
            return resp
        raise AssertionError("unreachable")  # the loop returns or raises

    # -- link state ---------------------------------------------------------------------------

    def on_down(self) -> list[Job]:
        """The bind went down: everything buffered goes back to the shared queue."""
        self._pause_until = 0.0
        self._changed.set()
        return self._drain_buffer()


class Dispatcher:
    """Owns the senders, the router and the concatenation references."""

    def __init__(self, store: Store,
                 connections: EsmeClient | Sequence[tuple[ConnectionSpec, Connector]], *,
                 instance: str, source_addr: str, batch: int = 50, poll_interval: float = 0.5,
                 router: Router | None = None, seed: int | None = None,
                 pause_min: float = THROTTLE_PAUSE_MIN, pause_max: float = THROTTLE_PAUSE_MAX,
                 outcomes: MtOutcomes | None = None, max_awaiting_receipts: int = 0):
        if isinstance(connections, EsmeClient):
            ep = connections.endpoint
            connections = [(ConnectionSpec(ep.name, ep.host, ep.port, ep.system_id,
                                           ep.password, ep.system_type,
                                           window=connections.session_config.window),
                            connections)]
        self.store = store
        # Submit responses are recorded in batches (shared with the receipts' handler).
        self.outcomes = MtOutcomes(store) if outcomes is None else outcomes
        self.max_awaiting_receipts = max_awaiting_receipts
        self.instance = instance
        self.source_addr = source_addr
        self.batch = batch
        self.poll_interval = poll_interval
        self.pause_min = pause_min
        self.pause_max = pause_max
        self.router = router or Router([spec for spec, _ in connections], seed=seed)
        self.senders: dict[str, ConnectionSender] = {}
        for spec, client in connections:
            self.senders[spec.name] = ConnectionSender(self, spec, client)
            client.add_listener(self._on_link)
            client.add_late_listener(self._on_late_response)
        self._refs = ConcatRefs()
        self._seq = itertools.count()
        self._live: dict[int, Job] = {}
        self._bg: set[asyncio.Task[Any]] = set()
        self._started = False

    @property
    def client(self) -> Connector:
        """The first connection's client (single-connection callers)."""
        return next(iter(self.senders.values())).client

    def receipts_behind(self, client: Any = None) -> bool:
        """Claim nothing for now: receipts are backing up at the SMSC, in front of MOs.

        Either the SMSC keeps ``client``'s deliver_sm window full while at least
        RECEIPT_BACKLOG_MIN of our parts await their receipt (receipts come faster than we
        take them in: gateway/inbound_window.py; an MO flood alone, with few receipts
        awaited, does not stop the replies), or more than `max_awaiting_receipts` parts of
        the last 10 s await theirs (a hard bound, whatever the window says)."""
        awaited = self.outcomes.receipts_awaited()
        limit = self.max_awaiting_receipts
        if limit > 0 and awaited >= limit:
            return True
        backlogged = getattr(client, "backlogged", None)
        return (awaited >= RECEIPT_BACKLOG_MIN and backlogged is not None
                and bool(backlogged()))

    def up(self) -> set[str]:
        return {name for name, s in self.senders.items() if s.up}

    def wake(self) -> None:
        """Something was queued: look now rather than at the next poll."""
        for s in self.senders.values():
            s.wake()

    def start(self) -> None:
        self._started = True
        for s in self.senders.values():
            s.start()

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Drain: stop claiming and issuing, give submits on the wire up to ``grace`` s for
        their responses, put everything else back in the queue.

        Afterwards nothing this instance claimed is left 'sending': each message is
        submitted (or failed by its response) or queued again, flagged possibly duplicated
        when a part may have reached the SMSC without its response being seen.
        """
        if not self._started:
            return
        self._started = False
        await asyncio.gather(*(s.stop_loops() for s in self.senders.values()))
        sends = [t for s in self.senders.values() for t in s._sends]
        if sends:
            log.info("draining: waiting up to %gs for %d submit_sm response(s)", grace,
                     len(sends))
            _done, pending = await asyncio.wait(sends, timeout=grace)
            if pending:
                log.warning("draining: %d submit_sm response(s) not in after %gs; those "
                            "messages go back to the queue flagged possibly duplicated",
                            len(pending), grace)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._bg:
            await asyncio.gather(*self._bg, return_exceptions=True)
        left = [j for j in self._live.values() if not j.finished]
        if left:
            try:
                await asyncio.wait_for(self.give_back(left, "gateway stopping"), grace)
            except Exception as exc:  # the database is away: the next start releases them
                log.error("draining: %d message(s) could not be put back now (%r); the next "
                          "start puts them back flagged possibly duplicated", len(left), exc)

    # -- routing claimed rows -------------------------------------------------------------------

    async def route(self, claimer: ConnectionSender, rows: list[Any]) -> None:
        up = self.up()
        fails: list[tuple[int, str]] = []
        later: list[int] = []
        for row in rows:
            try:
                split = smstext.split_text(row.text, ref=self._refs.next(row.dest_addr, row.id))
            except ValueError as exc:  # MessageTooLong; nothing on any route can send it
                fails.append((row.id, f"cannot encode: {exc}"))
                continue
            needs_ucs2 = split.data_coding == smstext.DC_UCS2
            decision = self.router.choose(row.dest_addr, needs_ucs2, up)
            if isinstance(decision, NoRouteEver):
                log.warning("mt=%d failed: %s", row.id, decision.reason)
                fails.append((row.id, decision.reason))
                continue
            target = (self.senders[decision.spec.name] if isinstance(decision, Routed)
                      else None)
            if target is None or not target.up:
                reason = (decision.reason if isinstance(decision, NoRouteNow)
                          else f"{target.name if target else '?'} went down")
                log.info("mt=%d stays queued: %s", row.id, reason)
                later.append(row.id)
                if len(claimer.skip) < MAX_SKIPPED:
                    claimer.skip.add(row.id)
                continue
            parts = len(split.parts)
            job = Job(row=row, seq=next(self._seq), owner=claimer, split=split,
                      todo=list(range(1, parts + 1)),
                      cost_millis=decision.cost_millis(parts))
            claimer.outstanding += 1
            self._live[job.id] = job
            target.push(job)
        if fails:
            now = _now()

            def fail_all(c: Any) -> None:
                for mt_id, reason in fails:
                    outbound.mark_failed(c, mt_id, error_code=None, error_text=reason, now=now)

            await self.store.write_until_done(fail_all, what=f"{len(fails)} message(s) failed")
            METRICS.messages_out.labels("failed").inc(len(fails))
        if later:
            await self.store.write_until_done(lambda c: outbound.requeue(
                c, later, now=_now(), detail="no capable connection up; waiting"),
                what=f"{len(later)} message(s) back in the queue")

    # -- outcomes -------------------------------------------------------------------------------

    def finished(self, job: Job) -> None:
        self._live.pop(job.id, None)
        job.owner.release(job)

    async def fail(self, job: Job, status: int, why: str) -> None:
        if job.finished:
            return
        job.finished = True
        self.finished(job)
        text = _describe(status)
        await self.store.write_until_done(lambda c: outbound.mark_failed(
            c, job.id, error_code=status, error_text=text, now=_now()),
            what=f"mt={job.id} failed")
        METRICS.messages_out.labels("failed").inc()
        log.warning("mt=%d failed: %s: %s", job.id, why, text)

    async def give_back(self, jobs: list[Job], reason: str, *,
                        possibly_duplicate: bool | None = None) -> None:
        """Claimed but not (fully) sent: back to the shared queue for any connection."""
        jobs = [j for j in jobs if not j.finished]
        if not jobs:
            return
        for j in jobs:
            j.finished = True
            self.finished(j)
        dup = [j.id for j in jobs if (possibly_duplicate or j.sent_any)]
        clean = [j.id for j in jobs if not (possibly_duplicate or j.sent_any)]

        def requeue(c: Any) -> int:
            n = outbound.requeue(c, clean, now=_now(), detail=reason)
            return n + outbound.requeue(c, dup, now=_now(), possibly_duplicate=True,
                                        detail=reason)

        n = await self.store.write_until_done(requeue, what=f"{len(jobs)} message(s) requeued")
        log.info("%d message(s) back in the queue: %s", n, reason)
        self.wake()

    def _on_late_response(self, name: str, pdu: Pdu, request: Pending) -> None:
        ctx = request.context
        if not isinstance(ctx, SubmitContext):
            return  # not a submit of ours (query_sm, ...): the session has logged it
        job = self._live.get(ctx.mt_id)
        if pdu.status == st.ESME_ROK and pdu.command != "generic_nack":
            smsc_id = str(pdu.get("message_id", ""))
            if job is not None and not job.finished:
                job.late_ok[ctx.part] = smsc_id  # settles the part if the retry fails
            self._background(self.late_response(name, ctx, smsc_id))
        else:
            # A late refusal changes nothing: the retry (or its own timeout) has decided.
            log.warning("mt=%d part %d/%d: late %s %s on conn=%s ignored", ctx.mt_id,
                        ctx.part, ctx.parts, pdu.command, st.name(pdu.status), name)

    async def late_response(self, name: str, ctx: SubmitContext, smsc_id: str) -> None:
        """Record a part the SMSC accepted after its submit_sm timed out."""
        try:
            status = await self.store.write_until_done(lambda c: outbound.record_late_submit(
                c, message_id=ctx.mt_id, part_no=ctx.part, parts=ctx.parts,
                smsc_message_id=smsc_id, now=_now(), connection=name),
                what=f"mt={ctx.mt_id} part {ctx.part} late submit_sm_resp")
        except Exception:
            log.exception("mt=%d part %d: recording the late submit_sm_resp failed",
                          ctx.mt_id, ctx.part)
            return
        METRICS.messages_out.labels("late_response").inc()
        log.warning("mt=%d part %d/%d: late submit_sm_resp smsc_id=%s conn=%s recorded; "
                    "message now %s", ctx.mt_id, ctx.part, ctx.parts, smsc_id, name, status)

    def _background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    def _on_link(self, name: str, up: bool) -> None:
        for s in self.senders.values():
            s.skip.clear()
        sender = self.senders.get(name)
        if sender is not None and not up and self._started:
            jobs = sender.on_down()
            live = sorted(self.up())
            log.warning("conn=%s down: %d buffered message(s) go back to the queue; "
                        "live connections: %s", name, len(jobs), ", ".join(live) or "none "
                        "(messages stay queued until a bind is up)")
            if jobs:
                task = asyncio.get_running_loop().create_task(
                    self.give_back(jobs, f"bind {name} down"))
                self._bg.add(task)
                task.add_done_callback(self._bg.discard)
        self.wake()


def _accepted(smsc_id: str) -> Pdu:
    return Pdu("submit_sm_resp", 0, st.ESME_ROK, {"message_id": smsc_id})


def _describe(status: int) -> str:
    return "no submit_sm_resp after one retry" if status == NO_RESPONSE else st.name(status)


async def wait_event(event: asyncio.Event, timeout: float) -> None:
    """``event.wait()`` for at most ``timeout`` s. With asyncio.timeout, a timer; wait_for
    made a task per call, which showed in the profile at a few hundred messages a second."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
