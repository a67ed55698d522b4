"""REG PIN CHG CFM BAL: the account and its number."""

from __future__ import annotations

from sqlalchemy.engine import Row

from commands.context import Context, Notice, Outcome
from commands.handlers.common import check_pin, fail, money, ok, text
from commands.parsed import Parsed
from commands.pins import hash_pin
from store.domain import accounts, phone_changes
from store.models import PRIORITY_ALERT


def reg(ctx: Context, parsed: Parsed, sender: Row | None) -> Outcome:
    """Bind this phone to an account whose PIN was issued out of band."""
    account_no = str(parsed.args["account"]).upper()
    target = accounts.by_account_no(ctx.conn, account_no)
    if target is None or not target.active:
        return fail(parsed, "E03", "e03_unknown_account", account=account_no)
    if sender is not None and sender.id != target.id:
        return fail(parsed, "E03", "e03_phone_bound", account=sender.account_no)
    if target.phone is not None and target.phone != ctx.phone:
        return fail(parsed, "E03", "e03_account_bound", account=account_no)
    denied = check_pin(ctx, parsed, target)
    if denied is not None:
        return denied
    if target.phone != ctx.phone:
        accounts.bind_phone(ctx.conn, target.id, ctx.phone, now=ctx.now)
    return ok(parsed, "reg_ok", name=target.name, account=target.account_no)


def pin(ctx: Context, parsed: Parsed, account: Row) -> Outcome:
    """Change the PIN: the old one checked (ctx.pin_ok), the new one hashed.

    The new PIN's keyed hash is computed inside the transaction (microseconds); an engine
    that precomputes it can pass it as `ctx.new_pin_hash`.
    """
    denied = check_pin(ctx, parsed, account)
    if denied is not None:
        return denied
    if parsed.args["new"] == parsed.args["old"]:
        return fail(parsed, "E02", "e02_same_pin")
    encoded = getattr(ctx, "new_pin_hash", None) or hash_pin(parsed.args["new"])
    accounts.set_pin_hash(ctx.conn, account.id, encoded, now=ctx.now)
    return ok(parsed, "pin_ok")


def chg(ctx: Context, parsed: Parsed, account: Row) -> Outcome:
    """Start moving the account to a new number: a code goes to the new number."""
    denied = check_pin(ctx, parsed, account)
    if denied is not None:
        return denied
    new_phone = str(parsed.args["phone"])
    if new_phone == account.phone:
        return fail(parsed, "E02", "e02_same_phone", phone=new_phone)
    if accounts.phone_taken(ctx.conn, new_phone):
        return fail(parsed, "E03", "e03_phone_taken", phone=new_phone)
    _, code = phone_changes.create(ctx.conn, account.id, new_phone, now=ctx.now)
    minutes = int(phone_changes.VALIDITY.total_seconds() // 60)
    notice = Notice(
        new_phone,
        text(parsed, "chg_notice", name=account.name, account=account.account_no, code=code,
             minutes=minutes),
        PRIORITY_ALERT,
    )
    return ok(parsed, "chg_sent", phone=new_phone, minutes=minutes, notices=[notice])


def cfm(ctx: Context, parsed: Parsed, sender: Row | None) -> Outcome:
    """Confirm a pending number change from the new number.

    No pending change, a wrong code, or an expired one: E09 ("not found or no longer
    changeable" — the same meaning as for orders). Five wrong codes expire the change.
    """
    code = str(parsed.args["code"])
    change = phone_changes.pending_for(ctx.conn, ctx.phone)
    if change is None:
        return fail(parsed, "E09", "e09_no_pending_change")
    if ctx.now >= change.expires_at:
        phone_changes.set_status(ctx.conn, change.id, "expired")
        return fail(parsed, "E09", "e09_code_expired", code=code)
    if code != change.code:
        phone_changes.count_wrong_code(ctx.conn, change.id)
        return fail(parsed, "E09", "e09_code_wrong", code=code)
    account = accounts.by_id(ctx.conn, change.account_id)
    if account is None or not account.active:
        phone_changes.set_status(ctx.conn, change.id, "expired")
        return fail(parsed, "E09", "e09_no_pending_change")
    if sender is not None or accounts.phone_taken(ctx.conn, ctx.phone):
        phone_changes.set_status(ctx.conn, change.id, "expired")
        return fail(parsed, "E03", "e03_phone_taken", phone=ctx.phone)
    old_phone = account.phone
    accounts.bind_phone(ctx.conn, account.id, ctx.phone, now=ctx.now)
    phone_changes.confirm(ctx.conn, change.id)
    notices = []
    if old_phone:
        # Subscriptions, the opt-out and tags follow the person to the new number.
        phone_changes.move_phone_rows(ctx.conn, old_phone, ctx.phone)
        notices.append(Notice(old_phone, text(parsed, "cfm_old_notice",
                                              account=account.account_no, phone=ctx.phone),
                              PRIORITY_ALERT))
    return ok(parsed, "cfm_ok", account=account.account_no, notices=notices)


def bal(ctx: Context, parsed: Parsed, account: Row) -> Outcome:
    figures = {"balance": money(account.balance_cents), "credit": money(account.credit_cents)}
    if account.last_bill_cents is None:
        return ok(parsed, "bal_no_bill", **figures)
    due = account.last_bill_due.isoformat() if account.last_bill_due else "-"
    return ok(parsed, "bal_ok", bill=money(account.last_bill_cents), due=due, **figures)
