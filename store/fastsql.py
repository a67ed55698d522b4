"""Hot-path statements run straight on the DBAPI cursor, compiled once per dialect.

Profiling the MO round trip (issue 10) showed SQLAlchemy's per-execution machinery —
execution context, cache key, result object, Row construction — costing 25-80 µs a
statement where the SQLite call itself costs 3-6 µs; at ~20 statements a message that was
most of the gateway's CPU. A `FastStatement` wraps a Core statement built once at import:
its SQL string, parameter order and type processors are taken from SQLAlchemy's own
compilation (so the SQL and the stored formats are exactly what `conn.execute` would use),
and each execution is one cursor call inside the caller's transaction.

Kept from SQLAlchemy: bind and result type processing (UTCDateTime, Boolean, binary), and
errors — a DBAPI error is raised as SQLAlchemy's wrapped exception and a lost connection is
invalidated, so the writer's outage handling (store/db.py `is_unavailable`) sees the same
thing. Expanding IN parameters (``bindparam(..., expanding=True)``) are compiled once per
length bucket (`_bucket`), the list padded with its last value. Not supported (refused at
compile time, so a misuse is found by any test): Python-side column defaults.
"""

from __future__ import annotations

import contextlib
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BindParameter

# Observers of executed SQL (the e2e benchmark's statement counter): called with
# (sql, executemany) for every execution, as SQLAlchemy's before_cursor_execute would be.
OBSERVERS: list[Callable[[str, bool], None]] = []

_NO_PARAMS: Mapping[str, Any] = {}
_REQUIRED = object()  # a bind parameter with no default: the caller must give it
# conn.info key of a callable(statement, parameter sets, rowcount) told of every execution on
# that connection (SQLAlchemy's after_execute does not see these).
HOOK = "smsgw_fastsql_hook"
T = TypeVar("T")


class _Compiled:
    __slots__ = (
        "binders",
        "columns",
        "defaults",
        "dialect",
        "expanding",
        "known",
        "lengths",
        "names",
        "plan",
        "positional",
        "readers",
        "row",
        "sql",
    )

    def __init__(self, stmt: sa.ClauseElement, dialect: Dialect,
                 keys: Sequence[str] | None, lengths: Mapping[str, int] | None = None) -> None:
        column_keys = list(keys) if keys else None
        compiled = stmt.compile(dialect=dialect, column_keys=column_keys)
        if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch",
                                                                 None):
            raise TypeError("FastStatement: Python-side column defaults are not supported")
        binds = compiled.binds
        self.expanding = tuple(n for n, b in binds.items() if b.expanding)
        self.lengths: dict[str, int] = {}
        if self.expanding:
            # IN lists: compiled once per list length, rendered as name_1 ... name_n, the way
            # SQLAlchemy renders them at execution. The values given here only shape the SQL.
            assert lengths is not None
            self.lengths = dict(lengths)
            shape: dict[str, Any] = {n: list(range(lengths[n])) for n in self.expanding}
            for n, b in binds.items():
                if n not in shape and b.required and b.value is None and b.callable is None:
                    shape[n] = None
            compiled = _with_values(stmt, shape).compile(
                dialect=dialect, column_keys=column_keys,
                compile_kwargs={"render_postcompile": True})
        self.sql: str = compiled.string
        self.positional: bool = bool(compiled.positional)
        self.names: tuple[str, ...] = (tuple(compiled.positiontup or ()) if self.positional
                                       else tuple(binds))
        self.known = frozenset(binds)
        # Literal values built into the statement (.values(status="queued")) and defaults.
        self.defaults: dict[str, Any] = {
            name: b.effective_value for name, b in binds.items()
            if not (b.required and b.value is None and b.callable is None)
            and not b.expanding}
        self.binders: dict[str, Callable[[Any], Any]] = {}
        for name, b in binds.items():
            proc = b.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                self.binders[name] = proc
        # Without IN lists, the values in execution order, each with its processor and
        # default, straight from the caller's mapping: no intermediate dict (most statements).
        self.plan: tuple[tuple[str, Callable[[Any], Any] | None, Any], ...] | None = None
        if not self.expanding:
            self.plan = tuple((n, self.binders.get(n), self.defaults.get(n, _REQUIRED))
                              for n in self.names)
        self.columns = _result_columns(stmt)
        self.dialect = dialect
        self.row: type | None = None
        # Result processors need the driver's column types (PostgreSQL numerics): made at
        # the first fetch, from the cursor's description.
        self.readers: tuple[Callable[[Any], Any] | None, ...] | None = None
        if self.columns:
            self.row = namedtuple("Row", [c.key for c in self.columns], rename=True)  # type: ignore[misc]

    def make_readers(self, description: Sequence[Any]) -> None:
        d = self.dialect
        self.readers = tuple(c.type.dialect_impl(d).result_processor(d, desc[1])
                             for c, desc in zip(self.columns, description, strict=True))

    def params(self, given: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        if not given.keys() <= self.known:  # a typo must not silently store NULL
            raise KeyError(f"FastStatement: unknown parameter(s) {set(given) - self.known}")
        if self.plan is not None:
            return self._planned(given)
        values = {**self.defaults, **given} if self.defaults else dict(given)
        try:
            for name in self.expanding:
                items = list(values.pop(name))
                # Padded to the compiled length with its last value: IN (a, b, b) is IN (a, b).
                items += items[-1:] * (self.lengths[name] - len(items))
                proc = self.binders.get(name)
                for i, v in enumerate(items, 1):
                    values[f"{name}_{i}"] = v if proc is None else proc(v)
            for name, proc in self.binders.items():
                if name in values and name not in self.expanding:
                    values[name] = proc(values[name])
        except Exception as exc:  # as SQLAlchemy reports a value its type refuses
            raise sa.exc.StatementError(str(exc), self.sql, dict(given), exc) from exc
        if self.positional:
            return tuple(values[n] for n in self.names)
        return values

    def _planned(self, given: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        assert self.plan is not None
        out: list[Any] = []
        try:
            for name, proc, default in self.plan:
                value = given.get(name, default)
                if value is _REQUIRED:
                    raise KeyError(name)  # as the unplanned path: a missing value is a bug
                out.append(value if proc is None else proc(value))
        except KeyError:
            raise
        except Exception as exc:  # as SQLAlchemy reports a value its type refuses
            raise sa.exc.StatementError(str(exc), self.sql, dict(given), exc) from exc
        if self.positional:
            return tuple(out)
        return dict(zip(self.names, out, strict=True))

    def convert(self, raw: Sequence[Any]) -> Any:
        assert self.row is not None and self.readers is not None
        return self.row._make([v if r is None or v is None else r(v)  # type: ignore[attr-defined]
                               for r, v in zip(self.readers, raw, strict=True)])


def _with_values(stmt: sa.ClauseElement, values: Mapping[str, Any]) -> sa.ClauseElement:
    """``stmt`` with these bind parameters given values (``Select.params`` for any statement,
    DML included)."""
    def replace(element: Any) -> Any:
        if isinstance(element, BindParameter) and element.key in values:
            return sa.bindparam(element.key, values[element.key], type_=element.type,
                                expanding=element.expanding)
        return None

    return visitors.replacement_traverse(stmt, {}, replace)  # type: ignore[no-any-return]


def _bucket(n: int) -> int:
    """The IN-list length a list of n values is compiled for: n up to 8, then the next power
    of two — a dozen compiled forms per statement instead of one per batch size."""
    return n if n <= 8 else 1 << (n - 1).bit_length()


def _lengths_for_probe(stmt: sa.ClauseElement, dialect: Dialect,
                       keys: Sequence[str] | None) -> dict[str, int]:
    """Lengths (1) for the expanding parameters of ``stmt``, to compile its base form."""
    binds = stmt.compile(dialect=dialect, column_keys=list(keys) if keys else None).binds
    return {n: 1 for n, b in binds.items() if b.expanding}


def _result_columns(stmt: sa.ClauseElement) -> list[Any]:
    if isinstance(stmt, sa.Select):
        return list(stmt.selected_columns)
    returning = getattr(stmt, "_returning", ())
    return list(returning)


class FastStatement:
    """A Core statement run on the raw cursor of the caller's connection (see module doc)."""

    __slots__ = ("_built", "_compiled", "_variants", "keys", "stmt")

    def __init__(self, stmt: sa.ClauseElement | Callable[[Connection], sa.ClauseElement],
                 *, keys: Sequence[str] | None = None) -> None:
        """``stmt``: the statement, or a function of the connection building it (for
        dialect-specific forms such as ON CONFLICT), called once per dialect. ``keys``: for
        a bare ``table.insert()``, the columns every execution gives (as SQLAlchemy derives
        them from the first parameter set)."""
        self.stmt = stmt
        self.keys = tuple(keys) if keys else None
        # By dialect object: every engine of one URL kind shares the statement's compiled form
        # only through its own dialect (compilation depends on its settings).
        self._compiled: dict[int, tuple[Dialect, _Compiled]] = {}
        self._built: dict[int, sa.ClauseElement] = {}
        # Statements with IN lists: one compiled form per (dialect, list lengths).
        self._variants: dict[tuple[int, tuple[int, ...]], _Compiled] = {}

    def _for(self, conn: Connection, params: Mapping[str, Any]) -> _Compiled:
        dialect = conn.dialect
        entry = self._compiled.get(id(dialect))
        if entry is None or entry[0] is not dialect:
            stmt = self.stmt if isinstance(self.stmt, sa.ClauseElement) else self.stmt(conn)
            self._built[id(dialect)] = stmt
            entry = self._compiled[id(dialect)] = (dialect, _Compiled(
                stmt, dialect, self.keys, _lengths_for_probe(stmt, dialect, self.keys)))
        compiled = entry[1]
        if not compiled.expanding:
            return compiled
        lengths = tuple(_bucket(len(params[n])) for n in compiled.expanding)
        key = (id(dialect), lengths)
        variant = self._variants.get(key)
        if variant is None:
            variant = self._variants[key] = _Compiled(
                self._built[id(dialect)], dialect, self.keys,
                dict(zip(compiled.expanding, lengths, strict=True)))
        return variant

    def _execute(self, conn: Connection, params: Mapping[str, Any], *,
                 fetch: bool) -> tuple[list[Any], int]:
        c = self._for(conn, params)
        bound = c.params(params)

        def run(cursor: Any) -> tuple[list[Any], int]:
            cursor.execute(c.sql, bound)
            rows = cursor.fetchall() if fetch and c.row is not None else []
            if rows and c.readers is None:
                c.make_readers(cursor.description)
            return [c.convert(r) for r in rows], cursor.rowcount

        out = _on_cursor(conn, c.sql, bound, run, many=False)
        self._tell(conn, [params], out[1])
        return out

    def _tell(self, conn: Connection, params: list[Mapping[str, Any]], rowcount: int) -> None:
        """The connection's statement hook, if one is set (the console's try-it box lists
        what a command would write: gateway/console/tryit.py)."""
        hook = conn.info.get(HOOK)
        if hook is not None:
            hook(self._built.get(id(conn.dialect), self.stmt), params, rowcount)

    def all(self, conn: Connection, params: Mapping[str, Any] = _NO_PARAMS) -> list[Any]:
        return self._execute(conn, params, fetch=True)[0]

    def one_or_none(self, conn: Connection, params: Mapping[str, Any] = _NO_PARAMS) -> Any:
        rows = self.all(conn, params)
        if len(rows) > 1:
            raise sa.exc.MultipleResultsFound("FastStatement: more than one row")
        return rows[0] if rows else None

    def scalar(self, conn: Connection, params: Mapping[str, Any] = _NO_PARAMS) -> Any:
        """The first column of the only row, or None when there is no row."""
        row = self.one_or_none(conn, params)
        return None if row is None else row[0]

    def run(self, conn: Connection, params: Mapping[str, Any] = _NO_PARAMS) -> int:
        """Execute (no rows wanted); returns the cursor's rowcount."""
        return self._execute(conn, params, fetch=False)[1]

    def many(self, conn: Connection, params: Iterable[Mapping[str, Any]]) -> None:
        """One executemany over ``params`` (no RETURNING)."""
        params = list(params)
        if not params:
            return
        c = self._for(conn, params[0])
        if c.expanding:
            raise TypeError("FastStatement.many: expanding (IN) parameters are not supported")
        bound = [c.params(p) for p in params]

        def run(cursor: Any) -> int:
            cursor.executemany(c.sql, bound)
            return int(cursor.rowcount)

        self._tell(conn, params, _on_cursor(conn, c.sql, bound, run, many=True))


def run_raw(conn: Connection, sql: str) -> None:
    """A parameterless statement (BEGIN) on the cursor, errors raised as SQLAlchemy's."""
    _on_cursor(conn, sql, (), lambda cursor: cursor.execute(sql), many=False)


def _on_cursor(conn: Connection, sql: str, params: Any, work: Callable[[Any], T], *,
               many: bool) -> T:
    """``work(cursor)`` on a cursor of the connection's DBAPI connection (the transaction
    the caller is in), observed, with DBAPI errors raised as SQLAlchemy's."""
    for observe in OBSERVERS:
        observe(sql, many)
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        return work(cursor)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _wrapped(conn, exc, sql, params) from exc
    finally:
        cursor.close()


def _wrapped(conn: Connection, exc: Exception, sql: str, params: Any) -> sa.exc.DBAPIError:
    """The exception SQLAlchemy itself would raise; a lost connection is invalidated so the
    pool does not hand it out again (as Connection._handle_dbapi_exception does)."""
    dialect = conn.dialect
    raw = conn.connection.dbapi_connection
    try:
        disconnect = bool(dialect.is_disconnect(exc, raw, None))
    except Exception:
        disconnect = False
    if disconnect:
        with contextlib.suppress(Exception):  # already invalid or closed: nothing to release
            conn.invalidate(exc)
    wrapped = sa.exc.DBAPIError.instance(sql, params, exc, dialect.loaded_dbapi.Error,
                                         connection_invalidated=disconnect, dialect=dialect)
    return wrapped  # type: ignore[return-value]
