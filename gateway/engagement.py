"""Campaigns, polls and surveys: their life (create → start → pause ↔ resume → close) and
their results. Sending reuses the broadcast machinery whole: starting one with a target
creates a broadcast (`create_checked`: the target and the text checked as for any broadcast),
so opt-outs, recipients' windows, quiet hours and rate limits apply unchanged.

Every function takes a Connection and runs inside the caller's one transaction.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from commands.engagement.questions import opening
from commands.engagement.spec import PollSpec, SurveySpec, parse_config, pick
from commands.parse import parse
from commands.parsed import ParseError
from gateway.notices.broadcasts import check_target, create_checked
from store import engagement as st
from store import notices as sn
from store.engagement import EngagementError

TRANSITIONS = {"start": ("draft", "paused"), "pause": ("running",),
               "close": ("draft", "running", "paused")}


def check_keyword(keyword: str, today: Any) -> str:
    """An engagement keyword must not be (or begin like) a protocol command: `SAT`, `调查`
    are fine; `BAL`, `HELP`, `STOP`, `订货` are not."""
    word = keyword.strip().upper()
    result = parse(word, today=today)
    if not (isinstance(result, ParseError) and result.key == "err_unknown_command"):
        raise EngagementError(f"keyword {word!r} is a protocol command; choose another word")
    if word.isdigit():
        raise EngagementError(f"keyword {word!r} needs a letter: digits are answers")
    return word


def create(conn: Connection, *, kind: str, name: str, now: datetime, lang: str = "zh",
           keyword: str | None = None, config: dict[str, Any] | None = None,
           text: str | None = None, goal: str | None = None, target_kind: str | None = None,
           target: Any = None, reply_window_minutes: int | None = None,
           open_to_all: bool = False, created_by: str | None = None) -> dict[str, Any]:
    """A draft; the config is checked by its model (spec.PollSpec / SurveySpec), the target
    as a broadcast's, the keyword against the protocol's commands."""
    config = config or {}
    parse_config(kind, config)  # raises pydantic's ValidationError (a ValueError)
    if kind == "campaign" and not (text and text.strip()):
        raise EngagementError("a campaign needs its text")
    if kind != "campaign" and text:
        raise EngagementError("a poll or survey sends its question: give no text")
    if (target_kind is None) != (target is None):
        raise EngagementError("give target_kind and target together (or neither, for a "
                              "poll or survey open to anyone who texts its keyword)")
    if kind == "campaign" and target_kind is None:
        raise EngagementError("a campaign needs a target (group, segment, topic or list)")
    if target_kind is None and not open_to_all:
        raise EngagementError("with no target, set open_to_all: phones join by texting the "
                              "keyword")
    if target_kind is not None:
        # A missing group or topic, bad numbers: now. The rest of the shape (an empty
        # segment) is create_broadcast's check, at start.
        target = check_target(conn, target_kind, target)
    kw = check_keyword(keyword, now.date()) if keyword else None
    eid = st.create(conn, kind=kind, name=name, keyword=kw, lang=lang, config=config,
                    now=now, goal=goal, text=text, target_kind=target_kind, target=target,
                    reply_window_minutes=reply_window_minutes, open_to_all=open_to_all,
                    created_by=created_by)
    found = st.get(conn, eid)
    assert found is not None
    return found


def first_message(r: Any) -> str:
    """What the broadcast says: the campaign's text, or the question in the engagement's
    language."""
    if r.kind == "campaign":
        return str(r.text)
    spec = parse_config(r.kind, json.loads(r.config))
    assert isinstance(spec, PollSpec | SurveySpec)
    return opening(spec, r.lang)


def transition(conn: Connection, engagement_id: int, action: str, *, now: datetime,
               created_by: str | None = None) -> dict[str, Any]:
    """start, pause or close; EngagementError when the state does not allow it."""
    r = st.row(conn, engagement_id)
    if r is None:
        raise LookupError(engagement_id)
    if r.status not in TRANSITIONS[action]:
        raise EngagementError(f"{r.kind} {engagement_id} is {r.status}: cannot {action} it "
                              f"(only when {' or '.join(TRANSITIONS[action])})")
    if action == "start":
        values: dict[str, Any] = {"status": "running"}
        if r.started_at is None:  # first start: send it, open the reply window
            values.update(started_at=now,
                          closes_at=st.reply_window_end(now, r.reply_window_minutes))
            if r.target_kind is not None:
                values["broadcast_id"] = create_checked(
                    conn, name=f"{r.kind} {r.keyword}: {r.name}"[:128],
                    target_kind=r.target_kind, target=json.loads(r.target),
                    text=first_message(r), now=now, created_by=created_by)
        st.update(conn, engagement_id, now=now, **values)
    elif action == "pause":
        st.update(conn, engagement_id, now=now, status="paused")
    else:
        if r.broadcast_id is not None:
            b = sn.get_broadcast(conn, r.broadcast_id)
            if b is not None and b["status"] in ("scheduled", "running"):
                sn.cancel_broadcast(conn, r.broadcast_id, now=now)  # unsent questions
        st.close_sessions(conn, engagement_id, now=now)
        st.update(conn, engagement_id, now=now, status="closed", closed_at=now)
    found = st.get(conn, engagement_id)
    assert found is not None
    return found


def results(conn: Connection, engagement_id: int, *, now: datetime) -> dict[str, Any]:
    """What an operator reads an hour later: the effect in numbers, and per kind the tallies
    (poll) or the answers (survey), with who did not answer."""
    r = st.row(conn, engagement_id)
    if r is None:
        raise LookupError(engagement_id)
    out: dict[str, Any] = {"id": r.id, "kind": r.kind, "name": r.name, "status": r.status,
                           "keyword": r.keyword, "goal": r.goal, "started_at": r.started_at,
                           "closes_at": r.closes_at, "effect": st.effect(conn, r, now)}
    if r.kind == "campaign":
        return out
    spec = parse_config(r.kind, json.loads(r.config))
    people = st.sessions(conn, r.id, now)
    answered = {s["phone"] for s in people if _answered(s)}
    out["replies"] = st.reply_counts(conn, r.id)
    out["respondents"] = len(answered)
    out["not_answered"] = [p for p in st.recipients(conn, r) if p not in answered]
    if isinstance(spec, PollSpec):
        counts = st.tallies(conn, r.id)
        out["tallies"] = [{"option": n, "label": pick(o.label, r.lang),
                           "votes": counts.get(n, 0)} for n, o in enumerate(spec.options, 1)]
        if spec.free_text:
            out["tallies"].append({"option": 0, "label": "other", "votes": counts.get(0, 0)})
        out["votes"] = sum(counts.values())
    else:
        assert isinstance(spec, SurveySpec)
        statuses: dict[str, int] = {}
        for s in people:
            statuses[s["status"]] = statuses.get(s["status"], 0) + 1
        out["sessions"] = statuses
        out["responses"] = [{"phone": s["phone"], "status": s["status"],
                             "answers": s["answers"], "completed_at": s["completed_at"]}
                            for s in people]
    return out


def _answered(s: dict[str, Any]) -> bool:
    return s["choice"] is not None or bool(s["answers"])


def export_csv(conn: Connection, engagement_id: int, *, now: datetime) -> str:
    """One row per respondent; a poll's one column is its vote (option number, or the free
    text), a survey's are its question ids."""
    r = st.row(conn, engagement_id)
    if r is None:
        raise LookupError(engagement_id)
    spec = parse_config(r.kind, json.loads(r.config))
    if spec is None:
        raise EngagementError("a campaign has no answers to export; read its results")
    ids = ["vote"] if isinstance(spec, PollSpec) else [q.id for q in spec.questions]
    return st.csv_rows(ids, st.sessions(conn, engagement_id, now))


def save_groups(conn: Connection, engagement_id: int) -> list[dict[str, Any]]:
    r = st.row(conn, engagement_id)
    if r is None:
        raise LookupError(engagement_id)
    spec = parse_config(r.kind, json.loads(r.config))
    if not isinstance(spec, PollSpec):
        raise EngagementError("only a poll's voters can be saved as groups")
    return st.save_voter_groups(conn, r, [pick(o.label, r.lang) for o in spec.options])
