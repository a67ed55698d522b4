"""SUB UNSUB: topic subscriptions and opt-outs, by phone number (registered or not)."""

from __future__ import annotations

from sqlalchemy.engine import Row

from commands.context import Context, Outcome
from commands.handlers.common import fail, ok
from commands.parsed import Parsed
from store.domain import topics


def _topic_name(parsed: Parsed, topic: Row) -> str:
    return topic.name_zh if parsed.lang == "zh" else topic.name_en


def sub(ctx: Context, parsed: Parsed, account: Row | None) -> Outcome:
    """Subscribe (E11 for an unknown or inactive topic; E03 when an unregistered number asks
    for a non-public topic). Subscribing clears an earlier UNSUB ALL / STOP opt-out."""
    code = str(parsed.args["topic"]).upper()
    topic = topics.by_code(ctx.conn, code)
    if topic is None or not topic.active:
        return fail(parsed, "E11", "e11_unknown_topic", topic=code)
    if account is None and not topic.public:
        return fail(parsed, "E03", "e03_topic_private", topic=code)
    window = parsed.args.get("window")
    topics.subscribe(ctx.conn, ctx.phone, topic.id, window=window, now=ctx.now)
    name = _topic_name(parsed, topic)
    if window is None:
        return ok(parsed, "sub_ok", topic=code, name=name)
    return ok(parsed, "sub_ok_window", topic=code, name=name, start=f"{window[0]:02d}",
              end=f"{window[1]:02d}")


def unsub(ctx: Context, parsed: Parsed, account: Row | None) -> Outcome:
    """UNSUB <topic> removes one subscription (E11 for an unknown topic code); UNSUB ALL,
    STOP, TD, 退订 remove all and record an opt-out. Works for any number."""
    code = parsed.args.get("topic")
    if code is None:
        topics.unsubscribe_all(ctx.conn, ctx.phone, now=ctx.now)
        return ok(parsed, "unsub_all")
    code = str(code).upper()
    topic = topics.by_code(ctx.conn, code)
    if topic is None:
        return fail(parsed, "E11", "e11_unknown_topic", topic=code)
    removed = topics.unsubscribe(ctx.conn, ctx.phone, topic.id)
    key = "unsub_ok" if removed else "unsub_not_subscribed"
    return ok(parsed, key, topic=code, name=_topic_name(parsed, topic))
