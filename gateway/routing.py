"""SMSC connections from configuration, and the routing decision for one message.

Rule (issue 4, part 5): the *capable* connections for a message are those whose prefix list
matches its destination (an empty list serves every destination) and, when the text needs
UCS2, that take data_coding 8. Among the capable ones that are up, the cheapest per part
wins; equal-cost ones are chosen at random in proportion to their weight (seeded RNG, so a
test or a replay sees the same choices). Prefix length does *not* rank: a specific prefix is
a statement of what a connection can reach, not a preference - cost expresses preference.

- capable but none up → `NoRouteNow`: the message stays queued and waits for a bind;
- nothing configured can ever carry it → `NoRouteEver`: the message fails with the reason.

`Router` is pure (no I/O, no clock); `claim_filter` turns the same rule into the
destination-prefix conditions a connection's claim uses, so a connection only takes rows it
is among the cheapest live routes for. The YAML loader sits here too because it builds the
same `ConnectionSpec` objects.
"""

from __future__ import annotations

import random
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

DEFAULT_WINDOW = 10


class ConnectionsFileError(ValueError):
    """The connections file is unusable; the message names the entry and the problem."""


@dataclass(frozen=True, slots=True)
class ConnectionSpec:
    name: str
    host: str | None
    port: int
    system_id: str
    password: str
    system_type: str = ""
    window: int = DEFAULT_WINDOW
    tps: float = 0.0  # submit_sm per second; 0 = unlimited
    prefixes: tuple[str, ...] = ()  # destination prefixes served; empty = every destination
    ucs2: bool = True  # takes data_coding 8
    cost_millis: int = 0  # per part, in 1/1000 of the currency unit
    weight: int = 1
    tls: bool = False  # SMPP over TLS (gateway/tls.py)
    tls_ca: str | None = None  # PEM CA file trusted for this SMSC; None = the system store
    tls_verify: bool = True  # false: no certificate check (test SMSCs only)
    # Which connector carries it (gateway/connectors/): smpp, http, or a plug-in's kind; the
    # kind's own settings (the YAML entry's `options`), checked by the connector.
    kind: str = "smpp"
    options: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)

    def serves(self, dest: str) -> bool:
        if not self.prefixes:
            return True
        d = normalise_dest(dest)
        return any(d.startswith(p) for p in self.prefixes)

    def can_carry(self, dest: str, needs_ucs2: bool) -> bool:
        return self.serves(dest) and (self.ucs2 or not needs_ucs2)


def normalise_dest(dest: str) -> str:
    return dest.strip().removeprefix("+")


# -- decisions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Routed:
    spec: ConnectionSpec

    def cost_millis(self, parts: int) -> int:
        return parts * self.spec.cost_millis


@dataclass(frozen=True, slots=True)
class NoRouteNow:
    reason: str


@dataclass(frozen=True, slots=True)
class NoRouteEver:
    reason: str


Decision = Routed | NoRouteNow | NoRouteEver


@dataclass(frozen=True, slots=True)
class ClaimFilter:
    """Which destinations a connection may claim (see `Router.claim_filter`).

    serve: prefixes it serves (None = all); exclude: prefixes a cheaper live connection
    takes; exclude_all: a cheaper live connection takes everything; unserved_except: when
    not None, also claim rows matching none of these prefixes (nothing configured serves
    them, so they must be claimed by someone to be failed).
    """

    serve: tuple[str, ...] | None
    exclude: tuple[str, ...] = ()
    exclude_all: bool = False
    unserved_except: tuple[str, ...] | None = None


class Router:
    def __init__(self, specs: Sequence[ConnectionSpec], *, seed: int | None = None) -> None:
        if not specs:
            raise ValueError("at least one connection is needed")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate connection names in {names}")
        self.specs = tuple(specs)
        self.by_name = {s.name: s for s in specs}
        self._rng = random.Random(seed)

    def capable(self, dest: str, needs_ucs2: bool) -> list[ConnectionSpec]:
        """Every configured connection that could carry the message (up or not)."""
        return [s for s in self.specs if s.can_carry(dest, needs_ucs2)]

    def choose(self, dest: str, needs_ucs2: bool, up: Container[str]) -> Decision:
        capable = self.capable(dest, needs_ucs2)
        if not capable:
            return NoRouteEver(self._why_never(dest, needs_ucs2))
        live = [s for s in capable if s.name in up]
        if not live:
            names = ", ".join(s.name for s in capable)
            return NoRouteNow(f"no connection up for {dest} (capable: {names})")
        cheapest = min(s.cost_millis for s in live)
        tier = [s for s in live if s.cost_millis == cheapest]
        if len(tier) == 1:
            return Routed(tier[0])
        weights = [max(0, s.weight) for s in tier]
        if sum(weights) <= 0:
            weights = [1] * len(tier)
        return Routed(self._rng.choices(tier, weights=weights)[0])

    def _why_never(self, dest: str, needs_ucs2: bool) -> str:
        by_prefix = [s for s in self.specs if s.serves(dest)]
        if not by_prefix:
            return f"no route: no configured connection serves destination {dest}"
        names = ", ".join(s.name for s in by_prefix)
        return (f"no route: the text needs UCS2 and no connection serving {dest} "
                f"takes it ({names} are GSM only)" if needs_ucs2 else
                f"no route for {dest}")

    def claim_filter(self, name: str, up: Container[str]) -> ClaimFilter:
        """Destinations connection ``name`` should claim while ``up`` are the live binds.

        It serves them by prefix and no cheaper live connection does. The encoding check and
        the weighted choice among equal-cost connections happen after the claim (`choose`),
        since neither can be expressed on the row in SQL.
        """
        me = self.by_name[name]
        exclude: list[str] = []
        exclude_all = False
        for other in self.specs:
            if other.name == name or other.name not in up or other.cost_millis >= me.cost_millis:
                continue
            if not other.prefixes:
                exclude_all = True
            exclude.extend(other.prefixes)
        unserved: tuple[str, ...] | None = None
        if all(s.prefixes for s in self.specs):
            unserved = tuple(sorted({p for s in self.specs for p in s.prefixes}))
        return ClaimFilter(serve=me.prefixes or None, exclude=tuple(sorted(set(exclude))),
                           exclude_all=exclude_all, unserved_except=unserved)


# -- configuration ------------------------------------------------------------------------------

_KEYS = {"name", "host", "port", "system_id", "password", "system_type", "window", "tps",
         "prefixes", "ucs2", "cost_per_part", "weight", "tls", "tls_ca", "tls_verify", "kind",
         "options"}


def parse_cost(value: Any, *, where: str = "cost_per_part") -> int:
    """'0.045' / 0.045 / 1 → millis (45, 45, 1000). At most 3 decimals, never negative."""
    if isinstance(value, bool):
        raise ConnectionsFileError(f"{where}: expected a number, got {value!r}")
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ConnectionsFileError(f"{where}: {value!r} is not a decimal number") from None
    if not d.is_finite() or d < 0:
        raise ConnectionsFileError(f"{where}: {value!r} must be a number >= 0")
    millis = d * 1000
    if millis != millis.to_integral_value():
        raise ConnectionsFileError(f"{where}: {value!r} has more than 3 decimals")
    return int(millis)


def _int(entry: Mapping[str, Any], key: str, default: int | None, where: str, *,
         low: int, high: int) -> int:
    value = entry.get(key, default)
    if value is None:
        raise ConnectionsFileError(f"{where}: {key} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConnectionsFileError(f"{where}: {key} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ConnectionsFileError(f"{where}: {key} {value} outside {low}..{high}")
    return value


def _str(entry: Mapping[str, Any], key: str, default: str | None, where: str) -> str:
    value = entry.get(key, default)
    if value is None or (isinstance(value, str) and not value.strip() and default is None):
        raise ConnectionsFileError(f"{where}: {key} is required")
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ConnectionsFileError(f"{where}: {key} must be a string, got {value!r}")
    return str(value)


def _prefixes(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list):
        raise ConnectionsFileError(f"{where}: prefixes must be a list of digit strings")
    out: list[str] = []
    for p in value:
        text = str(p).strip().removeprefix("+") if not isinstance(p, bool) else ""
        if not text.isdigit() or not text.isascii():
            raise ConnectionsFileError(
                f"{where}: bad prefix {p!r} (digits only, e.g. '86138'; quote it in YAML)")
        out.append(text)
    return tuple(dict.fromkeys(out))


def parse_connections(data: Any, *, source: str = "connections") -> list[ConnectionSpec]:
    """Validate the parsed YAML: a list of entries, or a mapping with a `connections` list."""
    if isinstance(data, Mapping):
        extra = set(data) - {"connections"}
        if extra:
            raise ConnectionsFileError(f"{source}: unknown top-level key(s) {sorted(extra)}; "
                                       "expected 'connections'")
        data = data.get("connections")
    if not isinstance(data, list) or not data:
        raise ConnectionsFileError(f"{source}: expected a non-empty list of connections")
    specs: list[ConnectionSpec] = []
    seen: set[str] = set()
    for i, entry in enumerate(data, 1):
        where = f"{source}: connection #{i}"
        if not isinstance(entry, Mapping):
            raise ConnectionsFileError(f"{where}: expected a mapping, got {entry!r}")
        if "name" in entry:
            where = f"{source}: connection {entry['name']!r}"
        unknown = set(entry) - _KEYS
        if unknown:
            raise ConnectionsFileError(f"{where}: unknown key(s) {sorted(unknown)} "
                                       f"(allowed: {', '.join(sorted(_KEYS))})")
        name = _str(entry, "name", None, where).strip()
        if name in seen:
            raise ConnectionsFileError(f"{where}: duplicate connection name {name!r}")
        seen.add(name)
        kind = str(entry.get("kind") or "smpp").strip().lower()
        options = entry.get("options")
        if options is not None and not isinstance(options, Mapping):
            raise ConnectionsFileError(f"{where}: options must be a mapping")
        smpp = kind == "smpp"
        host = _str(entry, "host", None if smpp else "", where).strip()
        ucs2 = entry.get("ucs2", True)
        if not isinstance(ucs2, bool):
            raise ConnectionsFileError(f"{where}: ucs2 must be true or false, got {ucs2!r}")
        for flag in ("tls", "tls_verify"):
            if not isinstance(entry.get(flag, True), bool):
                raise ConnectionsFileError(f"{where}: {flag} must be true or false, "
                                           f"got {entry[flag]!r}")
        tps = entry.get("tps", 0)
        if isinstance(tps, bool) or not isinstance(tps, int | float) or tps < 0:
            raise ConnectionsFileError(f"{where}: tps must be a number >= 0 (0 = unlimited)")
        specs.append(ConnectionSpec(
            name=name, host=host,
            port=_int(entry, "port", None if smpp else 1, where, low=1, high=65535),
            system_id=_str(entry, "system_id", "smsgw", where),
            password=_str(entry, "password", "", where),
            system_type=_str(entry, "system_type", "", where),
            window=_int(entry, "window", DEFAULT_WINDOW, where, low=1, high=1000),
            tps=float(tps),
            prefixes=_prefixes(entry.get("prefixes"), where),
            ucs2=ucs2,
            cost_millis=parse_cost(entry.get("cost_per_part", 0),
                                   where=f"{where}: cost_per_part"),
            weight=_int(entry, "weight", 1, where, low=0, high=1_000_000),
            tls=entry.get("tls", False),
            tls_ca=_str(entry, "tls_ca", "", where).strip() or None,
            tls_verify=entry.get("tls_verify", True),
            kind=kind, options=dict(options) if options is not None else None,
        ))
    return specs


def load_connections(path: str | Path) -> list[ConnectionSpec]:
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConnectionsFileError(f"cannot read connections file {p}: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConnectionsFileError(f"{p}: not valid YAML: {exc}") from exc
    return parse_connections(data, source=str(p))


def specs_from_settings(settings: Any) -> list[ConnectionSpec]:
    """The connections to run: the file's, or the single one the plain settings describe."""
    if getattr(settings, "connections_file", None):
        return load_connections(settings.connections_file)
    return [ConnectionSpec(
        name=settings.connection_name, host=settings.smsc_host, port=settings.smsc_port,
        system_id=settings.smsc_system_id, password=settings.smsc_password,
        system_type=settings.smsc_system_type, window=settings.window,
        tps=float(getattr(settings, "smsc_tps", 0.0)),
        tls=bool(getattr(settings, "smsc_tls", False)),
        tls_ca=getattr(settings, "smsc_tls_ca", None),
        tls_verify=bool(getattr(settings, "smsc_tls_verify", True)))]


def names(specs: Iterable[ConnectionSpec]) -> list[str]:
    return [s.name for s in specs]
