"""Fault injection: make the simulated SMSC misbehave on purpose, the way real ones do.

A fault is armed through the Python API (``sim.faults.add(...)`` or the helpers
``sim.faults.withhold()``, ``.delay(30)``, ``.status("ESME_RSYSERR", count=5)``, ...), through
the control API (``POST /faults`` with the same JSON, ``GET /faults``, ``DELETE /faults``),
or by texting a reserved destination number (the number plan below), so a person can cause
one from a handset or with ``smsgw send``.

Submit faults fire on a matching submit_sm / data_sm (optionally only to destinations
starting with ``to``, or from one ``system_id``), ``count`` times (``null`` = until removed):

    withhold      never answer (the message is still accepted unless ``accept`` is false:
                  the handset gets it and its receipt follows, as when an SMSC's response
                  is lost on the way)
    delay         answer normally, ``seconds`` late (past the ESME's response timeout)
    status        answer with ``status`` (a name such as ESME_RSYSERR, ESME_RMSGQFUL,
                  ESME_RTHROTTLED, ESME_RINVDSTADR, or a number); nothing is delivered.
                  ``count: 20`` makes a burst
    drop          close the TCP connection instead of answering (mid-window: the other
                  submits in flight stay unanswered too); accepted unless ``accept`` is false
    unbind        answer normally, then unbind the session
    malformed     send one malformed PDU, then answer as usual: ``variant`` short_length
                  (command_length < 16), long_length (2 GiB), unknown_command (command_id
                  0x00000099) or truncated_body (a deliver_sm cut in its mandatory fields)
    stop_reading  answer, then stop reading that connection for ``seconds`` (TCP
                  back-pressure: the ESME's writes pile up in the socket buffers)
    no_receipt    answer and deliver normally, but never send the delivery receipt (lost
                  in the SMSC); query_sm still answers the message's state, unless
                  ``forget`` is true (the SMSC restarted and forgot it: ESME_RINVMSGID)

Bind faults:

    refuse_binds         refuse every bind for ``seconds`` from now with ``status``
                         (default ESME_RBINDFAIL)
    deliver_before_bind  on the next ``count`` binds, send an MO (``from``, ``text``) as a
                         deliver_sm *before* the bind_resp; the MO is also queued normally,
                         so it must still arrive exactly once after the bind

Reserved destination numbers (``fault_prefix`` in the config, default ``86999``; empty turns
the plan off): ``<prefix><code><arg>[any digits]``, ``arg`` three decimal digits. With the
gateway's default country 86 the national form ``999...`` means the same numbers.

    <prefix>01         withhold the response (message accepted and delivered)
    <prefix>02SSS      answer SSS seconds late (default 30), e.g. 8699902030
    <prefix>03NNN      answer with status NNN (decimal), e.g. 8699903008 ESME_RSYSERR,
                       8699903020 ESME_RMSGQFUL, 8699903088 ESME_RTHROTTLED,
                       8699903011 ESME_RINVDSTADR
    <prefix>04         drop the connection instead of answering (message accepted)
    <prefix>05         answer, then unbind
    <prefix>06V        malformed PDU first: V = 1 short_length, 2 long_length,
                       3 unknown_command, 4 truncated_body
    <prefix>07SSS      answer, then stop reading for SSS seconds (default 10)
    <prefix>08         no delivery receipt (query_sm still knows the message)
    <prefix>09         no delivery receipt, and query_sm does not know the message

Every firing is logged at WARNING with the fault id and counted (``GET /faults``,
``GET /stats``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import struct
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from gateway.smpp import codec
from gateway.smpp import status as st
from gateway.smpp.codec import Pdu
from gateway.smpp.connection import Reply

if TYPE_CHECKING:
    from gateway.smpp.connection import SmppConnection

log = logging.getLogger("smsgw.simulator")

SUBMIT_KINDS = ("withhold", "delay", "status", "drop", "unbind", "malformed", "stop_reading",
                "no_receipt")
BIND_KINDS = ("refuse_binds", "deliver_before_bind")
MALFORMED_VARIANTS = ("short_length", "long_length", "unknown_command", "truncated_body")
# A sequence number for PDUs the simulator writes around its session (malformed, early
# deliver_sm): at the top of the range, so the session's own counter never reaches it.
STRAY_SEQUENCE = 0x7FFFFFF0


def parse_status(value: int | str) -> int:
    """ESME_RSYSERR / RSYSERR / 8 / "0x08" -> 8. Raises ValueError naming the choices."""
    if isinstance(value, int):
        if not 0 <= value <= 0xFFFFFFFF:
            raise ValueError(f"status {value} is outside 0..0xFFFFFFFF")
        return value
    text = value.strip().upper()
    if text.startswith("0X"):
        return parse_status(int(text, 16))
    if text.isdigit():
        return parse_status(int(text))
    name = text if text.startswith("ESME_") else f"ESME_{text}"
    for code, known in st.NAMES.items():
        if known == name:
            return code
    raise ValueError(f"unknown status {value!r}; use a number or one of "
                     f"{', '.join(sorted(st.NAMES.values()))}")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    count: int | None = Field(1, ge=1, description="how many times it fires; null = until "
                                                   "removed")
    system_id: str | None = Field(None, description="only for this ESME account")


class SubmitFault(_Spec):
    """A fault fired by a matching submit_sm / data_sm (see the module docstring)."""

    kind: Literal["withhold", "delay", "status", "drop", "unbind", "malformed",
                  "stop_reading", "no_receipt"]
    to: str | None = Field(None, description="only submits whose destination starts so")
    seconds: float = Field(30.0, gt=0, le=3600,
                           description="delay: answer this late; stop_reading: pause")
    status: int = Field(st.ESME_RSYSERR, description="status: the command_status to answer")
    accept: bool = Field(True, description="withhold/drop/malformed: still accept and "
                                           "deliver the message")
    variant: Literal["short_length", "long_length", "unknown_command",
                     "truncated_body"] = "unknown_command"
    forget: bool = Field(False, description="no_receipt: query_sm does not know the "
                                            "message either (ESME_RINVMSGID)")

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, v: Any) -> int:
        return parse_status(v)

    @property
    def accepts(self) -> bool:
        """Does the simulator process the message (deliver it, send its receipt)?"""
        return self.kind != "status" and (self.accept or self.kind not in
                                          ("withhold", "drop", "malformed"))


class BindFault(_Spec):
    """A fault fired by a bind (see the module docstring)."""

    kind: Literal["refuse_binds", "deliver_before_bind"]
    seconds: float = Field(10.0, gt=0, le=86400, description="refuse_binds: for how long")
    status: int = Field(st.ESME_RBINDFAIL, description="refuse_binds: the refusal status")
    from_: str = Field("8613800000999", alias="from", min_length=1, max_length=20,
                       description="deliver_before_bind: the MO's sender")
    text: str = Field("HELP", min_length=1, description="deliver_before_bind: the MO text")

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, v: Any) -> int:
        return parse_status(v)


FaultSpec = Annotated[SubmitFault | BindFault, Field(discriminator="kind")]
_SPEC = TypeAdapter(FaultSpec)


class Fault:
    """An armed fault: its spec, id, firings left and (refuse_binds) expiry."""

    def __init__(self, fault_id: int, spec: SubmitFault | BindFault, until: float | None,
                 source: str = "api") -> None:
        self.id = fault_id
        self.spec = spec
        self.left = spec.count
        self.until = until
        self.fired = 0
        self.source = source  # "api" or "number"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **self.spec.model_dump(by_alias=True), "left": self.left,
                "fired": self.fired}


def fault_for_number(dest: str, prefix: str) -> SubmitFault | None:
    """The one-shot fault a reserved destination number asks for (module docstring)."""
    digits = dest.removeprefix("+")
    if not prefix or not digits.startswith(prefix):
        return None
    rest = digits[len(prefix):]
    code, arg = rest[:2], rest[2:5]
    number = int(arg) if arg.isdigit() and len(arg) == 3 else None
    if code == "01":
        return SubmitFault(kind="withhold")
    if code == "02":
        return SubmitFault(kind="delay", seconds=number or 30)
    if code == "03" and number is not None:
        return SubmitFault(kind="status", status=number)
    if code == "04":
        return SubmitFault(kind="drop")
    if code == "05":
        return SubmitFault(kind="unbind")
    if code == "06" and rest[2:3] in ("1", "2", "3", "4"):
        return SubmitFault(kind="malformed", variant=MALFORMED_VARIANTS[int(rest[2]) - 1])
    if code == "07":
        return SubmitFault(kind="stop_reading", seconds=number or 10)
    if code in ("08", "09"):
        return SubmitFault(kind="no_receipt", forget=code == "09")
    return None


class Faults:
    """The simulator's armed faults. ``sim.faults``; thread-unsafe, one asyncio loop."""

    def __init__(self, number_prefix: str = "") -> None:
        self.number_prefix = number_prefix
        self._armed: dict[int, Fault] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.fired: Counter[str] = Counter()
        # The no_receipt fault being applied to the submit in hand (read by the simulator).
        self.receipt_fault: SubmitFault | None = None

    # -- arming -----------------------------------------------------------------------------------

    def add(self, spec: SubmitFault | BindFault | dict[str, Any]) -> Fault:
        """Arm a fault (a spec or its JSON form). Raises pydantic.ValidationError."""
        if isinstance(spec, dict):
            spec = _SPEC.validate_python(spec)
        until = None
        if spec.kind == "refuse_binds":
            until = asyncio.get_running_loop().time() + spec.seconds
        fault = Fault(next(self._ids), spec, until)
        self._armed[fault.id] = fault
        log.warning("fault armed id=%d %s", fault.id, _describe(spec))
        return fault

    def withhold(self, *, count: int | None = 1, to: str | None = None,
                 accept: bool = True) -> Fault:
        return self.add(SubmitFault(kind="withhold", count=count, to=to, accept=accept))

    def delay(self, seconds: float, *, count: int | None = 1, to: str | None = None) -> Fault:
        return self.add(SubmitFault(kind="delay", seconds=seconds, count=count, to=to))

    def status(self, status: int | str, *, count: int | None = 1,
               to: str | None = None) -> Fault:
        return self.add(SubmitFault(kind="status", status=parse_status(status), count=count,
                                    to=to))

    def refuse_binds(self, seconds: float, status: int | str = st.ESME_RBINDFAIL) -> Fault:
        return self.add(BindFault(kind="refuse_binds", seconds=seconds,
                                  status=parse_status(status)))

    def remove(self, fault_id: int) -> bool:
        return self._armed.pop(fault_id, None) is not None

    def clear(self) -> int:
        n = len(self._armed)
        self._armed.clear()
        if n:
            log.warning("faults cleared: %d", n)
        return n

    def list(self) -> list[Fault]:
        self._expire()
        return list(self._armed.values())

    def _expire(self) -> None:
        try:
            now = asyncio.get_running_loop().time()
        except RuntimeError:
            return
        for f in [f for f in self._armed.values() if f.until is not None and f.until <= now]:
            del self._armed[f.id]

    def _take(self, kinds: tuple[str, ...], system_id: str | None,
              dest: str | None = None) -> Fault | None:
        self._expire()
        for fault in self._armed.values():
            spec = fault.spec
            if spec.kind not in kinds:
                continue
            if spec.system_id is not None and spec.system_id != system_id:
                continue
            to = getattr(spec, "to", None)
            if to is not None and not (dest or "").removeprefix("+").startswith(
                    to.removeprefix("+")):
                continue
            return self._fire(fault)
        return None

    def _fire(self, fault: Fault) -> Fault:
        fault.fired += 1
        self.fired[fault.spec.kind] += 1
        if fault.left is not None and fault.until is None:
            fault.left -= 1
            if fault.left <= 0:
                self._armed.pop(fault.id, None)
        return fault

    # -- firing -----------------------------------------------------------------------------------

    def bind_refusal(self, system_id: str) -> int | None:
        """The status to refuse this bind with, while a refuse_binds fault is active."""
        fault = self._take(("refuse_binds",), system_id)
        if fault is None:
            return None
        log.warning("fault id=%d: bind of %s refused with %s", fault.id, system_id,
                    st.name(fault.spec.status))
        return fault.spec.status

    def early_mo(self, system_id: str) -> BindFault | None:
        """A deliver_before_bind fault for this bind, if one is armed."""
        fault = self._take(("deliver_before_bind",), system_id)
        return None if fault is None else fault.spec  # type: ignore[return-value]

    async def answer_submit(self, conn: SmppConnection, pdu: Pdu,
                            handle: Callable[[], Reply]) -> Reply:
        """Answer a submit, misbehaving if a fault matches; ``handle`` is the normal path."""
        system_id = conn.info.get("system_id")
        dest = str(pdu.get("destination_addr", ""))
        fault = self._take(SUBMIT_KINDS, system_id, dest)
        if fault is not None:
            spec: SubmitFault = fault.spec  # type: ignore[assignment]
            tag = f"id={fault.id}"
        else:
            number_fault = fault_for_number(dest, self.number_prefix)
            if number_fault is None:
                return handle()
            spec, tag = number_fault, f"number={dest}"
            self.fired[spec.kind] += 1
        if spec.kind == "no_receipt":
            self.receipt_fault = spec
            try:
                reply = handle()
            finally:
                self.receipt_fault = None
        else:
            reply = handle() if spec.accepts else None
        accepted = reply is not None and reply.status == st.ESME_ROK
        log.warning("fault %s fired on %s seq=%d conn=%s to=%s: %s (message %s)", tag,
                    pdu.command, pdu.sequence, conn.name, dest, _describe(spec),
                    "accepted" if accepted else "not accepted")
        if spec.kind == "status":
            return Reply(spec.status)
        assert reply is not None or spec.kind in ("withhold", "drop", "malformed")
        if spec.kind == "withhold":
            await asyncio.shield(conn.closed)
            return Reply(st.ESME_RSYSERR)  # never sent: the session is closed by now
        if spec.kind == "delay":
            await asyncio.sleep(spec.seconds)
            assert reply is not None
            return reply
        if spec.kind == "drop":
            if conn.transport is not None:
                conn.transport.abort()
            await asyncio.shield(conn.closed)
            return Reply(st.ESME_RSYSERR)  # never sent
        if spec.kind == "malformed":
            if conn.transport is not None:
                conn.transport.write(malformed_pdu(spec.variant))
            return reply or Reply(st.ESME_RSYSERR)
        if spec.kind == "unbind":
            # After this reply is written: the connection flushes it when we return.
            self._later(0, conn.unbind())
        elif spec.kind == "stop_reading" and conn.transport is not None:
            conn.transport.pause_reading()
            transport = conn.transport
            self._later(spec.seconds, _resume(transport))
        assert reply is not None
        return reply

    def _later(self, delay: float, coro: Any) -> None:
        async def run() -> None:
            if delay:
                await asyncio.sleep(delay)
            await coro

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stats(self) -> dict[str, Any]:
        return {"armed": len(self.list()), "fired": dict(self.fired),
                "number_prefix": self.number_prefix or None}


async def _resume(transport: Any) -> None:
    if not transport.is_closing():
        transport.resume_reading()


def malformed_pdu(variant: str) -> bytes:
    """Bytes of one malformed PDU of the given kind (see MALFORMED_VARIANTS)."""
    if variant == "short_length":
        return struct.pack(">LLLL", 8, codec.COMMAND_IDS["enquire_link"], 0, STRAY_SEQUENCE)
    if variant == "long_length":
        return struct.pack(">LLLL", 0x7FFFFFFF, codec.COMMAND_IDS["deliver_sm"], 0,
                           STRAY_SEQUENCE)
    if variant == "unknown_command":
        return struct.pack(">LLLL", 16, 0x00000099, 0, STRAY_SEQUENCE)
    if variant == "truncated_body":
        # service_type "" then source_addr_ton/npi, then a source_addr with no NUL: the
        # mandatory fields stop mid-string.
        body = b"\x00\x01\x01861380"
        return struct.pack(">LLLL", 16 + len(body), codec.COMMAND_IDS["deliver_sm"], 0,
                           STRAY_SEQUENCE) + body
    raise ValueError(f"unknown malformed variant {variant!r}; one of {MALFORMED_VARIANTS}")


def _describe(spec: SubmitFault | BindFault) -> str:
    parts = [spec.kind]
    if spec.kind in ("delay", "stop_reading", "refuse_binds"):
        parts.append(f"{spec.seconds:g}s")
    if spec.kind in ("status", "refuse_binds"):
        parts.append(st.name(spec.status))
    if isinstance(spec, SubmitFault):
        if spec.kind == "malformed":
            parts.append(spec.variant)
        if spec.kind == "no_receipt" and spec.forget:
            parts.append("forget")
        if spec.to:
            parts.append(f"to={spec.to}*")
    if spec.system_id:
        parts.append(f"system_id={spec.system_id}")
    if spec.count != 1 and spec.kind != "refuse_binds":
        parts.append(f"count={'unlimited' if spec.count is None else spec.count}")
    return " ".join(parts)
