"""Raw TCP fuzzing of both SMPP listeners (issue 9 §5): random octets, mutated valid PDUs and
truncated frames, unbound and bound. The listener stays up, a client bound before the fuzzing
keeps being served, and no handler fails with an exception (that would answer
ESME_RSYSERR: the sign of a bug a peer can trigger)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from gateway.smpp import codec
from gateway.smpp import status as st
from gateway.smpp.codec import Pdu
from gateway.smpp.listener import ListenerLimits
from tests.listeners.conftest import (
    PASSWORD,
    SYSTEM_ID,
    Listener,
    ListenerFactory,
    RawClient,
    submit_params,
)
from tests.test_session_fuzz import _mutate, streams

pytestmark = pytest.mark.timeout(180)
T = TypeVar("T")

_REQUESTS = [codec.encode(Pdu(c, 7, 0, p)) for c, p in [
    ("submit_sm", submit_params()),
    ("submit_sm", {**submit_params(text=b"\x05\x00\x03\x01\x02\x01hi"), "esm_class": 0x40}),
    ("submit_sm", {**submit_params(text=b""), "message_payload": b"x" * 200}),
    ("submit_sm", {**submit_params(text="日本".encode("utf-16-be")), "data_coding": 8,
                   "schedule_delivery_time": "000001000000000R"}),
    ("data_sm", {"service_type": "", "source_addr": "10690", "destination_addr": "8613800000077",
                 "esm_class": 0, "registered_delivery": 0, "data_coding": 0,
                 "message_payload": b"hello"}),
    ("query_sm", {"message_id": "1", "source_addr": "10690"}),
    ("cancel_sm", {}),
    ("enquire_link", {}),
]]


class LoopThread:
    """An event loop in a thread: the listener lives there, hypothesis drives it from here."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_rest() -> None:  # e.g. a fuzzed bind still in its password check
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        self.run(cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Target:
    def __init__(self, lt: LoopThread, lst: Listener, good: RawClient):
        self.lt, self.lst, self.good = lt, lst, good
        self.fuzzer: socket.socket | None = None

    def bound_socket(self) -> socket.socket:
        """The fuzzer's bound session, bound again whenever the listener dropped it."""
        if self.fuzzer is None:
            s = socket.create_connection(("127.0.0.1", self.lst.port), timeout=15)
            s.sendall(codec.encode(Pdu("bind_transceiver", 1, 0, {
                "system_id": SYSTEM_ID, "password": PASSWORD, "system_type": "",
                "interface_version": 0x34, "address_range": ""})))
            header = _recv_exact(s, 16)
            _recv_exact(s, int.from_bytes(header[:4], "big") - 16)
            assert int.from_bytes(header[8:12], "big") == st.ESME_ROK
            s.settimeout(0.03)
            self.fuzzer = s
        return self.fuzzer

    def drop_fuzzer(self) -> None:
        if self.fuzzer is not None:
            self.fuzzer.close()
            self.fuzzer = None

    def good_still_served(self) -> None:
        async def ping() -> Pdu:
            await self.good.send_raw(self.good.pdu("enquire_link"))
            while True:  # skip deliver_sm a simulator may send (none expected)
                pdu = await self.good.read_pdu(timeout=10)
                if pdu.command == "enquire_link_resp":
                    return pdu

        assert self.lt.run(ping()).status == st.ESME_ROK


def _recv_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _drain(s: socket.socket) -> bool:
    """Read what the listener answered; False once it closed the connection."""
    try:
        while True:
            if not s.recv(65536):
                return False
    except (TimeoutError, BlockingIOError):
        return True
    except OSError:
        return False


@pytest.fixture
def target(open_listener: ListenerFactory, caplog: pytest.LogCaptureFixture) -> Iterator[Target]:
    caplog.set_level(logging.ERROR)
    lt = LoopThread()
    cm = open_listener(ListenerLimits(pdu_read_timeout=0.3, bind_timeout=5,
                                      max_per_source=1000))
    lst = lt.run(cm.__aenter__())
    good = lt.run(RawClient.open(lst.port, local="127.0.0.2"))
    assert lt.run(good.bind()).status == st.ESME_ROK
    t = Target(lt, lst, good)
    try:
        yield t
        t.good_still_served()
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert not errors, [r.getMessage() for r in errors]
    finally:
        t.drop_fuzzer()
        lt.run(good.close())
        lt.run(cm.__aexit__(None, None, None))
        lt.close()


_FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])


@_FUZZ
@given(stream=streams(), truncate=hs.booleans())
def test_unbound_garbage(target: Target, stream: bytes, truncate: bool) -> None:
    s = socket.create_connection(("127.0.0.1", target.lst.port), timeout=5)
    s.settimeout(0.03)
    try:
        s.sendall(stream[: len(stream) // 2] if truncate else stream)
        _drain(s)
    except OSError:
        pass  # the listener may close on us mid-send: that is a clean close
    finally:
        s.close()


@settings(_FUZZ, max_examples=100)  # a dropped session costs a bind (scrypt) upstream
@given(data=hs.data(), count=hs.integers(1, 4))
def test_bound_mutated_requests(target: Target, data: hs.DataObject, count: int) -> None:
    s = target.bound_socket()
    frames = b"".join(_mutate(data.draw(hs.sampled_from(_REQUESTS)), data)
                      for _ in range(count))
    try:
        s.sendall(frames)
        alive = _drain(s)
    except OSError:
        alive = False
    if not alive:
        target.drop_fuzzer()


def test_many_truncated_frames_then_good_client(target: Target) -> None:
    """Half-sent PDUs on many connections at once: each is dropped by the read timeout."""
    socks = [socket.create_connection(("127.0.0.1", target.lst.port), timeout=5)
             for _ in range(30)]
    for i, s in enumerate(socks):
        frame = _REQUESTS[i % len(_REQUESTS)]
        s.sendall(frame[: min(5 + i, len(frame) - 1)])
    target.good_still_served()
    for s in socks:
        s.settimeout(3)
        assert _drain(s) is False, "a truncated PDU was held past the read timeout"
        s.close()
