"""Operators' replacements of reply templates (commands/templates.py), by (lang, key).

Every change bumps the ``templates_version`` setting in its own transaction; each instance's
`commands.templates.OverrideCache` watches it and reloads, as the rules' cache does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.domain import settings
from store.events import dialect_insert
from store.models import settings as settings_table
from store.models import template_overrides as t

VERSION_KEY = "templates_version"


def get_version(conn: Connection) -> str | None:
    return settings.get(conn, VERSION_KEY)


def all_overrides(conn: Connection) -> dict[tuple[str, str], str]:
    return {(r.lang, r.key): r.text for r in conn.execute(sa.select(t.c.lang, t.c.key, t.c.text))}


def get(conn: Connection, lang: str, key: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(t).where(t.c.lang == lang, t.c.key == key)).first()
    return dict(row._mapping) if row is not None else None


def list_for(conn: Connection, lang: str) -> dict[str, dict[str, Any]]:
    return {r.key: dict(r._mapping) for r in conn.execute(sa.select(t).where(t.c.lang == lang))}


def put(conn: Connection, lang: str, key: str, text: str, *, now: datetime,
        by: str | None) -> None:
    """Store the override (the text already checked: commands.templates.check_override)."""
    values = {"text": text, "updated_at": now, "updated_by": by}
    conn.execute(dialect_insert(conn, t).values(lang=lang, key=key, **values)
                 .on_conflict_do_update(index_elements=["lang", "key"], set_=values))
    _bump_version(conn)


def delete(conn: Connection, lang: str, key: str) -> bool:
    """Back to the default; False when there was no override."""
    done = conn.execute(t.delete().where(t.c.lang == lang, t.c.key == key)).rowcount
    if done:
        _bump_version(conn)
    return bool(done)


def _bump_version(conn: Connection) -> None:
    """An atomic increment (not read-then-write): two concurrent edits leave two distinct
    versions, so no cache sees the first and misses the second."""
    s = settings_table
    conn.execute(dialect_insert(conn, s).values(key=VERSION_KEY, value="1").on_conflict_do_update(
        index_elements=["key"],
        set_={"value": sa.cast(sa.cast(s.c.value, sa.Integer) + 1, sa.String)}))
