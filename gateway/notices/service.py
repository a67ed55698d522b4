"""`NoticeService`: the event processor, the scheduler and the broadcast runner of one
gateway process, built from Settings, started and stopped together (gateway/app.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.notices.broadcasts import BroadcastRunner, create_checked
from gateway.notices.config import load_config
from gateway.notices.events import EventProcessor, NoticeContext
from gateway.notices.scheduler import Scheduler, jobs_from_config
from store import notices as sn
from store.models import PRIORITY_BULK
from store.notices import NoticePolicy
from store.store import Store

log = logging.getLogger("smsgw.notices")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class NoticeService:
    def __init__(self, store: Store, settings: Any, *,
                 on_enqueued: Callable[[], None] = lambda: None,
                 clock: Callable[[], datetime] = _utcnow):
        self.store = store
        self.config = load_config(getattr(settings, "notices_file", None))
        self.policy = NoticePolicy(
            source_addr=getattr(settings, "source_addr", None),
            quiet_hours=sn.parse_quiet_hours(getattr(settings, "quiet_hours", None)))
        self.ctx = NoticeContext(self.config, self.policy)
        poll = float(getattr(settings, "notices_poll_interval", 1.0))
        self.events = EventProcessor(store, self.ctx, poll_interval=poll,
                                     order_events=bool(getattr(settings, "order_events", False)),
                                     on_enqueued=on_enqueued, clock=clock)
        self.scheduler_enabled = bool(getattr(settings, "scheduler_enabled", True))
        self.scheduler = Scheduler(store, jobs_from_config(self.config.jobs), self.ctx,
                                   clock=clock, on_enqueued=on_enqueued,
                                   tick=float(getattr(settings, "scheduler_tick", 30.0)))
        self.broadcasts = BroadcastRunner(store, self.policy, poll_interval=poll,
                                          on_enqueued=on_enqueued, clock=clock)
        self.clock = clock

    async def start(self) -> None:
        self.events.start()
        self.broadcasts.start()
        if self.scheduler_enabled:
            self.scheduler.start()
        log.info("notices: %d event types, %d scheduled jobs%s, quiet hours %s",
                 len(self.config.events), len(self.scheduler.jobs),
                 "" if self.scheduler_enabled else " (scheduler off)",
                 "-".join(t.strftime("%H:%M") for t in self.policy.quiet_hours)
                 if self.policy.quiet_hours else "off")

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.broadcasts.stop()
        await self.events.stop()

    def wake(self) -> None:
        """Something was raised or created in the store: look now."""
        self.events.wake()
        self.broadcasts.wake()

    # -- conveniences for the API and other in-process callers -------------------------------

    async def raise_event(self, type_: str, payload: Mapping[str, Any]) -> int:
        event_id = await self.store.write(lambda c: sn.raise_event(c, type_, payload,
                                                                   self.clock()))
        self.events.wake()
        return event_id

    async def create_broadcast(self, *, name: str, target_kind: str, target: Any, text: str,
                               schedule_at: datetime | None = None,
                               priority: int = PRIORITY_BULK,
                               created_by: str | None = None) -> int:
        bid = await self.store.write(lambda c: create_checked(
            c, name=name, target_kind=target_kind, target=target, text=text, now=self.clock(),
            priority=priority, schedule_at=schedule_at, created_by=created_by))
        self.broadcasts.wake()
        return bid

    async def cancel_broadcast(self, broadcast_id: int) -> dict[str, Any] | None:
        return await self.store.write(lambda c: sn.cancel_broadcast(c, broadcast_id,
                                                                    now=self.clock()))

    async def get_broadcast(self, broadcast_id: int) -> dict[str, Any] | None:
        return await self.store.read(lambda c: sn.get_broadcast(c, broadcast_id))
