"""The values every handler receives and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Connection

from store.domain import accounts

_UNREAD: Any = object()


@dataclass(slots=True)
class Context:
    """One inbound SMS being handled, inside the store transaction that will also queue the
    reply and mark the MO processed (so the effect and the reply commit together, once)."""

    conn: Connection
    phone: str  # the sender's MSISDN
    now: datetime  # aware UTC
    today: date  # the service's local date (for SAL/STK dates, order days)
    mo_id: int | None = None
    lang: str = "en"
    # The PIN in the message checked against the sender's account *before* the transaction
    # (commands.pins.check; a not yet upgraded scrypt hash costs ~24 ms and must not stall
    # the single writer thread): True / False, or None when the command carries no PIN or
    # the sender has no PIN set. Handlers apply the lockout rules with it; they never hash.
    pin_ok: bool | None = None
    # (stored hash, new hash) when the right PIN was checked against an old-format hash:
    # written by the PIN check in this transaction (commands.pins.PinCheck.rehash).
    pin_rehash: tuple[str, str] | None = None
    # The service number the MO was sent to (gateway/numbers.py), when several are run.
    number: str | None = None
    number_commands: frozenset[str] | None = None  # built-ins enabled there; None: all
    number_lang: str | None = None  # its language for a text not understood
    # The sender's active account as read at the start of handling (see `sender`).
    _sender: Any = _UNREAD

    def sender(self) -> Any:
        """The sender's active account row (None: not registered), read once per message:
        the rules, the role check and HELP all need it before any handler changes it.
        Handlers that change the account read it afresh."""
        if self._sender is _UNREAD:
            self._sender = accounts.by_phone(self.conn, self.phone)
        return self._sender


@dataclass(frozen=True, slots=True)
class Notice:
    """An extra MT the handling produces (e.g. CHG's confirmation code to the new number)."""

    to: str
    text: str
    priority: int = 2


@dataclass(frozen=True, slots=True)
class Outcome:
    reply: str | None  # None: send nothing (rate-limited sender)
    lang: str
    command: str | None  # the command code handled, None when not understood
    error: str | None = None  # "E01" ... when the reply is an error
    notices: tuple[Notice, ...] = field(default_factory=tuple)
