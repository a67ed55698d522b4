"""Sender guards: the per-phone rate limit and the error-reply storm guard.

The decisions are pure (`SenderWindow`, `ReplyStormGuard.allow`'s rule): no clock of their
own, every call takes ``now`` (seconds, or an aware datetime), so tests drive them.

`SenderGuards` is what the gateway uses: the same decisions on state kept in the database
(store/guards.py), inside the MO's own write transaction, so several instances on one
database count one sender's messages together and one E12 per window goes out whichever
bind the messages arrive on. `RateLimiter` and `ReplyStormGuard` keep the state in memory
(one process, bounded: a phone idle for a whole window is dropped, a hard cap evicts the
least recently active first).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy.engine import Connection

from store import guards as store_guards

Verdict = Literal["ok", "limited_notify", "limited_silent"]

DEFAULT_MAX_PHONES = 100_000


def _seconds(now: float | datetime) -> float:
    return now.timestamp() if isinstance(now, datetime) else float(now)


@dataclass(slots=True)
class SenderWindow:
    """One phone's rate-limit state and the rule (see `RateLimiter`)."""

    accepted: list[float] = field(default_factory=list)  # accepted times, oldest first
    notified_at: float | None = None  # when the last E12 notice was allowed
    opt_out_notified_at: float | None = None  # when the last over-limit opt-out confirmation
    last_seen: float = 0.0

    def check(self, t: float, max_messages: int, per_seconds: float) -> Verdict:
        self.last_seen = t
        horizon = t - per_seconds
        self.accepted = [a for a in self.accepted if a > horizon][-max_messages:]
        if len(self.accepted) < max_messages:
            self.accepted.append(t)
            return "ok"
        if self.notified_at is None or t - self.notified_at >= per_seconds:
            self.notified_at = t
            return "limited_notify"
        return "limited_silent"

    def allow_opt_out_notice(self, t: float, per_seconds: float) -> bool:
        if self.opt_out_notified_at is not None and \
                t - self.opt_out_notified_at < per_seconds:
            return False
        self.opt_out_notified_at = t
        return True


class RateLimiter:
    """At most ``max_messages`` handled per phone in any ``per_seconds`` (sliding window).

    ``check`` answers:
      - ``"ok"``: handle the message (it counts towards the window);
      - ``"limited_notify"``: over the limit, and this is the first refused message of the
        window: reply with the one E12 notice (protocol.md: "one notice per window");
      - ``"limited_silent"``: over the limit and already told: send nothing.

    Refused messages do not count towards the window, so a sender who slows down is served
    again as soon as the oldest accepted message leaves the window, and a faulty phone that
    resends forever still gets ``max_messages`` answers and one E12 per window, no more.
    """

    def __init__(self, max_messages: int = 10, per_seconds: float = 60, *,
                 max_phones: int = DEFAULT_MAX_PHONES) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        if per_seconds <= 0:
            raise ValueError("per_seconds must be positive")
        if max_phones < 1:
            raise ValueError("max_phones must be at least 1")
        self.max_messages = max_messages
        self.per_seconds = float(per_seconds)
        self.max_phones = max_phones
        # Least recently active first: idle phones are evicted from the front.
        self._phones: OrderedDict[str, SenderWindow] = OrderedDict()

    def __len__(self) -> int:
        return len(self._phones)

    def check(self, phone: str, now: float | datetime) -> Verdict:
        t = _seconds(now)
        self._evict_idle(t)
        state = self._phones.get(phone)
        if state is None:
            state = self._phones[phone] = SenderWindow()
            while len(self._phones) > self.max_phones:
                self._phones.popitem(last=False)
        else:
            self._phones.move_to_end(phone)
        return state.check(t, self.max_messages, self.per_seconds)

    def allow_opt_out_notice(self, phone: str, now: float | datetime) -> bool:
        """An opt-out from a sender over the limit is applied anyway (protocol.md); its
        confirmation goes at most once per window (a faulty phone resending STOP)."""
        state = self._phones.get(phone)
        if state is None:
            return True
        return state.allow_opt_out_notice(_seconds(now), self.per_seconds)

    def forget(self, phone: str) -> None:
        """Drop a phone's state (e.g. an operator lifts the limit)."""
        self._phones.pop(phone, None)

    def _evict_idle(self, t: float) -> None:
        # A phone idle for a full window has no accepted message and no notice left that
        # could still matter, so its state is equivalent to none at all.
        while self._phones:
            phone, state = next(iter(self._phones.items()))
            if t - state.last_seen < self.per_seconds:
                break
            del self._phones[phone]


class ReplyStormGuard:
    """A faulty phone resending the same text must not start a reply storm (protocol.md).

    Suppresses a reply only when it is byte-identical to the error reply this phone got for
    a byte-identical text, less than ``per_seconds`` ago. A different answer, or an answer
    to a different message (another PIN, another order), always goes: six ORDs with
    different PINs get six E03s. ``allow`` records the send when it says yes; a suppressed
    repeat does not extend the window, so a phone resending forever still hears once per
    window. The caller records what it suppressed.
    """

    def __init__(self, per_seconds: float = 60, *, max_entries: int = DEFAULT_MAX_PHONES
                 ) -> None:
        if per_seconds <= 0:
            raise ValueError("per_seconds must be positive")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.per_seconds = float(per_seconds)
        self.max_entries = max_entries
        # (phone, MO text, reply text) -> time last allowed; oldest first for expiry.
        self._sent: OrderedDict[tuple[str, str, str], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sent)

    def allow(self, phone: str, mo_text: str, reply_text: str, now: float | datetime
              ) -> bool:
        t = _seconds(now)
        while self._sent:
            key, at = next(iter(self._sent.items()))
            if t - at < self.per_seconds:
                break
            del self._sent[key]
        key = (phone, mo_text, reply_text)
        last = self._sent.get(key)
        if last is not None and t - last < self.per_seconds:
            return False
        self._sent[key] = t
        self._sent.move_to_end(key)
        while len(self._sent) > self.max_entries:
            self._sent.popitem(last=False)
        return True


def reply_key(phone: str, mo_text: str, reply_text: str) -> str:
    """The storm guard's identity of (phone, MO text, reply), fixed width for an index."""
    raw = "\x1f".join((phone, mo_text, reply_text)).encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).hexdigest()


class SenderGuards:
    """The rate limit and the storm guard on state shared through the database.

    Each call takes the MO's write connection: a sender's row is locked until the MO's
    transaction commits, so two instances serialise on one sender (and never on two different
    senders); the cost is two small statements per MO (lock-and-read, write back) and one
    for an error reply. Same rules as `RateLimiter` and `ReplyStormGuard`.
    """

    def __init__(self, max_messages: int = 10, per_seconds: float = 60, *,
                 storm_seconds: float = 60) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        if per_seconds <= 0 or storm_seconds <= 0:
            raise ValueError("guard windows must be positive")
        self.max_messages = max_messages
        self.per_seconds = float(per_seconds)
        self.storm_seconds = float(storm_seconds)

    def check(self, conn: Connection, phone: str, now: float | datetime, *,
              opt_out: bool = False) -> tuple[Verdict, bool]:
        """(verdict, confirm): ``confirm`` is False only for an opt-out over the limit whose
        confirmation already went this window (the opt-out itself is applied anyway)."""
        t = _seconds(now)
        row = store_guards.lock_sender(conn, phone, t)
        window = SenderWindow(row.accepted, row.notified_at, row.opt_out_notified_at)
        verdict = window.check(t, self.max_messages, self.per_seconds)
        confirm = verdict == "ok" or (opt_out and window.allow_opt_out_notice(
            t, self.per_seconds))
        store_guards.save_sender(conn, phone, store_guards.SenderRow(
            window.accepted, window.notified_at, window.opt_out_notified_at))
        return verdict, confirm

    def allow_reply(self, conn: Connection, phone: str, mo_text: str, reply_text: str,
                    now: float | datetime) -> bool:
        return store_guards.claim_reply(conn, reply_key(phone, mo_text, reply_text),
                                        _seconds(now), self.storm_seconds)

    def purge(self, conn: Connection, now: float | datetime) -> int:
        t = _seconds(now)
        return store_guards.purge(conn, sender_idle_before=t - self.per_seconds,
                                  reply_before=t - self.storm_seconds)
