"""What carries SMS to and from the network, behind one interface (issue 12, part 2).

`Connector` is the shape the dispatcher (gateway/dispatcher.py) already drove the SMPP ESME
through; every connector offers it:

- ``name``; ``bound`` (up/down) and ``await wait_bound()`` → a `Link` whose
  ``await request("submit_sm", params, context=...)`` returns a submit_sm_resp `Pdu` (status
  ESME_ROK with ``message_id`` = the provider's id; ESME_RTHROTTLED pauses the connection;
  another status fails the message; `ConnectionClosed` hands it back to the queue for any
  other connection: failover; `ResponseTimeout` retries once, flagged possibly duplicated);
- ``add_listener(fn(name, up))`` for up/down changes, ``add_late_listener`` (late
  responses; may never call it); ``start()``, ``await stop()``, ``last_error``;
- receipts and MOs come back through the gateway's inbound handling
  (``InboundHandler.on_deliver_sm(name, pdu)``), so deduplication, persistence before the
  acknowledgement and MO processing are the same for every kind;
- its own send rate: the connection's ``tps`` (the dispatcher's token bucket per
  connection), plus routing prefixes, cost and weight (gateway/routing.py).

Kinds: ``smpp`` (gateway/esme.py), ``http`` (gateway/connectors/http.py), and any a package
registers in the entry point group ``smsgw.connectors`` (gateway/connectors/registry.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from gateway.smpp.codec import Pdu
from gateway.smpp.session import Pending

StateListener = Callable[[str, bool], None]
LateListener = Callable[[str, Pdu, Pending], None]


class Link(Protocol):
    """A live path to the network: what ``wait_bound`` returns."""

    async def request(self, command: str, params: dict[str, Any] | None = None, *,
                      context: Any = None) -> Pdu: ...


@runtime_checkable
class Connector(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def bound(self) -> bool: ...

    last_error: str

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def wait_bound(self) -> Link: ...

    def add_listener(self, listener: StateListener) -> None: ...

    def add_late_listener(self, listener: LateListener) -> None: ...
