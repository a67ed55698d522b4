"""Groups of accounts (rule conditions and broadcast targets) and their members."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from gateway.api.common import IdPath
from gateway.api.deps import Caller, Gw
from gateway.api.errors import ApiError, not_found
from store.models import accounts, group_members, groups

router = APIRouter(prefix="/groups", tags=["groups"])


class GroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, pattern=r"^[\w.:-]+$")


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: int = Field(ge=1, le=2**63 - 1)


def _members(c: Connection, group_id: int) -> list[dict[str, Any]]:
    q = (sa.select(accounts.c.id, accounts.c.account_no, accounts.c.name, accounts.c.role,
                   accounts.c.phone)
         .join(group_members, group_members.c.account_id == accounts.c.id)
         .where(group_members.c.group_id == group_id).order_by(accounts.c.id))
    return [dict(r) for r in c.execute(q).mappings()]


def _get(c: Connection, group_id: int) -> dict[str, Any]:
    row = c.execute(sa.select(groups).where(groups.c.id == group_id)).mappings().first()
    if row is None:
        raise not_found("group", group_id)
    return {**row, "members": _members(c, group_id)}


def _name_free(c: Connection, name: str, group_id: int | None = None) -> None:
    other = c.execute(sa.select(groups.c.id).where(groups.c.name == name)).scalar()
    if other is not None and other != group_id:
        raise ApiError(409, "exists", f"group {name} exists")


@router.get("")
async def list_groups(gw: Gw, _: Caller) -> list[dict[str, Any]]:
    count = sa.select(sa.func.count()).where(
        group_members.c.group_id == groups.c.id).scalar_subquery().label("members")
    q = sa.select(groups, count).order_by(groups.c.name)
    return await gw.store.read(lambda c: [dict(r) for r in c.execute(q).mappings()])


@router.post("", status_code=201)
async def create_group(body: GroupIn, gw: Gw, actor: Caller) -> dict[str, Any]:
    def run(c: Connection) -> dict[str, Any]:
        _name_free(c, body.name)
        new_id = c.execute(groups.insert().values(name=body.name).returning(groups.c.id)
                           ).scalar_one()
        after = _get(c, new_id)
        actor.record(c, "group", new_id, after=after)
        return after

    return await gw.store.write(run)


@router.get("/{group_id}")
async def get_group(group_id: IdPath, gw: Gw, _: Caller) -> dict[str, Any]:
    return await gw.store.read(lambda c: _get(c, group_id))


@router.put("/{group_id}")
async def rename_group(group_id: IdPath, body: GroupIn, gw: Gw, actor: Caller
                       ) -> dict[str, Any]:
    def run(c: Connection) -> dict[str, Any]:
        before = _get(c, group_id)
        _name_free(c, body.name, group_id)
        c.execute(groups.update().where(groups.c.id == group_id).values(name=body.name))
        after = _get(c, group_id)
        actor.record(c, "group", group_id, before=before, after=after)
        return after

    return await gw.store.write(run)


@router.delete("/{group_id}")
async def delete_group(group_id: IdPath, gw: Gw, actor: Caller) -> dict[str, Any]:
    """Delete the group and its memberships (the accounts stay)."""
    def run(c: Connection) -> dict[str, Any]:
        before = _get(c, group_id)
        c.execute(group_members.delete().where(group_members.c.group_id == group_id))
        c.execute(groups.delete().where(groups.c.id == group_id))
        actor.record(c, "group", group_id, before=before)
        return {"id": group_id, "deleted": True}

    return await gw.store.write(run)


@router.post("/{group_id}/members", status_code=201)
async def add_member(group_id: IdPath, body: MemberIn, gw: Gw, actor: Caller
                     ) -> dict[str, Any]:
    def run(c: Connection) -> dict[str, Any]:
        before = _get(c, group_id)
        if c.execute(sa.select(accounts.c.id).where(accounts.c.id == body.account_id)
                     ).first() is None:
            raise ApiError(422, "validation_error", f"account_id: no account {body.account_id}")
        if not any(m["id"] == body.account_id for m in before["members"]):
            c.execute(group_members.insert().values(group_id=group_id,
                                                    account_id=body.account_id))
        after = _get(c, group_id)
        actor.record(c, "group", group_id, before=before, after=after)
        return after

    return await gw.store.write(run)


@router.delete("/{group_id}/members/{account_id}")
async def remove_member(group_id: IdPath, account_id: IdPath, gw: Gw, actor: Caller
                        ) -> dict[str, Any]:
    def run(c: Connection) -> dict[str, Any]:
        before = _get(c, group_id)
        if not any(m["id"] == account_id for m in before["members"]):
            raise not_found("member", account_id)
        c.execute(group_members.delete().where(group_members.c.group_id == group_id,
                                               group_members.c.account_id == account_id))
        after = _get(c, group_id)
        actor.record(c, "group", group_id, before=before, after=after)
        return after

    return await gw.store.write(run)
