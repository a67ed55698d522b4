"""Role permissions, loaded from commands/roles.yaml (see the comments there)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

SCOPES = ("own", "route", "all")
FIGURES = ("units", "revenue", "margin")
QUERIES = ("SALES", "STOCK", "ROUTE")


class RolesError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class QueryRule:
    """What a role sees for one `Q` subject."""

    scope: str = "own"
    figures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    commands: frozenset[str]
    query: dict[str, QueryRule] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Roles:
    public: frozenset[str]
    roles: dict[str, Role]

    def is_public(self, command: str) -> bool:
        return command in self.public

    def allows(self, role: str, command: str) -> bool:
        r = self.roles.get(role)
        return command in self.public or (r is not None and command in r.commands)

    def query(self, role: str, what: str) -> QueryRule | None:
        r = self.roles.get(role)
        return None if r is None else r.query.get(what)


def _parse(data: object) -> Roles:
    if not isinstance(data, dict) or not isinstance(data.get("roles"), dict):
        raise RolesError("roles.yaml needs a 'roles' mapping")
    roles: dict[str, Role] = {}
    for name, spec in data["roles"].items():
        spec = spec or {}
        query: dict[str, QueryRule] = {}
        for what, rule in (spec.get("query") or {}).items():
            rule = rule or {}
            what = str(what).upper()
            if what not in QUERIES:
                raise RolesError(f"role {name}: unknown Q subject {what!r}")
            scope = str(rule.get("scope", "own"))
            figures = tuple(str(f) for f in rule.get("figures", ()))
            if scope not in SCOPES or any(f not in FIGURES for f in figures):
                raise RolesError(f"role {name}: bad Q {what} rule {rule!r}")
            query[what] = QueryRule(scope, figures)
        commands = frozenset(str(c).upper() for c in spec.get("commands", ()))
        roles[str(name)] = Role(str(name), commands, query)
    public = frozenset(str(c).upper() for c in data.get("public", ()))
    return Roles(public, roles)


def load_roles(path: str | Path | None = None) -> Roles:
    """The roles from `path`, or the bundled commands/roles.yaml (cached) when None."""
    if path is None:
        return _bundled()
    return _parse(yaml.safe_load(Path(path).read_text("utf-8")))


@cache
def _bundled() -> Roles:
    text = resources.files("commands").joinpath("roles.yaml").read_text("utf-8")
    return _parse(yaml.safe_load(text))
