"""An HTTP SMS provider as a connector, configured by data (the connections YAML).

    - name: cloudsms
      kind: http
      cost_per_part: 0.03
      tps: 20
      options:
        url: https://api.cloudsms.example/v1/messages
        method: POST                      # or GET (placeholders in the URL)
        headers: {Authorization: "Bearer s3cr3t"}
        content_type: application/json   # or application/x-www-form-urlencoded
        body: '{"to": "{to}", "from": "{from}", "text": "{text}"}'
        id_path: data.id                  # the provider's id in the JSON answer, or:
        # id_regex: 'id=(\\w+)'           # … the first group of a regex on the answer
        timeout: 10
        down_for: 5                       # seconds it counts as down after a failure
        inbound_token: "our-side-secret"  # receipts / MOs to us: Bearer <token>
        receipt: {id: id, status: status, error: error}   # JSON fields of a receipt
        mo: {from: from, to: to, text: text, id: id}      # JSON fields of an MO

Placeholders in url/body: {to} {from} {text} {part} {parts} {mt_id}, escaped for where they
stand (JSON string content, form or URL encoding). A long text is sent as its parts (the
part's own text, {part}/{parts} say which), each with its own provider id and receipt, the
same accounting as SMPP.

Outcomes: 2xx with an id → accepted; 429 → throttled (the connection pauses, order kept);
another 4xx → the message fails with the provider's answer; 5xx, refused or unreachable →
the connector counts as down for ``down_for`` s and the message goes back to the queue for
another connection (failover); no answer within ``timeout`` → retried once, flagged possibly
duplicated (as a missing submit_sm_resp).

Our side: POST /connectors/{name}/receipts and /connectors/{name}/mo (gateway/api/routes/
connector_inbound.py) with ``Authorization: Bearer <inbound_token>``. They become deliver_sm
PDUs for the gateway's inbound handling, committed before we answer 200.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

import httpx

from gateway.connectors import LateListener, StateListener
from gateway.routing import ConnectionsFileError, ConnectionSpec
from gateway.smpp import status as st
from gateway.smpp import text as smstext
from gateway.smpp.codec import Pdu
from gateway.smpp.connection import ConnectionClosed, ResponseTimeout

log = logging.getLogger("smsgw.connectors.http")

_PLACEHOLDER = re.compile(r"\{(to|from|text|part|parts|mt_id)\}")
_OPTION_KEYS = {"url", "method", "headers", "content_type", "body", "id_path", "id_regex",
                "timeout", "down_for", "inbound_token", "receipt", "mo"}


@dataclass(frozen=True, slots=True)
class HttpOptions:
    url: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    body: str = '{"to": "{to}", "from": "{from}", "text": "{text}"}'
    id_path: str | None = "id"
    id_regex: re.Pattern[str] | None = None
    timeout: float = 10.0
    down_for: float = 5.0
    inbound_token: str | None = None
    receipt: Mapping[str, str] = field(default_factory=lambda: {
        "id": "id", "status": "status", "error": "error"})
    mo: Mapping[str, str] = field(default_factory=lambda: {
        "from": "from", "to": "to", "text": "text", "id": "id"})


def parse_options(name: str, raw: Mapping[str, Any] | None) -> HttpOptions:
    where = f"connection {name!r} (kind http)"
    if not raw or not raw.get("url"):
        raise ConnectionsFileError(f"{where}: options.url is required")
    unknown = set(raw) - _OPTION_KEYS
    if unknown:
        raise ConnectionsFileError(f"{where}: unknown option(s) {sorted(unknown)} (allowed: "
                                   f"{', '.join(sorted(_OPTION_KEYS))})")
    method = str(raw.get("method", "POST")).upper()
    if method not in ("POST", "GET", "PUT"):
        raise ConnectionsFileError(f"{where}: method must be POST, PUT or GET")
    regex = None
    if raw.get("id_regex"):
        try:
            regex = re.compile(str(raw["id_regex"]))
        except re.error as exc:
            raise ConnectionsFileError(f"{where}: bad id_regex: {exc}") from None
        if regex.groups < 1:
            raise ConnectionsFileError(f"{where}: id_regex needs one group: the id")
    for key in ("headers", "receipt", "mo"):
        if raw.get(key) is not None and not isinstance(raw[key], Mapping):
            raise ConnectionsFileError(f"{where}: {key} must be a mapping")
    defaults = HttpOptions(url="")
    return HttpOptions(
        url=str(raw["url"]), method=method,
        headers={str(k): str(v) for k, v in (raw.get("headers") or {}).items()},
        content_type=str(raw.get("content_type", defaults.content_type)),
        body=str(raw.get("body", defaults.body)),
        id_path=None if regex is not None else str(raw.get("id_path", "id")),
        id_regex=regex, timeout=float(raw.get("timeout", 10.0)),
        down_for=float(raw.get("down_for", 5.0)),
        inbound_token=str(raw["inbound_token"]) if raw.get("inbound_token") else None,
        receipt={**defaults.receipt, **(raw.get("receipt") or {})},
        mo={**defaults.mo, **(raw.get("mo") or {})},
    )


def dig(data: Any, path: str) -> Any:
    """``data.id`` / ``$.messages.0.id`` in parsed JSON; None when absent."""
    for key in path.removeprefix("$").strip(".").split("."):
        if isinstance(data, Mapping):
            data = data.get(key)
        elif isinstance(data, list) and key.isdigit() and int(key) < len(data):
            data = data[int(key)]
        else:
            return None
    return data


def _escape(value: str, where: str) -> str:
    if where == "json":
        return json.dumps(value, ensure_ascii=False)[1:-1]
    if where == "form":
        return quote_plus(value)
    if where == "url":
        return quote(value, safe="")
    return value


def render(template: str, values: Mapping[str, str], where: str) -> str:
    return _PLACEHOLDER.sub(lambda m: _escape(values[m.group(1)], where), template)


class HttpTimeout(ResponseTimeout):
    """No answer in time: the dispatcher retries once, flagged possibly duplicated."""

    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)
        self.pending = None


class HttpConnector:
    """One HTTP provider; it is its own `Link` (no session to wait for)."""

    def __init__(self, spec: ConnectionSpec, options: HttpOptions, inbound: Any = None, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.spec = spec
        self.options = options
        self.inbound = inbound
        self.last_error = ""
        self.binds = 0
        self._up = asyncio.Event()
        self._listeners: list[StateListener] = []
        self._client = httpx.AsyncClient(transport=transport)
        self._revive: asyncio.TimerHandle | None = None
        self.endpoint = _Endpoint(spec.name, options.url)  # for GET /connections

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def bound(self) -> bool:
        return self._up.is_set()

    def start(self) -> None:
        self._set_up(True)

    async def stop(self) -> None:
        if self._revive is not None:
            self._revive.cancel()
        self._up.clear()
        await self._client.aclose()

    async def wait_bound(self) -> HttpConnector:
        await self._up.wait()
        return self

    def add_listener(self, listener: StateListener) -> None:
        self._listeners.append(listener)

    def add_late_listener(self, listener: LateListener) -> None:
        pass  # an HTTP answer is never late: it comes on its own request or not at all

    def _set_up(self, up: bool) -> None:
        if up == self.bound:
            return
        if up:
            self._up.set()
            self.binds += 1
        else:
            self._up.clear()
        for listener in list(self._listeners):
            try:
                listener(self.name, up)
            except Exception:
                log.exception("conn=%s state listener failed", self.name)

    def _down(self, why: str) -> None:
        self.last_error = why
        if not self.bound:
            return
        log.warning("conn=%s (http) down for %gs: %s", self.name, self.options.down_for, why)
        self._set_up(False)
        self._revive = asyncio.get_running_loop().call_later(
            self.options.down_for, self._set_up, True)

    # -- Link ---------------------------------------------------------------------------------

    async def request(self, command: str, params: dict[str, Any] | None = None, *,
                      context: Any = None) -> Pdu:
        if command != "submit_sm" or params is None:
            return Pdu("generic_nack", 0, st.ESME_RINVCMDID)
        if not self.bound:
            raise ConnectionClosed(f"{self.name} is down: {self.last_error}")
        o = self.options
        _concat, payload = smstext.parse_udh(params["short_message"], params.get("esm_class", 0))
        values = {
            "to": str(params["destination_addr"]), "from": str(params.get("source_addr", "")),
            "text": smstext.decode_text(payload, params.get("data_coding", 0)),
            "part": str(getattr(context, "part", 1)), "parts": str(getattr(context, "parts", 1)),
            "mt_id": str(getattr(context, "mt_id", "")),
        }
        form = "json" if "json" in o.content_type else "form"
        url = render(o.url, values, "url")
        content = None if o.method == "GET" else render(o.body, values, form).encode()
        headers = dict(o.headers)
        if content is not None:
            headers.setdefault("Content-Type", o.content_type)
        try:
            resp = await self._client.request(o.method, url, content=content, headers=headers,
                                              timeout=o.timeout)
        except httpx.TimeoutException as exc:
            raise HttpTimeout(f"{self.name}: no answer in {o.timeout:g}s") from exc
        except httpx.HTTPError as exc:
            self._down(f"{type(exc).__name__}: {exc}")
            raise ConnectionClosed(f"{self.name}: {exc}") from exc
        if resp.status_code == 429:
            return Pdu("submit_sm_resp", 0, st.ESME_RTHROTTLED)
        if resp.status_code >= 500:
            self._down(f"HTTP {resp.status_code}: {resp.text[:200]}")
            raise ConnectionClosed(f"{self.name}: HTTP {resp.status_code}")
        if resp.status_code >= 300:
            log.warning("conn=%s refused mt=%s: HTTP %d %s", self.name, values["mt_id"],
                        resp.status_code, resp.text[:200])
            return Pdu("submit_sm_resp", 0, st.ESME_RSUBMITFAIL)
        provider_id = self._id_of(resp)
        if not provider_id:
            log.error("conn=%s mt=%s: accepted (HTTP %d) but no id found in %r", self.name,
                      values["mt_id"], resp.status_code, resp.text[:200])
            return Pdu("submit_sm_resp", 0, st.ESME_RSUBMITFAIL)
        return Pdu("submit_sm_resp", 0, st.ESME_ROK, {"message_id": provider_id})

    def _id_of(self, resp: httpx.Response) -> str | None:
        if self.options.id_regex is not None:
            m = self.options.id_regex.search(resp.text)
            return m.group(1) if m else None
        try:
            found = dig(resp.json(), self.options.id_path or "id")
        except ValueError:
            return None
        return None if found is None or found == "" else str(found)

    # -- inbound (called by the API routes) ---------------------------------------------------

    def receipt_pdu(self, data: Mapping[str, Any]) -> Pdu:
        """A provider's receipt as the deliver_sm the inbound handling takes."""
        r = self.options.receipt
        pid = dig(data, r["id"])
        if pid in (None, ""):
            raise ValueError(f"receipt without an id (field {r['id']!r})")
        raw = str(dig(data, r["status"]) or "UNKNOWN")
        stat = _STATUS_WORDS.get(raw.strip().lower(), raw.strip().upper())
        err = dig(data, r.get("error", "error"))
        text = f"id:{pid} stat:{stat} err:{int(err) if str(err or '').isdigit() else 0:03d}"
        return Pdu("deliver_sm", 0, 0, {
            "esm_class": 0x04, "receipted_message_id": str(pid), "data_coding": 0,
            "source_addr": "", "destination_addr": "", "short_message": text.encode()})

    def mo_pdu(self, data: Mapping[str, Any]) -> Pdu:
        m = self.options.mo
        sender, to, text = dig(data, m["from"]), dig(data, m["to"]), dig(data, m["text"])
        if not sender or to is None or text is None:
            raise ValueError(f"an MO needs {m['from']!r}, {m['to']!r} and {m['text']!r}")
        text = str(text)
        try:
            raw, dc = text.encode("ascii"), 0
        except UnicodeEncodeError:
            raw, dc = text.encode("utf-16-be"), smstext.DC_UCS2
        params: dict[str, Any] = {"source_addr": str(sender), "destination_addr": str(to),
                                  "esm_class": 0, "data_coding": dc, "short_message": raw}
        mo_id = dig(data, m.get("id", "id"))
        if mo_id not in (None, ""):  # the provider's id decides redelivery exactly
            params["receipted_message_id"] = str(mo_id)
        return Pdu("deliver_sm", 0, 0, params)


# Provider status words → SMPP receipt stat (store/receipts.py RECEIPT_STATES).
_STATUS_WORDS = {"delivered": "DELIVRD", "failed": "UNDELIV", "undelivered": "UNDELIV",
                 "expired": "EXPIRED", "rejected": "REJECTD", "accepted": "ACCEPTD"}


@dataclass(frozen=True, slots=True)
class _Endpoint:
    name: str
    host: str
    port: int = 0
    system_id: str = ""
