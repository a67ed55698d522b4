"""The rules page's "try it" box: what a text from a phone would get, sent and written nowhere.

It runs the real engine (`commands.engine.prepare` / `process`, the rules as saved now) in a
store rehearsal (`Store.rehearse`: a transaction that is always rolled back), so the answer is
exactly what the gateway would do, and records the writes the handling made on the way (the
order it would create, the balance it would change…) to show them. No MO row is stored (the
engine runs with ``mo_id=None``), nothing is queued (the processor, not the engine, queues
replies; a handler's own writes are rolled back) and the dispatcher is never woken.

Not rehearsed: the sender rate limit and the error-storm guard (in-memory state of the
running processor) — the answer shown is the one a sender within its limits gets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Delete, Insert, Update

from commands import engine, pins
from commands.clock import local_time, local_today
from commands.context import Context, Outcome
from commands.parsed import Parsed
from commands.rules import RuleSet, rules_from_db, sender_profile
from store import fastsql
from store.store import Store

# Values never shown (hashes of PINs and passwords).
HIDDEN = re.compile(r"hash|password|secret", re.I)
WHERE_PARAM = re.compile(r"_\d+$")
DRIVER_SQL = re.compile(r"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)", re.I)


@dataclass(frozen=True, slots=True)
class Change:
    """One write the handling made (and the rehearsal rolled back)."""

    table: str
    action: str  # insert / update / delete
    rows: int
    values: dict[str, Any]


@dataclass(slots=True)
class TryResult:
    phone: str
    text: str
    reply: str | None
    lang: str
    command: str | None
    error: str | None
    disposition: str
    rule: str | None  # the rule that matched first, if any
    notices: list[tuple[str, str]] = field(default_factory=list)  # (to, text)
    changes: list[Change] = field(default_factory=list)


def disposition_of(outcome: Outcome) -> str:
    """How the MO would end, for a sender within its limits (gateway/mo_processor.py _commit
    decides the same way; rate limits and the storm guard are not rehearsed)."""
    if outcome.error == "INCOMPLETE":
        return "incomplete"
    if (outcome.command or "").startswith("FORWARD:"):
        return "forwarded"
    return "answered" if outcome.reply else "no_reply"


def _values(stmt: Any, multiparams: Any) -> dict[str, Any]:
    """The values a statement writes (its first row for a multi-row insert), hashes hidden,
    WHERE parameters (``id_1``…) left out."""
    if multiparams and isinstance(multiparams[0], dict):
        params = multiparams[0]
    else:
        try:
            params = stmt.compile().params
        except Exception:  # a statement that cannot compile on its own: show no values
            return {}
    return {k: ("…" if HIDDEN.search(k) else v) for k, v in params.items()
            if v is not None and not WHERE_PARAM.search(k)}


class _Result:
    def __init__(self, rowcount: int) -> None:
        self.rowcount = rowcount


class _WriteLog:
    """Collects the INSERT / UPDATE / DELETE statements executed on one connection (those
    that touched no row are dropped from the result: they change nothing)."""

    def __init__(self) -> None:
        self.changes: list[Change] = []

    def __call__(self, conn: Connection, stmt: Any, multiparams: Any, params: Any,
                 options: Any, result: Any) -> None:
        rows = max(getattr(result, "rowcount", 0) or 0, 0)
        if isinstance(stmt, Insert):
            self.changes.append(Change(stmt.table.name, "insert",
                                       max(rows, len(multiparams or ()), 1),
                                       _values(stmt, multiparams)))
        elif isinstance(stmt, Update):
            self.changes.append(Change(stmt.table.name, "update", rows,
                                       _values(stmt, multiparams)))
        elif isinstance(stmt, Delete):
            self.changes.append(Change(stmt.table.name, "delete", rows, {}))
        elif isinstance(stmt, sa.TextClause):
            self._sql(str(stmt), rows)

    def fast(self, stmt: Any, params: list[Any], rowcount: int) -> None:
        """Statements run on the cursor (store/fastsql.py), as after_execute would see them."""
        self(None, stmt, params, {}, None, _Result(rowcount))  # type: ignore[arg-type]

    def cursor(self, conn: Connection, cursor: Any, statement: str, parameters: Any,
               context: Any, executemany: bool) -> None:
        """``exec_driver_sql`` statements (no Core statement behind them)."""
        if context is None or context.compiled is None:
            self._sql(statement, max(getattr(cursor, "rowcount", 0) or 0, 0))

    def _sql(self, statement: str, rows: int) -> None:
        found = DRIVER_SQL.match(statement)
        if found:
            verb = found.group(1).split()[0].lower()
            self.changes.append(Change(found.group(2), verb, rows, {}))


async def try_text(store: Store, phone: str, text: str, *,
                   now: datetime | None = None) -> TryResult:
    """What ``phone`` texting ``text`` would get now; ``phone`` is canonical."""
    now = now or datetime.now(UTC)
    prepared = engine.prepare(text, local_today(now))
    parsed = prepared.result
    # As the processor does: the PIN is checked on a read connection first (a not yet
    # upgraded scrypt hash is slow), then handed to the engine.
    pin = (await store.read(lambda c: pins.check(c, phone, parsed))
           if isinstance(parsed, Parsed) and pins.pin_in(parsed) is not None else None)

    def run(conn: Connection) -> TryResult:
        rules = RuleSet(rules_from_db(conn))  # as saved now, not as last cached
        role, groups = sender_profile(conn, phone)
        matched = rules.match(text_normalised=prepared.normalised, keyword=prepared.keyword,
                              role=role, groups=groups, local_time=local_time(now))
        log = _WriteLog()
        sa.event.listen(conn, "after_execute", log)
        sa.event.listen(conn, "after_cursor_execute", log.cursor)
        conn.info[fastsql.HOOK] = log.fast
        try:
            ctx = Context(conn=conn, phone=phone, now=now, today=local_today(now), mo_id=None,
                          pin_ok=pin.ok if pin else None,
                          pin_rehash=pin.rehash if pin else None)
            outcome = engine.process(ctx, prepared, rules)
        finally:
            sa.event.remove(conn, "after_execute", log)
            sa.event.remove(conn, "after_cursor_execute", log.cursor)
            conn.info.pop(fastsql.HOOK, None)
        return TryResult(phone=phone, text=text, reply=outcome.reply, lang=outcome.lang,
                         command=outcome.command, error=outcome.error,
                         disposition=disposition_of(outcome),
                         rule=matched.name if matched is not None else None,
                         notices=[(n.to, n.text) for n in outcome.notices],
                         changes=[ch for ch in log.changes if ch.rows])

    return await store.rehearse(run)
