"""The service's local time: order days, ordering windows, report dates and rule windows are
all judged in it, not in UTC. Set SMSGW_TZ (an IANA name); default Asia/Shanghai."""

from __future__ import annotations

import os
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

SERVICE_TZ = ZoneInfo(os.environ.get("SMSGW_TZ", "Asia/Shanghai"))


def local(now: datetime) -> datetime:
    return now.astimezone(SERVICE_TZ)


def local_today(now: datetime) -> date:
    return local(now).date()


def local_time(now: datetime) -> time:
    return local(now).time()
