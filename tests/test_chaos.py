"""Crash safety, for real (issue 9 item 3): the short form of benchmarks/chaos.py.

The gateway runs as its own process and is SIGKILLed at random moments under MO and API
load, the simulator in another process; afterwards every acknowledged MO was processed
exactly once, the orders and sales reports are exactly those sent, every accepted MT reached
its handset and no duplicate went unflagged. The same implementation as the benchmark.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import chaos


@pytest.mark.timeout(120)
async def test_sigkill_under_load_loses_nothing_and_doubles_nothing(
        db_url: str, tmp_path: Path) -> None:
    plan = chaos.Plan(kills=3, duration=6.0, mo_rate=8.0, api_rate=8.0, accounts=20,
                      settle_timeout=30.0)
    c = await chaos.run_chaos(db_url, plan, tmp_path)
    assert c["ok"], c["problems"]
    assert c["kills"] == 3 and c["starts"] == 4 and c["sigterm_exit"] == 0
    assert c["mo_parts_injected"] > 0 and c["mo_parts_acked"] == c["mo_parts_injected"]
    assert c["mo_rows_original"] == c["mo_parts_injected"] and c["mo_processed_twice"] == 0
    assert c["db_found"] == c["db_expected"] and c["db_expected"]["orders"] > 0
    assert c["mt_accepted"] > 0 and c["mt_lost"] == 0
    assert c["mt_accepted_delivered"] == c["mt_accepted"]
    assert c["duplicated_silently"] == 0 and c["mt_left_open"] == 0
