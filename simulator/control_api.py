"""The simulator's HTTP control API (FastAPI), served by uvicorn on the simulator's loop.

    POST   /mo                          a handset texts the gateway: {"from", "to"?, "text",
                                        "data_coding"?, "short_message_hex"?}
                                        → 202 {"mo_ids": [...], ...}
    GET    /mo/{mo_id}                  delivery state of one injected MO part
    POST   /mo/{mo_id}/redeliver        send an acknowledged MO again (duplicate test)
    GET    /handsets/{msisdn}/inbox     what the handset received (``?since=<id>``); any
                                        written form of a number is the same handset
    DELETE /handsets/{msisdn}/inbox     empty it
    GET    /stats                       counters (binds, submits, receipts, MOs)
    POST   /faults                      arm a fault: {"kind": "delay", "seconds": 30, ...}
                                        → 201 with its id (kinds: simulator/faults.py)
    GET    /faults                      armed faults (with firings left) and counts fired
    DELETE /faults                      disarm every fault
    DELETE /faults/{id}                 disarm one
    POST   /faults/drop                 close every SMPP connection abruptly, now
    PUT    /throttle                    {"tps": n}; 0 turns throttling off
    GET    /healthz                     liveness

Bad input gets 422 with FastAPI's usual ``{"detail": [...]}`` body naming the field; a text
that cannot be encoded as asked gets 422 with ``{"detail": "<reason>"}``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from common.phones import canonical_or_none
from gateway.http_server import EmbeddedHttpServer, HttpLimits
from simulator.faults import FaultSpec

if TYPE_CHECKING:
    from simulator.smsc import Simulator

log = logging.getLogger("smsgw.simulator")


class MoRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    from_: str = Field(alias="from", min_length=1, max_length=20,
                       description="the handset's MSISDN in any form, e.g. 8613800000001, "
                                   "+86 138-0000-0001 or 13800000001 (SMSGW_DEFAULT_COUNTRY)")
    to: str | None = Field(None, min_length=1, max_length=20,
                           description="short code the handset texts; default from config")
    text: str = Field(min_length=1, description="message text; long texts are split")
    data_coding: int | None = Field(
        None, ge=0, le=255,
        description="0 GSM 03.38, 3 Latin-1, 4 binary, 8 UCS2; default: GSM if the text "
                    "fits, else UCS2. With short_message_hex: any value 0-255")
    short_message_hex: str | None = Field(
        None, pattern=r"^([0-9A-Fa-f]{2})*$", max_length=508,
        description="send exactly these octets (hex) as one deliver_sm with data_coding, as "
                    "a real SMSC would; text is then only logged")


class ThrottleRequest(BaseModel):
    tps: float = Field(ge=0, description="submit_sm per second; 0 = off")


def create_app(sim: Simulator) -> FastAPI:
    app = FastAPI(title="smsgw SMSC simulator", version="1",
                  description="Control the bundled SMSC simulator: inject MOs, read "
                              "handset inboxes, inject faults.")

    @app.post("/mo", status_code=202)
    async def post_mo(req: MoRequest) -> dict[str, Any]:
        # A handset is one number however it is written: it texts from its canonical form,
        # as an SMSC presents it (an alphanumeric sender is taken as written).
        source = canonical_or_none(req.from_) or req.from_
        try:
            raw = None if req.short_message_hex is None else bytes.fromhex(req.short_message_hex)
            ids = await sim.inject_mo(source, req.to, req.text, data_coding=req.data_coding,
                                      short_message=raw)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        first = sim.mo(ids[0]).params
        return {"mo_ids": ids, "parts": len(ids), "data_coding": first["data_coding"],
                "from": source, "to": first["destination_addr"]}

    @app.get("/mo/{mo_id}")
    async def get_mo(mo_id: str) -> dict[str, Any]:
        try:
            item = sim.mo(mo_id)
        except KeyError:
            raise HTTPException(404, f"unknown MO id {mo_id!r}") from None
        return {"mo_id": item.id, "delivered": item.delivered, "attempts": item.attempts,
                "statuses": item.statuses, "delivered_to": item.delivered_to}

    @app.post("/mo/{mo_id}/redeliver", status_code=202)
    async def redeliver_mo(mo_id: str) -> dict[str, Any]:
        try:
            sim.mo(mo_id)
        except KeyError:
            raise HTTPException(404, f"unknown MO id {mo_id!r}") from None
        task = asyncio.get_running_loop().create_task(sim.redeliver(mo_id))
        _background.add(task)
        task.add_done_callback(_background.discard)
        return {"mo_id": mo_id, "redelivering": True}

    @app.get("/handsets/{msisdn}/inbox")
    async def get_inbox(msisdn: str,
                        since: int | None = Query(None, ge=0,
                                                  description="only ids above this")
                        ) -> list[dict[str, Any]]:
        return [m.to_dict() for m in sim.handset(msisdn).messages(since)]

    @app.delete("/handsets/{msisdn}/inbox")
    async def clear_inbox(msisdn: str) -> dict[str, Any]:
        return {"deleted": sim.handset(msisdn).clear()}

    @app.get("/stats")
    async def get_stats() -> dict[str, Any]:
        return sim.stats()

    @app.post("/faults", status_code=201)
    async def post_fault(spec: FaultSpec) -> dict[str, Any]:  # type: ignore[valid-type]
        return sim.faults.add(spec).to_dict()

    @app.get("/faults")
    async def get_faults() -> dict[str, Any]:
        return {"armed": [f.to_dict() for f in sim.faults.list()],
                "fired": dict(sim.faults.fired),
                "number_prefix": sim.faults.number_prefix or None}

    @app.delete("/faults")
    async def clear_faults() -> dict[str, Any]:
        return {"cleared": sim.faults.clear()}

    @app.delete("/faults/{fault_id}")
    async def delete_fault(fault_id: int) -> dict[str, Any]:
        if not sim.faults.remove(fault_id):
            raise HTTPException(404, f"no armed fault {fault_id}")
        return {"cleared": 1}

    @app.post("/faults/drop")
    async def drop() -> dict[str, Any]:
        return {"dropped": sim.drop_connections()}

    @app.put("/throttle")
    async def put_throttle(req: ThrottleRequest) -> dict[str, Any]:
        sim.set_throttle(req.tps)
        return {"tps": sim.throttle_tps}

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "smpp_port": sim.port,
                "binds": sim.stats()["binds"]["current"]}

    return app


_background: set[asyncio.Task[Any]] = set()


class ControlServer(EmbeddedHttpServer):
    """Serves `create_app(sim)` on ``host:port`` as a task of the running loop."""

    def __init__(self, sim: Simulator, host: str, port: int, *,
                 limits: HttpLimits | None = None) -> None:
        super().__init__(create_app(sim), host, port, name="control API", limits=limits)
        self.sim = sim
