"""Message rules: validated with the engine's own checks before they are saved; saving bumps
the rules version, so every running instance applies the change within seconds, no restart."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Path
from sqlalchemy.engine import Connection

from commands.rules import Rule, RuleError, delete_rule, get_version, save_rule, validate_rule
from gateway.api.deps import Caller, Gw
from gateway.api.errors import ApiError, not_found
from store.models import rules

router = APIRouter(prefix="/rules", tags=["rules"])

Name = Annotated[str, Path(pattern=r"^[\w.:-]{1,64}$")]
MAX_PRIORITY = 1_000_000
RULE_BODY = Body(
    description="a rule: name, priority (lower first), action (command / reply / tag / "
                "forward), argument, and optional keyword, pattern, role, group, window "
                "('HH:MM-HH:MM') or window_start / window_end, enabled",
    examples=[{"name": "faq-hours", "priority": 10, "keyword": "HOURS|营业时间",
               "action": "reply", "argument": {"en": "Open 8-20", "zh": "营业时间8-20点"}}])


def _validate(data: dict[str, Any]) -> Rule:
    data = {k: v for k, v in data.items() if k not in ("id", "updated_at")}
    try:
        rule = validate_rule(data)
    except (RuleError, ValueError, TypeError) as exc:
        raise ApiError(422, "invalid_rule", str(exc)) from None
    if not -MAX_PRIORITY <= rule.priority <= MAX_PRIORITY:
        raise ApiError(422, "invalid_rule", f"rule {rule.name!r}: priority outside "
                                            f"±{MAX_PRIORITY}")
    return rule


def _get(c: Connection, name: str) -> dict[str, Any] | None:
    row = c.execute(sa.select(rules).where(rules.c.name == name)).mappings().first()
    return None if row is None else dict(row)


@router.get("")
async def list_rules(gw: Gw, _: Caller) -> dict[str, Any]:
    """Every rule in evaluation order, with the rules version the instances apply."""
    def run(c: Connection) -> dict[str, Any]:
        q = sa.select(rules).order_by(rules.c.priority, rules.c.id)
        return {"version": get_version(c),
                "rules": [dict(r) for r in c.execute(q).mappings()]}

    return await gw.store.read(run)


@router.post("/validate")
async def validate(gw: Gw, _: Caller,
                   body: Annotated[dict[str, Any], RULE_BODY]) -> dict[str, Any]:
    """Check a rule without saving it; answers the normalised rule or 422."""
    rule = _validate(body)
    return {"valid": True, "rule": rule.to_row()}


async def _save(gw: Any, actor: Any, rule: Rule) -> dict[str, Any]:
    def run(c: Connection) -> dict[str, Any]:
        before = _get(c, rule.name)
        save_rule(c, rule, datetime.now(UTC))
        after = _get(c, rule.name)
        actor.record(c, "rule", rule.name, before=before, after=after)
        return after  # type: ignore[return-value]

    return await gw.store.write(run)


@router.post("", status_code=201)
async def create_rule(gw: Gw, actor: Caller,
                      body: Annotated[dict[str, Any], RULE_BODY]) -> dict[str, Any]:
    rule = _validate(body)
    if await gw.store.read(lambda c: _get(c, rule.name)) is not None:
        raise ApiError(409, "exists", f"rule {rule.name} exists (PUT /rules/{rule.name} "
                                      "replaces it)")
    return await _save(gw, actor, rule)


@router.get("/{name}")
async def get_rule(name: Name, gw: Gw, _: Caller) -> dict[str, Any]:
    found = await gw.store.read(lambda c: _get(c, name))
    if found is None:
        raise not_found("rule", name)
    return found


@router.put("/{name}")
async def put_rule(name: Name, gw: Gw, actor: Caller,
                   body: Annotated[dict[str, Any], RULE_BODY]) -> dict[str, Any]:
    """Create or replace the rule of this name."""
    if "name" in body and str(body["name"]).strip() != name:
        raise ApiError(422, "invalid_rule", "the body's name differs from the path's")
    return await _save(gw, actor, _validate({**body, "name": name}))


@router.delete("/{name}")
async def remove_rule(name: Name, gw: Gw, actor: Caller) -> dict[str, Any]:
    def run(c: Connection) -> dict[str, Any]:
        before = _get(c, name)
        if before is None or not delete_rule(c, name):
            raise not_found("rule", name)
        actor.record(c, "rule", name, before=before)
        return {"name": name, "deleted": True}

    return await gw.store.write(run)
