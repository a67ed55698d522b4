"""Notices the gateway sends by itself (issue 4 parts 1, 6-8): triggered (durable events →
configured templates), scheduled (an in-process scheduler with persisted slots) and manual
(broadcasts). Windows, quiet hours and the store side live in store/notices.py."""

from gateway.notices.broadcasts import BroadcastRunner, broadcast_sync, run_broadcast
from gateway.notices.config import NoticeConfig, load_config
from gateway.notices.events import EventProcessor, NoticeContext, emit, process_events
from gateway.notices.scheduler import Daily, Job, Scheduler, Weekly, jobs_from_config
from gateway.notices.service import NoticeService

__all__ = [
    "BroadcastRunner", "Daily", "EventProcessor", "Job", "NoticeConfig", "NoticeContext",
    "NoticeService", "Scheduler", "Weekly", "broadcast_sync", "emit", "jobs_from_config",
    "load_config", "process_events", "run_broadcast",
]
