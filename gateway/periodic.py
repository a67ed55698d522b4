"""A background job that runs `tick()` every `interval` seconds until stopped.

One place for the loop the receipt sweep and the receipt follow-up share: a failing tick is
logged and retried at the next one (a database hiccup must not end the job).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any


class Periodic:
    interval: float
    name = "periodic"
    log = logging.getLogger("smsgw")

    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def tick(self) -> Any:
        raise NotImplementedError

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("%s failed; retrying in %.1fs", self.name, self.interval)
