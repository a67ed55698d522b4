"""How one outbox row becomes an HTTP request: a JSON POST, or a Kannel-style GET.

GET form: the subscription's URL carries placeholders, replaced by URL-encoded values
(Kannel's ``get-url`` escapes, the ones that make sense here):

  %p sender (the phone, for an MO; our number for a message)   %P receiver
  %a the text                %t time (YYYY-MM-DD HH:MM:SS, UTC)  %i SMSC connection name
  %I MO or message id        %d status of a message (delivered, failed, …)
  %k the keyword (first word of the text)                        %e the event name
  %% a literal percent sign

An unknown %x is left as it is. Example:
``http://crm.example/sms?from=%p&to=%P&text=%a&at=%t``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

_PLACEHOLDER = re.compile(r"%(.)")


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    url: str
    body: bytes  # what is signed (the query string for GET)
    content_type: str | None


def _time(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)


def placeholders(payload: dict[str, Any]) -> dict[str, str]:
    text = str(payload.get("text") or "")
    return {
        "p": str(payload.get("from") or ""),
        "P": str(payload.get("to") or ""),
        "a": text,
        "t": _time(payload.get("received_at") or payload.get("at")),
        "i": str(payload.get("connection") or ""),
        "I": str(payload.get("mo_id") or payload.get("message_id") or ""),
        "d": str(payload.get("status") or ""),
        "k": text.split(maxsplit=1)[0] if text.strip() else "",
        "e": str(payload.get("event") or ""),
        "%": "%",
    }


def expand(template: str, payload: dict[str, Any]) -> str:
    values = placeholders(payload)

    def one(m: re.Match[str]) -> str:
        key = m.group(1)
        if key == "%":
            return "%"
        return quote(values[key], safe="") if key in values else m.group(0)

    return _PLACEHOLDER.sub(one, template)


def build(form: str, url: str, body: str) -> Request:
    if form == "get":
        target = expand(url, json.loads(body))
        query = target.split("?", 1)[1] if "?" in target else ""
        return Request("GET", target, query.encode(), None)
    return Request("POST", url, body.encode(), "application/json")
