"""Sender guards: the per-phone rate limit and the error-reply storm guard.

Pure: no store, no clock of their own. Every call takes ``now`` (seconds from any monotonic
source, or an aware datetime), so tests drive them with an explicit clock and several
instances of the gateway can share none of this state by design (each guards its own binds;
the limits are about protecting the SMSC link and the sender's wallet, not exact counting).

Memory is bounded: state for a phone is dropped once it has been idle for a whole window,
and a hard cap evicts the least recently active phones first.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Verdict = Literal["ok", "limited_notify", "limited_silent"]

DEFAULT_MAX_PHONES = 100_000


def _seconds(now: float | datetime) -> float:
    return now.timestamp() if isinstance(now, datetime) else float(now)


@dataclass(slots=True)
class _PhoneState:
    accepted: deque[float]  # times of accepted messages inside the window, oldest first
    notified_at: float | None = None  # when the last E12 notice was allowed
    opt_out_notified_at: float | None = None  # when the last over-limit opt-out confirmation
    last_seen: float = 0.0


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
        self._phones: OrderedDict[str, _PhoneState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._phones)

    def check(self, phone: str, now: float | datetime) -> Verdict:
        t = _seconds(now)
        self._evict_idle(t)
        state = self._phones.get(phone)
        if state is None:
            state = _PhoneState(deque(maxlen=self.max_messages))
            self._phones[phone] = state
            while len(self._phones) > self.max_phones:
                self._phones.popitem(last=False)
        else:
            self._phones.move_to_end(phone)
        state.last_seen = t
        horizon = t - self.per_seconds
        while state.accepted and state.accepted[0] <= horizon:
            state.accepted.popleft()
        if len(state.accepted) < self.max_messages:
            state.accepted.append(t)
            return "ok"
        if state.notified_at is None or t - state.notified_at >= self.per_seconds:
            state.notified_at = t
            return "limited_notify"
        return "limited_silent"

    def allow_opt_out_notice(self, phone: str, now: float | datetime) -> bool:
        """An opt-out from a sender over the limit is applied anyway (protocol.md); its
        confirmation goes at most once per window (a faulty phone resending STOP)."""
        t = _seconds(now)
        state = self._phones.get(phone)
        if state is None:
            return True
        if state.opt_out_notified_at is not None and \
                t - state.opt_out_notified_at < self.per_seconds:
            return False
        state.opt_out_notified_at = t
        return True

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
