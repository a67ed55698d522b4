"""The webhook delivery worker: claims owed callbacks and delivers them at least once.

- A claim is durable ('delivering', claimed_by this instance, a lease of timeout + margin):
  a crash leaves the row to be claimed again (by this instance at its next start, or by any
  instance once the lease lapses), so a callback committed before a SIGKILL still goes out.
- Each attempt is signed afresh (gateway/webhooks/signing.py) and carries the row's
  Idempotency-Key; 2xx is success, anything else (or no answer within the target's timeout)
  a failed attempt, retried with exponential backoff and equal jitter (half fixed, half
  random: never 0, never in lockstep), until ``max_attempts``; then the row is 'dead',
  visible in GET /webhooks/deliveries?status=dead and re-triable.
- At most ``max_concurrency`` requests per target (the subscription, or the URL's host for a
  message's callback_url) at once, so one slow receiver cannot take every slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from gateway.webhooks import forms, signing
from store import webhooks
from store.db import StoreUnavailable
from store.store import Store

log = logging.getLogger("smsgw.webhooks")

LEASE_MARGIN = 30.0  # seconds a claim outlives the request timeout
MAX_ERROR_BODY = 300  # characters of a failed response kept for the operator


def _now() -> datetime:
    return datetime.now(UTC)


def backoff_delay(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """Delay before try ``attempt + 1``: low·2^(attempt-1), capped, with equal jitter."""
    ceiling = min(high, low * (2 ** min(max(attempt - 1, 0), 30)))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


class WebhookWorker:
    def __init__(self, store: Store, *, instance: str, default_secret: str,
                 max_attempts: int = 10, backoff_min: float = 2.0, backoff_max: float = 3600.0,
                 timeout: float = 10.0, concurrency: int = 4, batch: int = 50,
                 poll_interval: float = 0.5, seed: int | None = None,
                 on_enqueued: Callable[[], None] = lambda: None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.store = store
        self.instance = instance
        self.default_secret = default_secret
        self.max_attempts = max_attempts
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.concurrency = concurrency
        self.batch = batch
        self.poll_interval = poll_interval
        self.on_enqueued = on_enqueued  # a Kannel reply was queued: wake the dispatcher
        self._rng = random.Random(seed)
        self._client = httpx.AsyncClient(transport=transport, follow_redirects=False)
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._inflight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0
        self.failed_attempts = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="webhooks")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._inflight:  # what is cut off is claimed again at the next start
            for t in self._inflight:
                t.cancel()
            await asyncio.gather(*self._inflight, return_exceptions=True)
        await self._client.aclose()

    async def _run(self) -> None:
        released = await self.store.write_until_done(
            lambda c: webhooks.release(c, instance=self.instance, now=_now()),
            what="webhook claims released")
        if released:
            log.warning("%d webhook deliveries in flight at the last stop are due again "
                        "(the receiver may see them twice: Idempotency-Key)", released)
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as exc:
                log.warning("webhook worker waits for the database: %s", exc)
            except Exception:
                log.exception("webhook worker tick failed")
            self._wake.clear()
            idle = await self._idle_for()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), idle)

    async def _idle_for(self) -> float:
        try:
            due = await self.store.read(webhooks.next_due)
        except Exception:
            return self.poll_interval
        if due is None:
            return self.poll_interval
        return max(0.01, min(self.poll_interval, (due - _now()).total_seconds()))

    async def tick(self) -> int:
        """Claim what is due (room permitting) and start delivering it."""
        room = self.batch - len(self._inflight)
        if room <= 0:
            return 0
        due = await self.store.read(webhooks.next_due)
        if due is None or due > _now():
            return 0
        lease = timedelta(seconds=self.timeout + LEASE_MARGIN)
        rows = await self.store.write(lambda c: webhooks.claim_due(
            c, instance=self.instance, now=_now(), limit=room, lease=lease))
        loop = asyncio.get_running_loop()
        for row in rows:
            task = loop.create_task(self._deliver(row))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        return len(rows)

    async def drain(self) -> None:
        """Tests: wait for the deliveries in flight."""
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    def _target(self, row: dict[str, Any]) -> tuple[str, int]:
        if row.get("subscription_id") is not None:
            return f"sub-{row['subscription_id']}", int(row.get("max_concurrency")
                                                         or self.concurrency)
        return f"host-{urlsplit(row['url']).netloc}", self.concurrency

    async def _deliver(self, row: dict[str, Any]) -> None:
        key, limit = self._target(row)
        sem = self._limits.setdefault(key, asyncio.Semaphore(limit))
        async with sem:
            outcome = await self._attempt(row)
        await self._record(row, *outcome)

    async def _attempt(self, row: dict[str, Any]) -> tuple[int | None, str | None, str | None]:
        """One HTTP attempt → (status, error, reply text)."""
        req = forms.build(row["form"], row["url"], row["body"])
        ts = int(time.time())
        headers = {
            signing.TIMESTAMP_HEADER: str(ts),
            signing.SIGNATURE_HEADER: signing.sign(row.get("secret") or self.default_secret,
                                                   ts, req.body),
            signing.IDEMPOTENCY_HEADER: row["idempotency_key"],
            signing.DELIVERY_HEADER: str(row["id"]),
            signing.EVENT_HEADER: row["event"],
            "User-Agent": "smsgw-webhooks/1",
        }
        if req.content_type:
            headers["Content-Type"] = req.content_type
        timeout = float(row.get("timeout") or self.timeout)
        try:
            resp = await self._client.request(
                req.method, req.url, content=req.body if req.method == "POST" else None,
                headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            return None, f"no answer within {timeout:g}s", None
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}", None
        if 200 <= resp.status_code < 300:
            reply = None
            if row.get("reply") and resp.headers.get("content-type", "").startswith(
                    "text/plain"):
                reply = resp.text.strip() or None
            return resp.status_code, None, reply
        return resp.status_code, f"HTTP {resp.status_code}: {resp.text[:MAX_ERROR_BODY]}", None

    async def _record(self, row: dict[str, Any], status: int | None, error: str | None,
                      reply: str | None) -> None:
        did, attempts = int(row["id"]), int(row["attempts"])
        if error is None:
            mt_id = await self.store.write_until_done(lambda c: webhooks.mark_delivered(
                c, did, instance=self.instance, now=_now(), http_status=status or 0,
                reply_text=reply), what=f"webhook={did} delivered")
            self.delivered += 1
            log.info("webhook=%d delivered event=%s url=%s status=%s attempt=%d%s", did,
                     row["event"], row["url"], status, attempts,
                     f" reply mt={mt_id}" if mt_id else "")
            if mt_id:
                self.on_enqueued()
            return
        self.failed_attempts += 1
        retry_at = None
        if attempts < self.max_attempts:
            retry_at = _now() + timedelta(seconds=backoff_delay(
                attempts, self.backoff_min, self.backoff_max, self._rng))
        state = await self.store.write_until_done(lambda c: webhooks.mark_attempt_failed(
            c, did, instance=self.instance, now=_now(), error=error, http_status=status,
            retry_at=retry_at), what=f"webhook={did} attempt failed")
        if state == "dead":
            log.error("webhook=%d dead after %d attempts event=%s url=%s: %s (retry: POST "
                      "/webhooks/deliveries/%d/retry)", did, attempts, row["event"],
                      row["url"], error, did)
        else:
            log.warning("webhook=%d attempt %d/%d failed url=%s: %s; next at %s", did,
                        attempts, self.max_attempts, row["url"], error,
                        retry_at.isoformat() if retry_at else "-")
        self.wake()
