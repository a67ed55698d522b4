"""Campaigns, polls and surveys (issue 13): create, start, pause, close, results, CSV.

The three share one life and one set of operations under their own paths
(/campaigns, /polls, /surveys); what differs is the body that creates them. Starting one
with a target sends it as a broadcast (opt-outs, windows, quiet hours, rate limits as for
any broadcast); a poll or survey with ``open_to_all`` also takes anyone who texts its
keyword.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import Connection

from commands.engagement.spec import KEYWORD_PATTERN, PollSpec, SurveySpec
from gateway import engagement as svc
from gateway.api.common import IdPath
from gateway.api.deps import Actor, Caller, Gw
from gateway.api.errors import ApiError, not_found
from gateway.mt_text import MtText
from gateway.notices.broadcasts import InvalidTarget
from store import engagement as st
from store.engagement import EngagementError

router = APIRouter(tags=["engagement"])

Target = str | list[str] | dict[str, Any]
_TARGET_DOC = ("as a broadcast's: group: name; topic: code; list: phone numbers; segment: "
               "{region|role|route|value_band: value or [values]}")


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    goal: str | None = Field(default=None, max_length=2000,
                             description="what it is for, shown with its results")
    lang: Literal["zh", "en"] = Field(default="zh", description="language of the broadcast")
    reply_window_minutes: int | None = Field(
        default=None, ge=1, le=60 * 24 * 90,
        description="replies count (and are taken) this long after the start; omit: until "
                    "closed")


class CampaignIn(_Common):
    text: MtText
    target_kind: Literal["group", "segment", "topic", "list"]
    target: Target = Field(description=_TARGET_DOC)


class _Asking(_Common):
    keyword: str | None = Field(default=None, pattern=KEYWORD_PATTERN, description=
                                "what phones text to join or to name their answer (SAT 2); "
                                "not a protocol command; omit for POLL<id> / SURVEY<id>")
    target_kind: Literal["group", "segment", "topic", "list"] | None = None
    target: Target | None = Field(default=None, description=_TARGET_DOC)
    open_to_all: bool = Field(default=False, description="anyone texting the keyword may "
                              "answer, not only the target's recipients")


class PollIn(_Asking):
    poll: PollSpec


class SurveyIn(_Asking):
    survey: SurveySpec


def _now() -> datetime:
    return datetime.now(UTC)


def _wake(gw: Any) -> None:
    wake = getattr(getattr(getattr(gw, "notices", None), "broadcasts", None), "wake", None)
    if callable(wake):
        wake()


async def _create(gw: Any, actor: Actor, kind: str, body: _Common, config: dict[str, Any],
                  **extra: Any) -> dict[str, Any]:
    def run(c: Connection) -> dict[str, Any]:
        try:
            created = svc.create(c, kind=kind, name=body.name, goal=body.goal, lang=body.lang,
                                 reply_window_minutes=body.reply_window_minutes, now=_now(),
                                 config=config, created_by=actor.name[:64], **extra)
        except InvalidTarget as exc:
            raise ApiError(422, f"invalid_{kind}", str(exc), exc.details) from None
        except (EngagementError, ValidationError, ValueError) as exc:
            raise ApiError(422, f"invalid_{kind}", str(exc)) from None
        actor.record(c, kind, created["id"], after=created)
        return created

    return await gw.store.write(run)


def _asking(body: _Asking) -> dict[str, Any]:
    return {"keyword": body.keyword, "target_kind": body.target_kind, "target": body.target,
            "open_to_all": body.open_to_all}


@router.post("/campaigns", status_code=201)
async def create_campaign(body: CampaignIn, gw: Gw, actor: Caller) -> dict[str, Any]:
    """A draft campaign: a broadcast with a goal and a reply window. POST …/start sends it."""
    return await _create(gw, actor, "campaign", body, {}, text=body.text,
                         target_kind=body.target_kind, target=body.target)


@router.post("/polls", status_code=201)
async def create_poll(body: PollIn, gw: Gw, actor: Caller) -> dict[str, Any]:
    """A draft poll: options answered by number, keyword (typos of one letter in words of 4
    or more forgiven) or free text; one vote per phone."""
    return await _create(gw, actor, "poll", body, body.poll.model_dump(), **_asking(body))


@router.post("/surveys", status_code=201)
async def create_survey(body: SurveyIn, gw: Gw, actor: Caller) -> dict[str, Any]:
    """A draft survey: questions asked one by one, a bad answer re-asked."""
    return await _create(gw, actor, "survey", body, body.survey.model_dump(),
                         **_asking(body))


def _one(kind: str, engagement_id: int, c: Connection) -> dict[str, Any]:
    found = st.get(c, engagement_id)
    if found is None or found["kind"] != kind:
        raise not_found(kind, engagement_id)
    return found


def _register(kind: str) -> None:
    """The operations every kind shares, under /<kind>s."""
    base = f"/{kind}s"

    async def list_them(gw: Gw, _: Caller) -> list[dict[str, Any]]:
        return await gw.store.read(lambda c: st.list_all(c, kind))

    async def get_one(engagement_id: IdPath, gw: Gw, _: Caller) -> dict[str, Any]:
        return await gw.store.read(lambda c: _one(kind, engagement_id, c))

    def change(action: str) -> Callable[..., Any]:
        async def act(engagement_id: IdPath, gw: Gw, actor: Caller) -> dict[str, Any]:
            def run(c: Connection) -> dict[str, Any]:
                before = _one(kind, engagement_id, c)
                try:
                    after = svc.transition(c, engagement_id, action, now=_now(),
                                           created_by=actor.name[:64])
                except InvalidTarget as exc:
                    raise ApiError(422, f"invalid_{kind}", str(exc), exc.details) from None
                except EngagementError as exc:
                    raise ApiError(409, "wrong_state", str(exc)) from None
                except ValueError as exc:  # the broadcast refused (e.g. an empty segment)
                    raise ApiError(422, f"invalid_{kind}", str(exc)) from None
                actor.record(c, kind, engagement_id, before=before, after=after)
                return after

            result = await gw.store.write(run)
            _wake(gw)
            return result

        act.__name__ = f"{action}_{kind}"
        act.__doc__ = {"start": "Send it (first start) or resume taking replies.",
                       "pause": "Stop taking replies for now (keyword texts are told).",
                       "close": "End it: unsent messages cancelled, open questions closed."
                       }[action]
        return act

    async def results(engagement_id: IdPath, gw: Gw, _: Caller) -> dict[str, Any]:
        def run(c: Connection) -> dict[str, Any]:
            _one(kind, engagement_id, c)
            return svc.results(c, engagement_id, now=_now())

        return await gw.store.read(run)

    router.add_api_route(base, list_them, methods=["GET"], name=f"list_{kind}s")
    router.add_api_route(base + "/{engagement_id}", get_one, methods=["GET"],
                         name=f"get_{kind}")
    for action in ("start", "pause", "close"):
        router.add_api_route(base + "/{engagement_id}/" + action, change(action),
                             methods=["POST"], name=f"{action}_{kind}")
    router.add_api_route(base + "/{engagement_id}/results", results, methods=["GET"],
                         name=f"{kind}_results",
                         description="Sent, delivered, failed, replied, response rate, "
                         "opt-outs caused, cost, timeline; a poll's tallies, a survey's "
                         "answers; who did not answer.")
    if kind == "campaign":
        return

    async def export(engagement_id: IdPath, gw: Gw, _: Caller) -> Response:
        def run(c: Connection) -> str:
            _one(kind, engagement_id, c)
            return svc.export_csv(c, engagement_id, now=_now())

        body = await gw.store.read(run)
        return Response(body.encode("utf-8"), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition":
                                 f'attachment; filename="{kind}-{engagement_id}.csv"'})

    router.add_api_route(base + "/{engagement_id}/export.csv", export, methods=["GET"],
                         name=f"{kind}_csv", response_class=Response,
                         description="One row per respondent, UTF-8 with a BOM.")


for _kind in ("campaign", "poll", "survey"):
    _register(_kind)


@router.post("/polls/{engagement_id}/groups")
async def save_poll_groups(engagement_id: IdPath, gw: Gw, actor: Caller
                           ) -> list[dict[str, Any]]:
    """Save each option's voters as a group "<keyword>-<n>" (made or refilled) for a
    follow-up broadcast; voters without an account are listed (use a list broadcast)."""
    def run(c: Connection) -> list[dict[str, Any]]:
        _one("poll", engagement_id, c)
        saved = svc.save_groups(c, engagement_id)
        actor.record(c, "poll", engagement_id, after={"groups": saved})
        return saved

    return await gw.store.write(run)
