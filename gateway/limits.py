"""The gateway's listener limits, from its settings (one place maps SMSGW_* to them)."""

from __future__ import annotations

from gateway.config import Settings
from gateway.http_server import HttpLimits
from gateway.smpp.listener import ListenerLimits


def smpp_listener_limits(s: Settings) -> ListenerLimits:
    return ListenerLimits(max_connections=s.smpp_max_connections,
                          max_per_source=s.smpp_max_connections_per_source,
                          bind_timeout=s.smpp_bind_timeout,
                          pdu_read_timeout=s.smpp_pdu_read_timeout,
                          max_unanswered=s.smpp_max_unanswered)


def api_http_limits(s: Settings) -> HttpLimits:
    return HttpLimits(max_connections=s.api_max_connections,
                      header_timeout=s.api_header_timeout,
                      keep_alive_timeout=s.api_keep_alive_timeout)
