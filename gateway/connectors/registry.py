"""Connector kinds: the built-ins and those registered under the entry point group
``smsgw.connectors``.

A kind is a factory ``make(spec, ctx) -> Connector``: ``spec`` the connection's
`ConnectionSpec` (its ``kind`` and ``options``, the YAML entry's ``options`` mapping), ``ctx``
a `ConnectorContext` (the inbound handler receipts and MOs go to, the settings). A package
adds one with, in its pyproject.toml::

    [project.entry-points."smsgw.connectors"]
    mykind = "mypackage.connector:make"
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from gateway.connectors import Connector
from gateway.routing import ConnectionsFileError, ConnectionSpec

log = logging.getLogger("smsgw.connectors")

GROUP = "smsgw.connectors"


@dataclass(frozen=True, slots=True)
class ConnectorContext:
    inbound: Any  # gateway.inbound.InboundHandler: on_deliver_sm(name, pdu, session=None)
    settings: Any  # gateway.config.Settings


Factory = Callable[[ConnectionSpec, ConnectorContext], Connector]


def _smpp(spec: ConnectionSpec, ctx: ConnectorContext) -> Connector:
    from gateway.esme import EsmeClient, SmscEndpoint
    from gateway.smpp.session import SessionConfig

    s = ctx.settings
    return EsmeClient(
        SmscEndpoint(spec.name, spec.host or "127.0.0.1", spec.port, spec.system_id,
                     spec.password, spec.system_type, tls=spec.tls, tls_ca=spec.tls_ca,
                     tls_verify=spec.tls_verify),
        ctx.inbound.on_deliver_sm,
        session_config=SessionConfig(
            window=spec.window, response_timeout=s.response_timeout,
            enquire_link_interval=s.enquire_link_interval,
            enquire_link_timeout=s.enquire_link_timeout, max_pdu_length=s.max_pdu_length),
        reconnect_min=s.reconnect_min, reconnect_max=s.reconnect_max)


def _http(spec: ConnectionSpec, ctx: ConnectorContext) -> Connector:
    from gateway.connectors.http import HttpConnector, parse_options

    return HttpConnector(spec, parse_options(spec.name, spec.options), ctx.inbound)


BUILTIN: dict[str, Factory] = {"smpp": _smpp, "http": _http}


def kinds() -> dict[str, Factory | Any]:
    """Every known kind: built-ins first (a plug-in cannot replace them)."""
    out: dict[str, Any] = {}
    for ep in entry_points(group=GROUP):
        out.setdefault(ep.name, ep)
    out.update(BUILTIN)
    return out


def build(spec: ConnectionSpec, ctx: ConnectorContext) -> Connector:
    found = kinds().get(spec.kind)
    if found is None:
        raise ConnectionsFileError(
            f"connection {spec.name!r}: unknown kind {spec.kind!r} (known: "
            f"{', '.join(sorted(kinds()))}; plug-ins register in the entry point group "
            f"{GROUP!r})")
    factory = found if callable(found) and not hasattr(found, "load") else found.load()
    connector = factory(spec, ctx)
    if not isinstance(connector, Connector):
        raise ConnectionsFileError(f"connection {spec.name!r}: kind {spec.kind!r} made "
                                   f"{type(connector).__name__}, which is not a Connector")
    return connector
