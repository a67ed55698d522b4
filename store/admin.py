"""Admin API storage: API keys, the audit log, and the listing / reporting queries.

Listings use keyset ("cursor") pagination on the primary key, newest first: the cursor is the
last id of a page, so a page never repeats or skips rows that existed when the walk began,
however many rows arrive meanwhile (OFFSET would shift under new rows).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from commands.secrets import mask
from store.models import (
    accounts,
    api_keys,
    audit_log,
    inbound_messages,
    orders,
    outbound_messages,
    sales_lines,
    sales_reports,
    serial_events,
    stock_counts,
    stock_lines,
)

KEY_PREFIX = "smsgw_"
PREFIX_CHARS = 12  # shown in listings: "smsgw_" + 6 characters of the token
ROLE_RANK = {"viewer": 0, "operator": 1, "admin": 2}

# ---------------------------------------------------------------------------------------------
# API keys
# ---------------------------------------------------------------------------------------------


def hash_key(key: str) -> str:
    """SHA-256 hex. Keys carry 256 random bits, so no salt or slow KDF is needed: there is no
    dictionary to search, and lookups stay one indexed equality."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    role: str
    prefix: str


def create_api_key(conn: Connection, *, name: str, role: str, now: datetime,
                   created_by: str | None = None) -> tuple[int, str]:
    """Create a key; returns (id, the key). The key itself is never stored or shown again."""
    if role not in ROLE_RANK:
        raise ValueError(f"role must be one of {', '.join(ROLE_RANK)}, not {role!r}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = conn.execute(
        api_keys.insert().values(name=name, role=role, prefix=key[:PREFIX_CHARS],
                                 key_hash=hash_key(key), created_at=now, created_by=created_by)
        .returning(api_keys.c.id)
    ).scalar_one()
    return int(key_id), key


def find_api_key(conn: Connection, key: str) -> ApiKey | None:
    """The live (not revoked) key matching ``key``.

    Looked up by its public prefix, then the hashes compared in constant time
    (hmac.compare_digest), so the answer time tells nothing about how close a guess was.
    """
    if not key.startswith(KEY_PREFIX) or len(key) < PREFIX_CHARS:
        return None
    wanted = hash_key(key)
    rows = conn.execute(
        sa.select(api_keys.c.id, api_keys.c.name, api_keys.c.role, api_keys.c.prefix,
                  api_keys.c.key_hash)
        .where(api_keys.c.prefix == key[:PREFIX_CHARS], api_keys.c.revoked_at.is_(None))
    ).all()
    found = None
    for row in rows:  # every candidate compared: no early exit on the first match
        if hmac.compare_digest(row.key_hash, wanted):
            found = ApiKey(int(row.id), row.name, row.role, row.prefix)
    return found


def any_api_key(conn: Connection) -> bool:
    """Whether any key (even a revoked one) was ever created."""
    return conn.execute(sa.select(api_keys.c.id).limit(1)).first() is not None


def create_first_admin_key(conn: Connection, *, now: datetime) -> tuple[int, str] | None:
    """On first start: an admin key when no key was ever created, else None (never a second
    one: a revoked first key does not bring the bootstrap back)."""
    if any_api_key(conn):
        return None
    return create_api_key(conn, name="first-start-admin", role="admin", now=now,
                          created_by="smsgw up")


def list_api_keys(conn: Connection) -> list[dict[str, Any]]:
    cols = [c for c in api_keys.c if c.name != "key_hash"]
    return [dict(r._mapping) for r in conn.execute(sa.select(*cols).order_by(api_keys.c.id))]


def get_api_key(conn: Connection, key_id: int) -> dict[str, Any] | None:
    cols = [c for c in api_keys.c if c.name != "key_hash"]
    row = conn.execute(sa.select(*cols).where(api_keys.c.id == key_id)).first()
    return None if row is None else dict(row._mapping)


def revoke_api_key(conn: Connection, key_id: int, *, now: datetime) -> bool:
    done = conn.execute(
        api_keys.update().where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now))
    return bool(done.rowcount)


# ---------------------------------------------------------------------------------------------
# Audit log
# ---------------------------------------------------------------------------------------------


def to_jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return value


# Never in an audit row, whatever a caller passes as before/after.
SECRET_FIELDS = frozenset({"password", "password_hash", "key_hash", "pin_hash"})


def _redact(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: "(secret)" if k in SECRET_FIELDS else _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def _dump(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(_redact(to_jsonable(value)), ensure_ascii=False, sort_keys=True)


def audit(conn: Connection, *, now: datetime, key_id: int | None, key_name: str, method: str,
          path: str, resource: str, resource_id: object = None, before: Any = None,
          after: Any = None) -> int:
    """Record one change; call it in the change's own transaction."""
    return int(conn.execute(
        audit_log.insert().values(
            at=now, key_id=key_id, key_name=key_name[:64], method=method[:8], path=path[:255],
            resource=resource[:32],
            resource_id=None if resource_id is None else str(resource_id)[:64],
            before=_dump(before), after=_dump(after))
        .returning(audit_log.c.id)
    ).scalar_one())


def list_audit(conn: Connection, *, resource: str | None = None,
               resource_id: str | None = None, key_id: int | None = None,
               before_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    q = sa.select(audit_log)
    if resource is not None:
        q = q.where(audit_log.c.resource == resource)
    if resource_id is not None:
        q = q.where(audit_log.c.resource_id == resource_id)
    if key_id is not None:
        q = q.where(audit_log.c.key_id == key_id)
    if before_id is not None:
        q = q.where(audit_log.c.id < before_id)
    out = []
    for r in conn.execute(q.order_by(audit_log.c.id.desc()).limit(limit)):
        row = dict(r._mapping)
        for k in ("before", "after"):
            row[k] = json.loads(row[k]) if row[k] is not None else None
        out.append(row)
    return out


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------


def list_messages(conn: Connection, *, direction: str, phone: str | None = None,
                  status: str | None = None, since: datetime | None = None,
                  until: datetime | None = None, connection: str | None = None,
                  broadcast_id: int | None = None, before_id: int | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
    """One direction's messages, newest first, ids below ``before_id`` (the cursor).
    ``broadcast_id`` selects a broadcast's MTs (MOs belong to none: an MO search finds
    nothing)."""
    if direction == "out":
        t = outbound_messages
        phone_col, time_col = t.c.dest_addr, t.c.created_at
        cols = [c for c in t.c]
    else:
        t = inbound_messages
        phone_col, time_col = t.c.source_addr, t.c.received_at
        cols = [c for c in t.c if c.name != "short_message"]
    q = sa.select(*cols)
    if phone is not None:
        q = q.where(phone_col == phone.lstrip("+"))
    if status is not None:
        q = q.where(t.c.status == status)
    if since is not None:
        q = q.where(time_col >= since)
    if until is not None:
        q = q.where(time_col < until)
    if connection is not None:
        q = q.where(t.c.connection == connection)
    if broadcast_id is not None:
        if direction != "out":
            return []
        q = q.where(t.c.broadcast_id == broadcast_id)
    if before_id is not None:
        q = q.where(t.c.id < before_id)
    rows = conn.execute(q.order_by(t.c.id.desc()).limit(limit))
    return [_masked({"direction": direction, **r._mapping}) for r in rows]


def _masked(item: dict[str, Any]) -> dict[str, Any]:
    """An MO as the API shows it: secrets masked even while it is still being processed
    (store/inbound.py masks the stored row when processing commits)."""
    if item["direction"] == "in":
        item["text"] = mask(item["text"])
    return item


def interactions(conn: Connection, phone: str, *, since: datetime | None = None,
                 limit: int = 1000) -> list[dict[str, Any]]:
    """Every MO from and MT to ``phone`` (canonical: the caller normalises), oldest first
    (ties: MO before its reply).

    An MO shows its disposition (how it ended: answered, replayed_duplicate, rate_limited,
    reply_suppressed, ...; store.models.MO_DISPOSITIONS) and, for an SMSC redelivery, the
    MO it repeats (``duplicate_of``)."""
    mo, mt = inbound_messages, outbound_messages
    q_in = sa.select(mo.c.id, mo.c.received_at.label("at"), mo.c.text, mo.c.status,
                     mo.c.command, mo.c.connection, mo.c.disposition,
                     mo.c.duplicate_of).where(mo.c.source_addr == phone)
    q_out = sa.select(mt.c.id, mt.c.created_at.label("at"), mt.c.text, mt.c.status,
                      mt.c.in_reply_to, mt.c.connection).where(mt.c.dest_addr == phone)
    if since is not None:
        q_in = q_in.where(mo.c.received_at >= since)
        q_out = q_out.where(mt.c.created_at >= since)
    items = [_masked({"direction": "in", **r._mapping})
             for r in conn.execute(q_in.order_by(mo.c.id).limit(limit))]
    items += [{"direction": "out", **r._mapping}
              for r in conn.execute(q_out.order_by(mt.c.id).limit(limit))]
    items.sort(key=lambda x: (x["at"], 0 if x["direction"] == "in" else 1, x["id"]))
    return items[:limit]


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------


def _counts(conn: Connection, q: sa.Select[Any]) -> dict[str, int]:
    return {str(k) if k is not None else "": int(n) for k, n in conn.execute(q)}


def statistics(conn: Connection, *, since: datetime | None = None,
               until: datetime | None = None) -> dict[str, Any]:
    mo, mt = inbound_messages, outbound_messages

    def window(q: sa.Select[Any], col: sa.ColumnElement[Any]) -> sa.Select[Any]:
        if since is not None:
            q = q.where(col >= since)
        if until is not None:
            q = q.where(col < until)
        return q

    n = sa.func.count()
    out_status = _counts(conn, window(sa.select(mt.c.status, n).group_by(mt.c.status),
                                      mt.c.created_at))
    in_status = _counts(conn, window(sa.select(mo.c.status, n).group_by(mo.c.status),
                                     mo.c.received_at))
    out_conn = _counts(conn, window(sa.select(mt.c.connection, n).group_by(mt.c.connection),
                                    mt.c.created_at))
    in_conn = _counts(conn, window(sa.select(mo.c.connection, n).group_by(mo.c.connection),
                                   mo.c.received_at))
    by_command = _counts(conn, window(sa.select(mo.c.command, n).where(
        mo.c.command.is_not(None)).group_by(mo.c.command), mo.c.received_at))
    days: dict[str, dict[str, int]] = {}
    for direction, t, col in (("in", mo, mo.c.received_at), ("out", mt, mt.c.created_at)):
        day = sa.func.date(col)
        for d, count in conn.execute(window(sa.select(day, n).select_from(t).group_by(day),
                                            col)):
            days.setdefault(str(d), {"in": 0, "out": 0})[direction] = int(count)
    return {
        "by_direction": {"in": sum(in_status.values()), "out": sum(out_status.values())},
        "by_status": {"in": in_status, "out": out_status},
        "by_connection": {"in": in_conn, "out": out_conn},
        "by_command": by_command,
        "by_day": [{"day": d, **v} for d, v in sorted(days.items())],
    }


def costs(conn: Connection, *, since: datetime | None = None,
          until: datetime | None = None) -> dict[str, Any]:
    """What the MTs cost (``cost_millis``, recorded per message when submitted), in 1/1000
    of the currency unit: ``by_day`` [{day, millis}] (UTC days) and ``by_connection``."""
    mt = outbound_messages
    total = sa.func.coalesce(sa.func.sum(mt.c.cost_millis), 0)
    base = sa.select().select_from(mt).where(mt.c.cost_millis.is_not(None))
    if since is not None:
        base = base.where(mt.c.created_at >= since)
    if until is not None:
        base = base.where(mt.c.created_at < until)
    day = sa.func.date(mt.c.created_at)
    by_day = [{"day": str(d), "millis": int(m)} for d, m in conn.execute(
        base.add_columns(day, total).group_by(day).order_by(day))]
    by_conn = {str(c or "-"): int(m) for c, m in conn.execute(
        base.add_columns(mt.c.connection, total).group_by(mt.c.connection))}
    return {"by_day": by_day, "by_connection": by_conn,
            "total_millis": sum(d["millis"] for d in by_day)}


# ---------------------------------------------------------------------------------------------
# Orders and collected data
# ---------------------------------------------------------------------------------------------


def list_orders(conn: Connection, *, status: str | None = None, account_id: int | None = None,
                since: datetime | None = None, until: datetime | None = None,
                before_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    q = sa.select(orders, accounts.c.account_no, accounts.c.name.label("account_name")).join(
        accounts, accounts.c.id == orders.c.account_id)
    if status is not None:
        q = q.where(orders.c.status == status)
    if account_id is not None:
        q = q.where(orders.c.account_id == account_id)
    if since is not None:
        q = q.where(orders.c.created_at >= since)
    if until is not None:
        q = q.where(orders.c.created_at < until)
    if before_id is not None:
        q = q.where(orders.c.id < before_id)
    return [dict(r._mapping) for r in conn.execute(q.order_by(orders.c.id.desc()).limit(limit))]


@dataclass(frozen=True, slots=True)
class DataFilter:
    account_id: int | None = None
    route: str | None = None
    product_code: str | None = None
    since: date | None = None
    until: date | None = None  # inclusive


def _account_filter(q: sa.Select[Any], f: DataFilter, account_col: sa.Column[Any]
                    ) -> sa.Select[Any]:
    if f.account_id is not None:
        q = q.where(account_col == f.account_id)
    if f.route is not None:
        q = q.where(accounts.c.route == f.route)
    return q


SALES_COLUMNS = ("report_id", "report_date", "account_id", "account_no", "account_name",
                 "route", "product_code", "qty", "price_cents", "cost_cents")


def sales(conn: Connection, f: DataFilter, *, limit: int = 10_000) -> list[dict[str, Any]]:
    """Sales report lines (one row per reported product), newest report first."""
    q = (sa.select(sales_reports.c.id.label("report_id"), sales_reports.c.report_date,
                   sales_reports.c.account_id, accounts.c.account_no,
                   accounts.c.name.label("account_name"), accounts.c.route,
                   sales_lines.c.product_code, sales_lines.c.qty, sales_lines.c.price_cents,
                   sales_lines.c.cost_cents)
         .select_from(sales_lines.join(sales_reports).join(
             accounts, accounts.c.id == sales_reports.c.account_id)))
    q = _account_filter(q, f, sales_reports.c.account_id)
    if f.product_code is not None:
        q = q.where(sales_lines.c.product_code == f.product_code)
    if f.since is not None:
        q = q.where(sales_reports.c.report_date >= f.since)
    if f.until is not None:
        q = q.where(sales_reports.c.report_date <= f.until)
    q = q.order_by(sales_reports.c.report_date.desc(), sales_reports.c.id.desc(),
                   sales_lines.c.product_code).limit(limit)
    return [dict(r._mapping) for r in conn.execute(q)]


STOCK_COLUMNS = ("count_id", "count_date", "account_id", "account_no", "account_name", "route",
                 "product_code", "qty")


def stock(conn: Connection, f: DataFilter, *, limit: int = 10_000) -> list[dict[str, Any]]:
    q = (sa.select(stock_counts.c.id.label("count_id"), stock_counts.c.count_date,
                   stock_counts.c.account_id, accounts.c.account_no,
                   accounts.c.name.label("account_name"), accounts.c.route,
                   stock_lines.c.product_code, stock_lines.c.qty)
         .select_from(stock_lines.join(stock_counts).join(
             accounts, accounts.c.id == stock_counts.c.account_id)))
    q = _account_filter(q, f, stock_counts.c.account_id)
    if f.product_code is not None:
        q = q.where(stock_lines.c.product_code == f.product_code)
    if f.since is not None:
        q = q.where(stock_counts.c.count_date >= f.since)
    if f.until is not None:
        q = q.where(stock_counts.c.count_date <= f.until)
    q = q.order_by(stock_counts.c.count_date.desc(), stock_counts.c.id.desc(),
                   stock_lines.c.product_code).limit(limit)
    return [dict(r._mapping) for r in conn.execute(q)]


SERIAL_COLUMNS = ("id", "at", "account_id", "account_no", "account_name", "route", "serial",
                  "is_imei", "duplicate", "mo_id")


def serials(conn: Connection, f: DataFilter, *, serial: str | None = None,
            duplicate: bool | None = None, limit: int = 10_000) -> list[dict[str, Any]]:
    se = serial_events
    q = (sa.select(se.c.id, se.c.at, se.c.account_id, accounts.c.account_no,
                   accounts.c.name.label("account_name"), accounts.c.route, se.c.serial,
                   se.c.is_imei, se.c.duplicate, se.c.mo_id)
         .select_from(se.join(accounts, accounts.c.id == se.c.account_id)))
    q = _account_filter(q, f, se.c.account_id)
    if serial is not None:
        q = q.where(se.c.serial == serial)
    if duplicate is not None:
        q = q.where(se.c.duplicate == duplicate)
    if f.since is not None:
        q = q.where(se.c.at >= datetime.combine(f.since, time(0), UTC))
    if f.until is not None:
        q = q.where(se.c.at < datetime.combine(f.until + timedelta(days=1), time(0), UTC))
    return [dict(r._mapping) for r in conn.execute(q.order_by(se.c.id.desc()).limit(limit))]


def rows_to_csv(rows: Iterable[Mapping[str, Any]], columns: Iterable[str]) -> str:
    import csv
    import io

    cols = list(columns)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(cols)
    for row in rows:
        writer.writerow([to_jsonable(row.get(c)) if row.get(c) is not None else ""
                         for c in cols])
    return buf.getvalue()


def connection_activity(conn: Connection, *, since: datetime) -> dict[str, dict[str, int]]:
    """Per connection since ``since``: MTs submitted, and MTs failed / rejected."""
    from store.models import message_events as ev

    mt = outbound_messages
    q = (sa.select(mt.c.connection, ev.c.status, sa.func.count())
         .select_from(ev.join(mt, sa.and_(ev.c.direction == "out", ev.c.message_id == mt.c.id)))
         .where(ev.c.at >= since, ev.c.status.in_(("submitted", "failed", "rejected")),
                mt.c.connection.is_not(None))
         .group_by(mt.c.connection, ev.c.status))
    out: dict[str, dict[str, int]] = {}
    for name, status, n in conn.execute(q):
        entry = out.setdefault(str(name), {"submitted": 0, "errors": 0})
        entry["submitted" if status == "submitted" else "errors"] += int(n)
    return out


def per_minute(conn: Connection, *, since: datetime) -> dict[str, dict[str, int]]:
    """MOs received and MTs created per minute since ``since``: {"YYYY-MM-DD HH:MM" (UTC):
    {"in": n, "out": n}} (minutes without traffic absent). For the console's traffic chart."""
    out: dict[str, dict[str, int]] = {}
    for direction, t, col in (("in", inbound_messages, inbound_messages.c.received_at),
                              ("out", outbound_messages, outbound_messages.c.created_at)):
        if conn.dialect.name == "postgresql":
            minute: sa.ColumnElement[Any] = sa.func.to_char(
                sa.func.timezone("UTC", col), "YYYY-MM-DD HH24:MI")
        else:  # SQLite keeps UTC text
            minute = sa.func.strftime("%Y-%m-%d %H:%M", col)
        q = sa.select(minute, sa.func.count()).select_from(t).where(col >= since).group_by(minute)
        for m, n in conn.execute(q):
            out.setdefault(str(m), {"in": 0, "out": 0})[direction] = int(n)
    return out


def queue_depth(conn: Connection) -> dict[int, int]:
    """MTs waiting to be sent (queued), by priority."""
    mt = outbound_messages
    q = (sa.select(mt.c.priority, sa.func.count()).where(mt.c.status == "queued")
         .group_by(mt.c.priority))
    return {int(p): int(n) for p, n in conn.execute(q)}
