"""The event loop `smsgw up`, the simulator and the benchmarks run on: uvloop when installed
(`pip install 'smsgw[fast]'`), else asyncio's own. SMSGW_UVLOOP=0 (or `--no-uvloop`) turns it
off, e.g. to compare or to rule it out when chasing a bug."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
ENV = "SMSGW_UVLOOP"


def loop_factory(use_uvloop: bool | None = None) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when wanted and installed; None means asyncio's default loop.

    use_uvloop None: the environment decides (SMSGW_UVLOOP, default on)."""
    if use_uvloop is None:
        use_uvloop = os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")
    if not use_uvloop:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def name(use_uvloop: bool | None = None) -> str:
    return "uvloop" if loop_factory(use_uvloop) is not None else "asyncio"


def run(main: Coroutine[Any, Any, T], *, use_uvloop: bool | None = None) -> T:
    """asyncio.run(main) on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory(use_uvloop)) as runner:
        return runner.run(main)
