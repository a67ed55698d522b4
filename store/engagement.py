"""Campaigns, polls and surveys in the store (issue 13): the engagement rows, each phone's
session (its state survives restarts), every routed reply, and the read-outs (tallies, the
effect report, responses, CSV).

Writes run inside the caller's transaction: a vote is written in the MO's own transaction
(commands/engagement/), so it commits with the MO's disposition and reply, once.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from store.fastsql import FastStatement
from store.models import (
    OUTBOUND_FINAL,
    accounts,
    engagement_replies,
    engagement_sessions,
    engagements,
    group_members,
    groups,
    inbound_messages,
    opt_outs,
    outbound_messages,
)

E = engagements.c
S = engagement_sessions.c
OM = outbound_messages.c

# The outbound statuses a report counts as sent (on the network) and as failed.
SENT = ("submitted", "delivered")
FAILED = ("failed", "expired", "rejected")


class EngagementError(ValueError):
    """A change that cannot be made (unknown keyword, wrong state): the message says why."""


# -- engagements ---------------------------------------------------------------------------------


def create(conn: Connection, *, kind: str, name: str, keyword: str | None, lang: str,
           config: dict[str, Any], now: datetime, goal: str | None = None,
           text: str | None = None, target_kind: str | None = None, target: Any = None,
           reply_window_minutes: int | None = None, open_to_all: bool = False,
           created_by: str | None = None) -> int:
    """A draft engagement. Without a keyword one is made up from the kind and id (POLL3)."""
    if keyword is not None and by_keyword(conn, keyword) is not None:
        raise EngagementError(f"keyword {keyword.upper()!r} is taken by another engagement; "
                              "choose another")
    new_id = int(conn.execute(engagements.insert().values(
        kind=kind, name=name, status="draft", keyword=(keyword or f"tmp-{now.timestamp()}")
        .upper(), open_to_all=open_to_all, goal=goal, lang=lang,
        config=json.dumps(config, ensure_ascii=False), text=text, target_kind=target_kind,
        target=None if target is None else json.dumps(target, ensure_ascii=False),
        reply_window_minutes=reply_window_minutes, created_by=created_by, created_at=now,
        updated_at=now).returning(E.id)).scalar_one())
    if keyword is None:
        conn.execute(sa.update(engagements).where(E.id == new_id)
                     .values(keyword=f"{kind.upper()}{new_id}"))
    return new_id


def row(conn: Connection, engagement_id: int) -> Row | None:
    return conn.execute(sa.select(engagements).where(E.id == engagement_id)).first()


def as_dict(r: Row) -> dict[str, Any]:
    out = dict(r._mapping)
    out["config"] = json.loads(r.config)
    out["target"] = None if r.target is None else json.loads(r.target)
    return out


def get(conn: Connection, engagement_id: int) -> dict[str, Any] | None:
    found = row(conn, engagement_id)
    return None if found is None else as_dict(found)


def list_all(conn: Connection, kind: str | None = None, limit: int = 100
             ) -> list[dict[str, Any]]:
    q = sa.select(engagements).order_by(E.id.desc()).limit(limit)
    if kind is not None:
        q = q.where(E.kind == kind)
    return [as_dict(r) for r in conn.execute(q)]


def by_keyword(conn: Connection, keyword: str) -> Row | None:
    return conn.execute(sa.select(engagements).where(E.keyword == keyword.upper())).first()


# Read for every unmatched MO (store/fastsql.py: compiled once, executed on the cursor).
_LIVE = FastStatement(sa.select(engagements).where(E.status != "draft", E.kind != "campaign"))
_STALE_SESSIONS = FastStatement(sa.select(S.id, S.engagement_id).where(
    S.phone == sa.bindparam("b_phone"), S.status == "open", S.expires_at.is_not(None),
    S.expires_at <= sa.bindparam("b_now")))
_RUNNING = FastStatement(sa.select(engagements).where(
    E.status == "running", E.kind != "campaign",
    sa.or_(E.closes_at.is_(None), E.closes_at > sa.bindparam("b_now"))).order_by(E.id))


def live_keywords(conn: Connection) -> list[Row]:
    """Polls and surveys a keyword reaches (a closed one answers that it is closed), longest
    keyword first."""
    return sorted(_LIVE.all(conn), key=lambda r: -len(r.keyword))


def update(conn: Connection, engagement_id: int, *, now: datetime, **values: Any) -> None:
    conn.execute(sa.update(engagements).where(E.id == engagement_id)
                 .values(updated_at=now, **values))


def accepting(r: Row, now: datetime) -> bool:
    """Running and inside its reply window."""
    return r.status == "running" and (r.closes_at is None or r.closes_at > now)


def close_sessions(conn: Connection, engagement_id: int, *, now: datetime) -> int:
    """The engagement closed: every open session ends 'closed'."""
    return conn.execute(sa.update(engagement_sessions).where(
        S.engagement_id == engagement_id, S.status == "open").values(
        status="closed", updated_at=now)).rowcount or 0


# -- sessions ------------------------------------------------------------------------------------


def session(conn: Connection, engagement_id: int, phone: str) -> Row | None:
    return conn.execute(sa.select(engagement_sessions).where(
        S.engagement_id == engagement_id, S.phone == phone)).first()


def open_session(conn: Connection, engagement_id: int, phone: str, *, lang: str,
                 now: datetime, expires_at: datetime | None) -> Row:
    """A fresh session (a new one, or an ended one started again from the first question)."""
    old = session(conn, engagement_id, phone)
    values = dict(status="open", step=0, choice=None, answers="{}", lang=lang, started_at=now,
                  updated_at=now, expires_at=expires_at, completed_at=None)
    if old is None:
        conn.execute(engagement_sessions.insert().values(
            engagement_id=engagement_id, phone=phone, **values))
    else:
        conn.execute(sa.update(engagement_sessions).where(S.id == old.id).values(**values))
    found = session(conn, engagement_id, phone)
    assert found is not None
    return found


def save_session(conn: Connection, session_id: int, *, now: datetime, **values: Any) -> None:
    if "answers" in values and not isinstance(values["answers"], str):
        values["answers"] = json.dumps(values["answers"], ensure_ascii=False)
    conn.execute(sa.update(engagement_sessions).where(S.id == session_id)
                 .values(updated_at=now, **values))


def json_answers(s: Row) -> dict[str, Any]:
    return dict(json.loads(s.answers))


def time_out_sessions(conn: Connection, phone: str, *, now: datetime) -> list[int]:
    """This phone's open sessions silent past their timeout end 'timed_out' (lazily, when the
    phone writes again or a report is read); returns their engagement ids."""
    stale = _STALE_SESSIONS.all(conn, {"b_phone": phone, "b_now": now})
    if stale:
        conn.execute(sa.update(engagement_sessions).where(S.id.in_([s.id for s in stale]))
                     .values(status="timed_out", updated_at=now))
    return [s.engagement_id for s in stale]


def end_sessions_of_phone(conn: Connection, phone: str, *, now: datetime) -> int:
    """STOP: the phone's open questions end (its votes so far stay counted)."""
    return conn.execute(sa.update(engagement_sessions).where(
        S.phone == phone, S.status == "open").values(status="closed", updated_at=now)
    ).rowcount or 0


def is_recipient(conn: Connection, broadcast_id: int | None, phone: str) -> bool:
    if broadcast_id is None:
        return False
    return conn.execute(sa.select(OM.id).where(
        OM.broadcast_id == broadcast_id, OM.dest_addr == phone,
        OM.status != "cancelled").limit(1)).first() is not None


def open_questions(conn: Connection, phone: str, *, now: datetime
                   ) -> list[tuple[Row, Row | None]]:
    """(engagement, session or None) for each running poll/survey waiting on this phone: an
    open session, or no session yet while the phone was sent the question."""
    running = _RUNNING.all(conn, {"b_now": now})
    out: list[tuple[Row, Row | None]] = []
    for eng in running:
        s = session(conn, eng.id, phone)
        if s is not None:
            if s.status == "open":
                out.append((eng, s))
        elif is_recipient(conn, eng.broadcast_id, phone):
            out.append((eng, None))
    return out


def record_reply(conn: Connection, *, engagement_id: int, phone: str, mo_id: int | None,
                 step: int, text: str, value: Any, accepted: bool, now: datetime) -> None:
    conn.execute(engagement_replies.insert().values(
        engagement_id=engagement_id, phone=phone, mo_id=mo_id, step=step, text=text[:500],
        value=None if value is None else json.dumps(value, ensure_ascii=False),
        accepted=accepted, at=now))


def phone_lang(conn: Connection, phone: str) -> str | None:
    return conn.execute(sa.select(accounts.c.lang).where(accounts.c.phone == phone)).scalar()


# -- read-outs -----------------------------------------------------------------------------------


def recipients(conn: Connection, r: Row) -> list[str]:
    if r.broadcast_id is None:
        return []
    return sorted(set(conn.execute(sa.select(OM.dest_addr).where(
        OM.broadcast_id == r.broadcast_id, OM.status != "cancelled")).scalars()))


def tallies(conn: Connection, engagement_id: int) -> dict[int, int]:
    """Counted votes per option (0 = free text), from the sessions: one per phone."""
    return {int(choice): int(n) for choice, n in conn.execute(
        sa.select(S.choice, sa.func.count()).where(
            S.engagement_id == engagement_id, S.choice.is_not(None)).group_by(S.choice))}


def sessions(conn: Connection, engagement_id: int, now: datetime) -> list[dict[str, Any]]:
    """Every respondent, oldest first; an open session past its timeout reads 'timed_out'."""
    out = []
    for s in conn.execute(sa.select(engagement_sessions).where(
            S.engagement_id == engagement_id).order_by(S.started_at, S.id)):
        d = dict(s._mapping)
        d["answers"] = json.loads(s.answers)
        if s.status == "open" and s.expires_at is not None and s.expires_at <= now:
            d["status"] = "timed_out"
        out.append(d)
    return out


def effect(conn: Connection, r: Row, now: datetime) -> dict[str, Any]:
    """A campaign's numbers: sent, delivered, failed, replied, response rate, opt-outs
    caused, cost, and an hourly timeline. 'Replied' is a recipient who texted anything in
    the reply window; an opt-out is caused when a recipient opted out in it."""
    start = r.started_at
    end = min(x for x in (r.closes_at, r.closed_at, now) if x is not None)
    msgs = conn.execute(sa.select(OM.dest_addr, OM.status, OM.cost_millis, OM.updated_at)
                        .where(OM.broadcast_id == r.broadcast_id)).all() \
        if r.broadcast_id is not None else []
    statuses = Counter(m.status for m in msgs)
    to = sorted({m.dest_addr for m in msgs if m.status != "cancelled"})
    replies_at: list[datetime] = []
    repliers: set[str] = set()
    opted: list[datetime] = []
    if to and start is not None:
        for i in range(0, len(to), 500):  # bounded IN lists
            part = to[i:i + 500]
            for phone, at in conn.execute(sa.select(
                    inbound_messages.c.source_addr, inbound_messages.c.received_at).where(
                    inbound_messages.c.source_addr.in_(part),
                    inbound_messages.c.duplicate_of.is_(None),
                    inbound_messages.c.received_at >= start,
                    inbound_messages.c.received_at <= end)):
                repliers.add(phone)
                replies_at.append(at)
            opted += list(conn.execute(sa.select(opt_outs.c.at).where(
                opt_outs.c.phone.in_(part), opt_outs.c.at >= start,
                opt_outs.c.at <= end)).scalars())
    cost = sum(m.cost_millis or 0 for m in msgs) + _reply_cost(conn, r.id)
    timeline: dict[str, Counter[str]] = {}

    def bump(at: datetime | None, what: str) -> None:
        if at is not None:
            hour = at.replace(minute=0, second=0, microsecond=0).isoformat()
            timeline.setdefault(hour, Counter())[what] += 1

    for m in msgs:
        if m.status in SENT:
            bump(m.updated_at, "delivered" if m.status == "delivered" else "sent")
        elif m.status in FAILED:
            bump(m.updated_at, "failed")
    for at in replies_at:
        bump(at, "replies")
    for at in opted:
        bump(at, "opt_outs")
    return {
        "recipients": len(to),
        "sent": sum(statuses[s] for s in SENT),
        "delivered": statuses["delivered"],
        "failed": sum(statuses[s] for s in FAILED),
        "pending": sum(n for s, n in statuses.items() if s not in OUTBOUND_FINAL
                       and s not in SENT),
        "replied": len(repliers),
        "response_rate": round(len(repliers) / len(to), 4) if to else None,
        "opt_outs_caused": len(opted),
        "cost_millis": cost,
        "timeline": [{"hour": h, **dict(c)} for h, c in sorted(timeline.items())],
    }


def _reply_cost(conn: Connection, engagement_id: int) -> int:
    """What the answers to routed replies (confirmations, re-asks, next questions) cost."""
    mo_ids = sa.select(engagement_replies.c.mo_id).where(
        engagement_replies.c.engagement_id == engagement_id,
        engagement_replies.c.mo_id.is_not(None)).scalar_subquery()
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(OM.cost_millis), 0))
                            .where(OM.in_reply_to.in_(mo_ids))).scalar() or 0)


def reply_counts(conn: Connection, engagement_id: int) -> dict[str, int]:
    er = engagement_replies.c
    counts = {bool(a): int(n) for a, n in conn.execute(
        sa.select(er.accepted, sa.func.count()).where(er.engagement_id == engagement_id)
        .group_by(er.accepted))}
    return {"accepted": counts.get(True, 0), "refused": counts.get(False, 0)}


def csv_rows(question_ids: list[str], rows: list[dict[str, Any]]) -> str:
    """One row per respondent (phone, status, times, one column per question), UTF-8 with a
    BOM so spreadsheet programs read the Chinese right."""
    out = io.StringIO()
    out.write("\ufeff")
    w = csv.writer(out)
    w.writerow(["phone", "status", "started_at", "completed_at", *question_ids])
    for s in rows:
        answers = s["answers"]
        w.writerow([s["phone"], s["status"], _iso(s["started_at"]), _iso(s["completed_at"]),
                    *(_cell(answers.get(q)) for q in question_ids)])
    return out.getvalue()


def _iso(at: datetime | None) -> str:
    return "" if at is None else at.isoformat()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return str(value.get("other", json.dumps(value, ensure_ascii=False)))
    return str(value)


def save_voter_groups(conn: Connection, r: Row, labels: list[str]) -> list[dict[str, Any]]:
    """The voters of each option as a group named "<keyword>-<n>" (made or refilled), for a
    follow-up broadcast. Groups hold accounts: a voter without an account is listed in
    ``unregistered`` (a `list` broadcast reaches them)."""
    out = []
    for n, label in enumerate(labels, 1):
        phones = list(conn.execute(sa.select(S.phone).where(
            S.engagement_id == r.id, S.choice == n).order_by(S.phone)).scalars())
        name = f"{r.keyword}-{n}"
        gid = conn.execute(sa.select(groups.c.id).where(groups.c.name == name)).scalar()
        if gid is None:
            gid = conn.execute(groups.insert().values(name=name).returning(groups.c.id)
                               ).scalar_one()
        conn.execute(sa.delete(group_members).where(group_members.c.group_id == gid))
        members = dict(conn.execute(sa.select(accounts.c.phone, accounts.c.id).where(
            accounts.c.phone.in_(phones))).all()) if phones else {}
        if members:
            conn.execute(group_members.insert(), [
                {"group_id": gid, "account_id": a} for a in members.values()])
        out.append({"option": n, "label": label, "group": name, "voters": len(phones),
                    "members": len(members),
                    "unregistered": [p for p in phones if p not in members]})
    return out


def reply_window_end(started: datetime, minutes: int | None) -> datetime | None:
    return None if minutes is None else started + timedelta(minutes=minutes)
