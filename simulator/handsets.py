"""Virtual handsets: what each MSISDN has received from the gateway.

Every submit_sm the simulator accepts (and decides to deliver) lands on the handset of its
destination_addr. Parts of a concatenated message (UDH or sar_* TLVs) are joined per handset,
in any arrival order, exactly as a phone shows them: one inbox entry per whole message, with
the SMSC message_id of every part so a test can tie inbox entries to receipts.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.smpp.text import ConcatInfo, Reassembler, decode_text

log = logging.getLogger("smsgw.simulator")

# Inbox messages kept across all handsets by default: a handset costs about 1.1 KB with one
# message, so a 1,000,000-recipient broadcast kept whole took over 1 GB.
DEFAULT_INBOX_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class InboxMessage:
    """One whole message as the handset displays it."""

    id: int  # increasing across all handsets of one HandsetBook (for `?since=`)
    source_addr: str
    text: str
    data_coding: int
    parts: int
    message_ids: tuple[str, ...]  # SMSC message_id of each part, in part order
    received_at: datetime  # when the last part arrived (UTC)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source_addr": self.source_addr,
            "text": self.text,
            "data_coding": self.data_coding,
            "parts": self.parts,
            "message_ids": list(self.message_ids),
            "received_at": self.received_at.isoformat(),
        }


@dataclass(slots=True)
class _PendingIds:
    first_seen: float
    ids: dict[int, str] = field(default_factory=dict)  # seq -> message_id


class Handset:
    """One MSISDN. `inbox` holds whole messages, oldest first."""

    def __init__(self, msisdn: str, book: HandsetBook) -> None:
        self.msisdn = msisdn
        self.inbox: list[InboxMessage] = []
        self._book = book
        # A phone gets each accepted part once (no SMSC redelivery to guard against), so a
        # finished message frees its reference: the next one reusing it, even with the same
        # text, is a new message.
        self._reassembler = Reassembler(timeout=book.reassembly_timeout,
                                        remember_completed=False)
        self._part_ids: dict[tuple[str, int, int], _PendingIds] = {}

    def receive(self, *, source_addr: str, payload: bytes, data_coding: int, message_id: str,
                concat: ConcatInfo | None = None, now: float | None = None) -> InboxMessage | None:
        """Take one SMS (UDH already removed). Returns the inbox entry when the message is
        complete, None while parts are still missing."""
        text = decode_text(payload, data_coding)
        now = time.monotonic() if now is None else now
        self._expire(now)
        if concat is None or concat.total <= 1:
            return self._store(source_addr, text, data_coding, 1, (message_id,))
        gkey = (source_addr, concat.ref, concat.total)
        ids = self._part_ids.setdefault(gkey, _PendingIds(now))
        whole = self._reassembler.add(source_addr, concat, text, now)
        if whole is None:
            ids.ids.setdefault(concat.seq, message_id)
            return None
        ids.ids.setdefault(concat.seq, message_id)
        del self._part_ids[gkey]
        ordered = tuple(ids.ids[s] for s in sorted(ids.ids))
        return self._store(source_addr, whole, data_coding, concat.total, ordered)

    @property
    def incomplete(self) -> int:
        """Concatenated messages still waiting for parts."""
        return self._reassembler.pending

    def messages(self, since: int | None = None) -> list[InboxMessage]:
        """Inbox entries, oldest first; with ``since``, only those with a larger id."""
        if since is None:
            return list(self.inbox)
        return [m for m in self.inbox if m.id > since]

    def clear(self) -> int:
        n = len(self.inbox)
        self.inbox.clear()
        return n

    def _store(self, source_addr: str, text: str, data_coding: int, parts: int,
               message_ids: tuple[str, ...]) -> InboxMessage:
        msg = InboxMessage(next(self._book.ids), source_addr, text, data_coding, parts,
                           message_ids, datetime.now(UTC))
        self.inbox.append(msg)
        self._book.stored(self, msg)
        self._book.notify(self)
        return msg

    @property
    def idle(self) -> bool:
        """Nothing to show and nothing being reassembled: the book may forget it."""
        return not self.inbox and not self._part_ids

    def _expire(self, now: float) -> None:
        # The reassembler forgets groups older than the timeout; forget their ids too.
        self._reassembler.expire(now)
        old = [k for k, v in self._part_ids.items()
               if now - v.first_seen >= self._book.reassembly_timeout]
        for k in old:
            del self._part_ids[k]


class HandsetBook:
    """All virtual handsets, created on first use.

    At most ``inbox_limit`` inbox messages are kept across all handsets (None: no limit):
    past it the oldest are forgotten, and a handset left with nothing is forgotten too, so a
    long load test keeps the simulator's memory flat. ``forgotten`` counts them.
    """

    def __init__(self, reassembly_timeout: float = 300.0,
                 inbox_limit: int | None = DEFAULT_INBOX_LIMIT) -> None:
        self.reassembly_timeout = reassembly_timeout
        self.inbox_limit = inbox_limit
        self.forgotten = 0
        self.ids = itertools.count(1)
        self._handsets: dict[str, Handset] = {}
        self._listeners: list[Any] = []
        self._arrivals: deque[tuple[int, Handset]] = deque()  # (message id, handset), oldest first

    def __getitem__(self, msisdn: str) -> Handset:
        return self.get(msisdn)

    def __contains__(self, msisdn: object) -> bool:
        return msisdn in self._handsets

    def __iter__(self) -> Iterator[Handset]:
        return iter(list(self._handsets.values()))

    def __len__(self) -> int:
        return len(self._handsets)

    def get(self, msisdn: str) -> Handset:
        handset = self._handsets.get(msisdn)
        if handset is None:
            handset = self._handsets[msisdn] = Handset(msisdn, self)
        return handset

    def add_listener(self, callback: Any) -> None:
        """``callback(handset)`` runs after every new inbox entry (used by wait_for_inbox)."""
        self._listeners.append(callback)

    def notify(self, handset: Handset) -> None:
        for cb in list(self._listeners):
            cb(handset)

    def stored(self, handset: Handset, msg: InboxMessage) -> None:
        """A message landed: forget the oldest ones past the limit."""
        if self.inbox_limit is None:
            return
        self._arrivals.append((msg.id, handset))
        while len(self._arrivals) > self.inbox_limit:
            msg_id, old = self._arrivals.popleft()
            # Gone already when the inbox was cleared (control API, a benchmark's driver).
            if old.inbox and old.inbox[0].id == msg_id:
                old.inbox.pop(0)
                if self.forgotten == 0:
                    log.warning("inbox limit of %d messages reached: the oldest are "
                                "forgotten from now on (--inbox-limit)", self.inbox_limit)
                self.forgotten += 1
            if old.idle and self._handsets.get(old.msisdn) is old:
                del self._handsets[old.msisdn]
