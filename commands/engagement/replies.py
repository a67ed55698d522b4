"""Replies to polls and surveys: the engine's one hook (`route`), called for every MO after
the rules and before an unknown command would get E01.

Routing (issue 13):
  * A protocol command (anything the parser recognises, even malformed) is never taken: it
    runs as usual. STOP / TD / 退订 also end the phone's open questions (votes stay counted).
  * A message starting with a live engagement's keyword goes to it: `SAT 2`, or `SAT` alone
    to (re)start an open poll / survey. This is also how a phone with two open questions
    says which it answers.
  * Otherwise, while the phone has an open question, the text is its answer. Unanswered
    questions come first (a poll already voted on stays open for a changed vote, but yields
    to a newer survey); with two or more, the phone is asked which, with each one's keyword.

Everything runs inside the MO's transaction: the vote, the session's step and the reply
commit with the MO's disposition, once. An SMSC redelivery never reaches this code (the MO
identity layer replays the first answer), so a redelivered vote counts once.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Row

from commands.context import Context, Outcome
from commands.engagement.answers import AnswerError, clean, read_answer
from commands.engagement.questions import opening, option_label, question_text
from commands.engagement.spec import PollSpec, SurveySpec, parse_config, pick
from commands.normalize import is_cjk
from commands.parsed import Parsed, ParseError
from commands.templates import render
from store import engagement as st

COMMAND = "ENGAGE"  # the MO's command label: "ENGAGE:SAT", "ENGAGE:SAT E02"


def route(ctx: Context, result: Parsed | ParseError, normalised: str) -> Outcome | None:
    """An Outcome when the message belongs to a poll or survey, else None (go on as usual)."""
    if isinstance(result, Parsed):
        if result.command == "UNSUB" and result.args.get("topic") is None:
            st.end_sessions_of_phone(ctx.conn, ctx.phone, now=ctx.now)
        return None
    if result.command is not None or result.key != "err_unknown_command":
        return None  # a malformed protocol command, or an empty message: the protocol's
    text = clean(normalised)
    named = _named(ctx, text)
    if named is not None:
        return named
    timed_out = st.time_out_sessions(ctx.conn, ctx.phone, now=ctx.now)
    waiting = st.open_questions(ctx.conn, ctx.phone, now=ctx.now)
    unanswered = [(e, s) for e, s in waiting if s is None or s.choice is None]
    candidates = unanswered or waiting
    if len(candidates) > 1:
        return _which(ctx, text, [e for e, _ in candidates])
    if candidates:
        eng, session = candidates[0]
        return _answer(ctx, eng, session, text)
    if timed_out:
        eng = st.row(ctx.conn, timed_out[0])
        assert eng is not None
        lang = _lang(ctx, eng, None, text)
        return _say(eng, lang, "survey_timed_out", name=eng.name, keyword=eng.keyword)
    return None


def _named(ctx: Context, text: str) -> Outcome | None:
    """`KEYWORD [answer]` for a live engagement (a Chinese keyword needs no space)."""
    upper = text.upper()
    for eng in st.live_keywords(ctx.conn):
        kw = eng.keyword
        if upper == kw or upper.startswith(kw + " ") or (
                is_cjk(kw[-1]) and upper.startswith(kw)):
            return _by_keyword(ctx, eng, text[len(kw):].strip())
    return None


def _by_keyword(ctx: Context, eng: Row, rest: str) -> Outcome:
    session = st.session(ctx.conn, eng.id, ctx.phone)
    lang = _lang(ctx, eng, session, rest)
    if eng.status == "paused":
        return _say(eng, lang, "engage_paused", keyword=eng.keyword)
    if not st.accepting(eng, ctx.now):
        return _say(eng, lang, "engage_closed", keyword=eng.keyword)
    if not (eng.open_to_all or session is not None
            or st.is_recipient(ctx.conn, eng.broadcast_id, ctx.phone)):
        return _say(eng, lang, "engage_not_open", keyword=eng.keyword)
    spec = _spec(eng)
    if session is not None and session.status == "open" and session.expires_at is not None \
            and session.expires_at <= ctx.now:
        st.save_session(ctx.conn, session.id, now=ctx.now, status="timed_out")
        session = st.session(ctx.conn, eng.id, ctx.phone)
    if rest:
        return _answer(ctx, eng, session, rest)
    # The keyword alone: (re)send the question; a survey not open starts from the top.
    if isinstance(spec, SurveySpec):
        if session is not None and session.status == "done":
            return _say(eng, lang, "survey_answered", name=eng.name)
        if session is None or session.status != "open":
            session = st.open_session(ctx.conn, eng.id, ctx.phone, lang=lang, now=ctx.now,
                                      expires_at=_expiry(spec, ctx.now))
            return Outcome(opening(spec, lang), lang, _label(eng))
        return Outcome(question_text(spec.questions[session.step], lang), lang, _label(eng))
    if session is None or session.status != "open":
        # The poll's question now waits on this phone: a bare answer ("2") is its vote.
        st.open_session(ctx.conn, eng.id, ctx.phone, lang=lang, now=ctx.now, expires_at=None)
    return Outcome(opening(spec, lang), lang, _label(eng))


def _answer(ctx: Context, eng: Row, session: Row | None, text: str) -> Outcome:
    spec = _spec(eng)
    lang = _lang(ctx, eng, session, text)
    if isinstance(spec, PollSpec):
        return _vote(ctx, eng, spec, session, text, lang)
    assert isinstance(spec, SurveySpec)
    if session is None or session.status != "open":
        if session is not None and session.status == "done":
            return _say(eng, lang, "survey_answered", name=eng.name)
        # A recipient answering the broadcast's first question, or a restart after a timeout.
        session = st.open_session(ctx.conn, eng.id, ctx.phone, lang=lang, now=ctx.now,
                                  expires_at=_expiry(spec, ctx.now))
    question = spec.questions[session.step]
    value = read_answer(question, text, today=ctx.today)
    expires = _expiry(spec, ctx.now)
    if isinstance(value, AnswerError):
        _log(ctx, eng, session.step, text, None)
        st.save_session(ctx.conn, session.id, now=ctx.now, expires_at=expires)
        return _reask(eng, lang, value, question_text(question, lang))
    _log(ctx, eng, session.step, text, value)
    answers = st.json_answers(session) | {question.id: value}
    step = session.step + 1
    if step >= len(spec.questions):
        st.save_session(ctx.conn, session.id, now=ctx.now, answers=answers, step=step,
                        status="done", completed_at=ctx.now, expires_at=None)
        return Outcome(pick(spec.final, lang), lang, _label(eng))
    st.save_session(ctx.conn, session.id, now=ctx.now, answers=answers, step=step,
                    expires_at=expires)
    return Outcome(question_text(spec.questions[step], lang), lang, _label(eng))


def _vote(ctx: Context, eng: Row, spec: PollSpec, session: Row | None, text: str,
          lang: str) -> Outcome:
    question = spec.as_question()
    value = read_answer(question, text, today=ctx.today, free_text=spec.free_text)
    if isinstance(value, AnswerError):
        _log(ctx, eng, 0, text, None)
        return _reask(eng, lang, value, question_text(question, lang))
    choice = value if isinstance(value, int) else 0  # 0: free text ("other")
    if session is None or session.status != "open":
        session = st.open_session(ctx.conn, eng.id, ctx.phone, lang=lang, now=ctx.now,
                                  expires_at=None)
    previous = session.choice
    if previous is not None and spec.counts == "first":
        _log(ctx, eng, 0, text, value, accepted=False)
        label = option_label(spec, previous, lang) if previous else text
        return _confirm(eng, spec, lang, "vote_kept", label)
    _log(ctx, eng, 0, text, value)
    st.save_session(ctx.conn, session.id, now=ctx.now, choice=choice,
                    answers={"vote": value}, completed_at=ctx.now)
    if choice == 0:
        return _confirm(eng, spec, lang, "vote_other", "")
    key = "vote_changed" if previous is not None and previous != choice else "vote_ok"
    return _confirm(eng, spec, lang, key, option_label(spec, choice, lang))


def _which(ctx: Context, text: str, engs: list[Row]) -> Outcome:
    lang = _lang(ctx, engs[0], None, text)
    sep = "；" if lang == "zh" else "; "
    choices = sep.join(render(lang, "which_choice", keyword=e.keyword, name=e.name)
                       for e in engs)
    # Not an error code: nothing was wrong with the answer, only its address.
    return Outcome(render(lang, "which_question", n=len(engs), choices=choices), lang,
                   COMMAND)


# -- small helpers -----------------------------------------------------------------------------


def _spec(eng: Row) -> PollSpec | SurveySpec:
    spec = parse_config(eng.kind, json.loads(eng.config))
    assert spec is not None, f"engagement {eng.id} ({eng.kind}) takes no replies"
    return spec


def _lang(ctx: Context, eng: Row, session: Row | None, text: str) -> str:
    """The phone's language: Chinese written now, else its session's, else its account's,
    else the engagement's."""
    if any(is_cjk(c) for c in text):
        return "zh"
    if session is not None:
        return str(session.lang)
    return st.phone_lang(ctx.conn, ctx.phone) or str(eng.lang)


def _expiry(spec: SurveySpec, now: datetime) -> datetime:
    return now + timedelta(minutes=spec.timeout_minutes)


def _label(eng: Row) -> str:
    return f"{COMMAND}:{eng.keyword}"


def _say(eng: Row, lang: str, key: str, **values: Any) -> Outcome:
    return Outcome(render(lang, key, **values), lang, _label(eng))


def _reask(eng: Row, lang: str, error: AnswerError, question: str) -> Outcome:
    what = render(lang, error.key, **error.params)
    return Outcome(render(lang, "ans_err", what=what, question=question), lang, _label(eng),
                   "E02")


def _confirm(eng: Row, spec: PollSpec, lang: str, key: str, label: str) -> Outcome:
    if not spec.confirm:
        return Outcome(None, lang, _label(eng))
    return Outcome(render(lang, key, label=label), lang, _label(eng))


def _log(ctx: Context, eng: Row, step: int, text: str, value: Any, *,
         accepted: bool | None = None) -> None:
    st.record_reply(ctx.conn, engagement_id=eng.id, phone=ctx.phone, mo_id=ctx.mo_id,
                    step=step, text=text, value=value,
                    accepted=value is not None if accepted is None else accepted,
                    now=ctx.now)
