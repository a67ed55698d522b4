"""Graceful operations (issue 9 item 7), with the gateway as a real process.

- SIGTERM drains: /readyz turns 503 ("draining") at once, no new claims, submit_sm on the
  wire get up to SMSGW_DRAIN_TIMEOUT for their responses, the rest goes back to the queue;
  the process exits 0 with no row left 'sending'.
- A database outage (PostgreSQL: a dedicated database refusing connections, its backends
  terminated; SQLite: an exclusive lock held by another connection) is ridden out without a
  restart: the API answers 503 or waits, MOs are not acknowledged until committed, nothing
  accepted is lost, everything resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import chaos

from simulator.config import SimulatorConfig
from simulator.smsc import Simulator
from store.db import make_engine
from store.models import outbound_messages as om


def _rows(url: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            return list(c.execute(sa.select(om.c.id, om.c.status, om.c.possibly_duplicate)))
    finally:
        engine.dispose()


async def _send(client: httpx.AsyncClient, base: str, n: int, prefix: str) -> list[int]:
    ids = []
    for i in range(n):
        r = await client.post(f"{base}/messages",
                              json={"to": f"8613900{i:06d}", "text": f"{prefix} {i}"})
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    return ids


@pytest.mark.timeout(90)
@pytest.mark.parametrize("responses_in_time", [True, False], ids=["answered", "cut_short"])
async def test_sigterm_drains_nothing_left_sending_and_readyz_flips(
        tmp_path: Path, responses_in_time: bool) -> None:
    url = f"sqlite:///{tmp_path / 'gw.db'}"
    key = await chaos._prepare(url, accounts=1)
    async with Simulator(SimulatorConfig(port=0, control_port=None)) as sim:
        # Every submit_sm answered late: a drain always finds some on the wire. Cut short,
        # the answers come far later than the drain lasts, however slowly SIGTERM is handled.
        sim.faults.delay(1.5 if responses_in_time else 6.0, count=None)
        drain = 8.0 if responses_in_time else 0.3
        gw = chaos.GatewayProcess(url, sim.port, tmp_path, drain_timeout=drain,
                                  env={"SMSGW_WINDOW": "4", "SMSGW_CLAIM_BATCH": "4"})
        await gw.start()
        try:
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(timeout=5.0, headers=headers) as client:
                await _send(client, gw.base, 30, "drain")
                deadline = time.monotonic() + 20
                while sim.stats()["submits"]["received"] < 2:
                    assert time.monotonic() < deadline, "nothing submitted"
                    await asyncio.sleep(0.05)
                assert gw.proc is not None
                gw.proc.terminate()  # SIGTERM
                seen: list[tuple[int, dict[str, Any]]] = []
                while gw.proc.returncode is None:
                    with contextlib.suppress(httpx.HTTPError):
                        r = await client.get(f"{gw.base}/readyz")
                        seen.append((r.status_code, r.json()))
                    await asyncio.sleep(0.05)
            rc = await gw.wait()
        finally:
            if gw.proc is not None and gw.proc.returncode is None:
                gw.proc.kill()
                await gw.proc.wait()
    assert rc == 0, gw.tail()
    draining = [body for status, body in seen if status == 503]
    assert draining and draining[0]["draining"] is True
    assert "draining" in draining[0]["reason"]
    rows = _rows(url)
    statuses = {r.status for r in rows}
    assert "sending" not in statuses, rows
    assert statuses <= {"queued", "submitted", "delivered"}, statuses
    queued = [r for r in rows if r.status == "queued"]
    assert queued, "the drain claimed nothing more: some messages must still be queued"
    sent = [r for r in rows if r.status in ("submitted", "delivered")]
    if responses_in_time:
        # Every submit_sm on the wire got its response within the drain: all recorded.
        assert len(sent) == sim.stats()["submits"]["accepted"] >= 2
        assert not any(r.possibly_duplicate for r in rows)
    else:
        # Cut short: what was on the wire went back to the queue, flagged, never silent.
        assert any(r.possibly_duplicate for r in queued)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def outage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A database of the gateway's own: PostgreSQL outages refuse connections to it, so it
    must not be the one other tests use."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gw.db'}"
        return
    from tests.conftest import _pg_base_url, _require_postgres

    _require_postgres()
    base = sa.engine.make_url(_pg_base_url())
    name = f"outage_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.timeout(120)
async def test_database_outage_is_ridden_out_without_a_restart(
        outage_url: str, tmp_path: Path) -> None:
    url, seconds = outage_url, 5.0
    pg = url.startswith("postgresql")
    key = await chaos._prepare(url, accounts=1)
    async with Simulator(SimulatorConfig(port=0, control_port=None,
                                         mo_retry_interval=0.5)) as sim:
        gw = chaos.GatewayProcess(url, sim.port, tmp_path)
        await gw.start()
        assert gw.proc is not None
        pid = gw.proc.pid
        try:
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(timeout=30.0, headers=headers) as client:
                await _send(client, gw.base, 3, "before")
                outage = asyncio.create_task(chaos.Outage(url).run(seconds))
                await asyncio.sleep(0.5)
                mo_ids = await sim.inject_mo("8613800000077", "10690", "HELP")
                accepted, refused = [], []
                i = 0
                while not outage.done():
                    r = await client.post(f"{gw.base}/messages", json={
                        "to": "8613900000099", "text": f"during {i}"})
                    i += 1
                    if r.status_code == 202:
                        accepted.append(f"during {i - 1}")
                    else:
                        assert r.status_code == 503, r.text
                        assert r.json()["error"]["code"] == "store_unavailable"
                        assert "Retry-After" in r.headers
                        refused.append(r)
                    ready = await client.get(f"{gw.base}/readyz")
                    if pg and not outage.done():
                        assert ready.status_code == 503 and "store" in ready.json()["reason"]
                    await asyncio.sleep(0.3)
                await outage
                if pg:
                    assert refused, "the API must answer 503 while PostgreSQL is away"
                    # No deliver_sm_resp ESME_ROK before the MO was committed.
                    assert any(s != "ESME_ROK" for s in sim.mo(mo_ids[0]).statuses)
                # Everything resumes in the same process.
                await gw.wait_ready(30.0)
                await _send(client, gw.base, 2, "after")
                await sim.wait_delivered(mo_ids, timeout=30)
                await sim.wait_for_inbox("8613800000077", 1, timeout=30)
                inbox = await sim.wait_for_inbox("8613900000099", len(accepted), timeout=30)
                assert {m.text for m in inbox} >= set(accepted)
                for i in range(3):
                    await sim.wait_for_inbox(f"8613900{i:06d}", 1 if i > 1 else 2, timeout=30)
            assert gw.proc.returncode is None and gw.proc.pid == pid  # never restarted
            assert await gw.terminate() == 0
        finally:
            if gw.proc is not None and gw.proc.returncode is None:
                gw.proc.kill()
                await gw.proc.wait()
    rows = _rows(url)
    assert rows and not [r for r in rows if r.status in ("queued", "sending")], rows
    assert len(rows) >= 5 + len(accepted)
