"""Schema as SQLAlchemy Core tables (the hot paths are Core, not ORM).

Every change here needs a migration in migrations/versions/; tests/store/test_migrations.py
fails when the two drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names, so later migrations (and SQLite batch mode) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# 64-bit ids on PostgreSQL; SQLite only autoincrements an "INTEGER PRIMARY KEY" column.
BigId = BigInteger().with_variant(Integer(), "sqlite")

INBOUND_STATUSES = ("received", "processed", "failed")
# How each MO ended (issue 8, "never silent"): stored on the row, shown in the interaction log
# and the API, counted in /metrics (smsgw_mo_dispositions_total). Documented for operators in
# docs/commands.md (commands/docs.py).
MO_DISPOSITIONS: dict[str, str] = {
    "answered": "handled; the reply is queued",
    "no_reply": "handled; the command has nothing to say back",
    "forwarded": "a forward rule handed it on; no reply by design",
    "replayed_duplicate": "an SMSC redelivery: the original's answer sent again, no second "
                          "effect",
    "duplicate_no_reply": "an SMSC redelivery of a message that itself got no reply (see "
                          "its disposition)",
    "duplicate_part": "a redelivered part of a long message; the whole message is answered "
                      "once",
    "rate_limited_notified": "over the sender's rate limit: the window's one E12 sent",
    "rate_limited": "over the rate limit and already told this window: nothing sent",
    "opt_out_reply_limited": "an opt-out applied over the rate limit; its confirmation "
                             "already went this window",
    "reply_suppressed": "the same text got the same error answer less than a minute ago "
                        "(a phone resending): not sent again, recorded",
    "incomplete": "parts of a long message never arrived; the sender was told which",
    "receipt_without_id": "a delivery receipt carrying no id: kept for operators, never "
                          "taken for a command",
    "failed": "processing raised an error: kept for an operator (see its error)",
}
OUTBOUND_STATUSES = (
    "queued",
    "sending",
    "submitted",
    "delivered",
    "failed",
    "expired",
    "rejected",
    "cancelled",
    "unknown",  # no receipt by the deadline, and query_sm did not tell (issue 9)
)
# Statuses after which nothing changes any more (receipts may still refine a part).
OUTBOUND_FINAL = frozenset({"delivered", "failed", "expired", "rejected", "cancelled",
                            "unknown"})
PART_STATUSES = ("submitted", "delivered", "failed", "expired", "rejected", "unknown")

PRIORITY_ALERT = 0
PRIORITY_REPLY = 1
PRIORITY_TRANSACTIONAL = 2
PRIORITY_BULK = 3


# SQLAlchemy's SQLite DATETIME storage format (sqlalchemy.dialects.sqlite.DATETIME), which its
# result processor parses back.
_SQLITE_DATETIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        # Naive times are ambiguous; refusing them catches clock bugs early.
        raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, whatever the backend stores.

    PostgreSQL keeps timestamptz; SQLite has no time zones, so the value is stored as naive
    UTC text (which also sorts correctly) and made aware again on the way out.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = _as_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def bind_processor(self, dialect: Dialect) -> Any:
        """On SQLite, the check and the text SQLAlchemy's SQLite DATETIME would store, in one
        step: a datetime is bound several times per message, and the two layers (this
        decorator, then the dialect's dict-based formatting) cost three times as much."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            value = _as_utc(value)
            return _SQLITE_DATETIME % (value.year, value.month, value.day, value.hour,
                                       value.minute, value.second, value.microsecond)

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("connection", String(64), nullable=False),
    # SMSC message id (receipted_message_id / message_id TLV) or a PDU identity.
    Column("dedup_key", String(255), nullable=False),
    Column("source_addr", String(64), nullable=False),
    Column("dest_addr", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("data_coding", Integer, nullable=False),
    Column("esm_class", Integer, nullable=False),
    Column("short_message", LargeBinary, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False, server_default="received"),
    Column("processed_at", UTCDateTime, nullable=True),
    Column("error", Text, nullable=True),
    Column("command", String(64), nullable=True),
    # A concatenated part's (reference, total, sequence): parts wait for their siblings
    # across restarts (migration 0003).
    Column("concat_ref", Integer, nullable=True),
    Column("concat_total", SmallInteger, nullable=True),
    Column("concat_seq", SmallInteger, nullable=True),
    # Redelivery identity (migration 0008, gateway/inbound.py): a digest of source, dest and
    # content; `duplicate_of` the original this MO repeats when it is an SMSC redelivery;
    # `ack_session` the SMPP session whose deliver_sm_resp acknowledged it, and
    # `ack_confirmed` set once that session stayed up past the SMSC's response timeout (so
    # the SMSC surely got the ack and an identical MO afterwards is a person's new message).
    Column("content_key", String(64), nullable=True),
    Column("duplicate_of", BigId, nullable=True),
    Column("ack_session", String(128), nullable=True),
    Column("ack_confirmed", Boolean, nullable=False, server_default=sa.false()),
    Column("disposition", String(32), nullable=True),
    UniqueConstraint("connection", "dedup_key"),
    CheckConstraint(_in("status", INBOUND_STATUSES), name="status"),
    CheckConstraint(f"disposition IS NULL OR {_in('disposition', tuple(MO_DISPOSITIONS))}",
                    name="disposition"),
    # unprocessed_mos(): status='received' oldest first.
    Index(None, "status", "id"),
    # The latest identical predecessor of an MO (redelivery check).
    Index(None, "content_key", "id"),
    # A long MO's siblings, found by whichever instance stores the last part (0011).
    Index(None, "source_addr", "concat_ref"),
    # An MO's stored redeliveries, masked with it (0019; partial: few rows have one).
    Index("ix_inbound_messages_duplicate_of", "duplicate_of",
          sqlite_where=sa.text("duplicate_of IS NOT NULL"),
          postgresql_where=sa.text("duplicate_of IS NOT NULL")),
)

outbound_messages = Table(
    "outbound_messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("priority", SmallInteger, nullable=False),
    Column("source_addr", String(64), nullable=True),
    Column("dest_addr", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("status", String(16), nullable=False, server_default="queued"),
    Column("schedule_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("in_reply_to", BigId, ForeignKey("inbound_messages.id"), nullable=True),
    Column("connection", String(64), nullable=True),
    Column("claimed_by", String(128), nullable=True),
    Column("parts", Integer, nullable=False, server_default="1"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("error_code", Integer, nullable=True),
    Column("error_text", Text, nullable=True),
    Column("possibly_duplicate", Boolean, nullable=False, server_default=sa.false()),
    Column("registered_delivery", Boolean, nullable=False, server_default=sa.true()),
    # What the chosen route charged, in 1/1000 of the currency unit (parts x cost per part).
    Column("cost_millis", Integer, nullable=True),
    Column("broadcast_id", BigId, nullable=True, index=True),
    # The upstream application (SMPP server side) that submitted it, owed its receipt.
    Column("upstream", String(16), nullable=True),
    # Where the message's final state is POSTed (migration 0016, gateway/webhooks/).
    Column("callback_url", String(1024), nullable=True),
    CheckConstraint("priority BETWEEN 0 AND 3", name="priority"),
    CheckConstraint(_in("status", OUTBOUND_STATUSES), name="status"),
    # claim_batch(): WHERE status='queued' ORDER BY priority, schedule..., id.
    Index("ix_outbound_messages_claim", "status", "priority", "schedule_at", "id"),
    # release_claims(): this instance's 'sending' rows.
    Index(None, "claimed_by", "status"),
)

# The claim's order and the expiry look-up (migration 0017_hot_path).
Index("ix_outbound_messages_due", outbound_messages.c.status, outbound_messages.c.priority,
      sa.func.coalesce(outbound_messages.c.schedule_at, outbound_messages.c.created_at),
      outbound_messages.c.id)
Index("ix_outbound_messages_expiry", outbound_messages.c.status, outbound_messages.c.expires_at)

outbound_parts = Table(
    "outbound_parts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("message_id", BigId, ForeignKey("outbound_messages.id"), nullable=False),
    Column("part_no", Integer, nullable=False),  # 1-based
    Column("smsc_message_id", String(128), nullable=True, index=True),  # normalised
    Column("status", String(16), nullable=False),
    Column("error_code", Integer, nullable=True),
    Column("submitted_at", UTCDateTime, nullable=True),
    Column("done_at", UTCDateTime, nullable=True),
    # When a part past its receipt deadline was followed up with query_sm (issue 9).
    Column("queried_at", UTCDateTime, nullable=True),
    UniqueConstraint("message_id", "part_no"),
    # Parts still waiting for their receipt, oldest first (gateway/receipt_followup.py).
    Index(None, "status", "submitted_at"),
    CheckConstraint(_in("status", PART_STATUSES), name="status"),
)

message_events = Table(
    "message_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("direction", String(3), nullable=False),
    # No FK: the same table records inbound and outbound histories.
    Column("message_id", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("detail", Text, nullable=True),
    CheckConstraint("direction IN ('in', 'out')", name="direction"),
    Index(None, "direction", "message_id", "id"),
)

# The first answer to a POST /messages (or /messages/bulk) sent with an Idempotency-Key, per
# API key (`scope`), replayed to a retry until `expires_at` (gateway/api/idempotency.py).
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),  # sha256 of method, path and body
    Column("status_code", SmallInteger, nullable=False),
    Column("response", Text, nullable=False),  # the JSON body
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)

pending_receipts = Table(
    "pending_receipts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("connection", String(64), nullable=False),
    Column("smsc_message_id", String(128), nullable=False, index=True),  # normalised
    Column("state", String(16), nullable=False),
    Column("error_code", Integer, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("raw", Text, nullable=False),
)


# ---------------------------------------------------------------------------------------------
# Domain (revision 0002_domain): accounts, products, orders, data collection, subscriptions,
# number changes, and the rule engine's tables. Money is integer cents (never floats).
# ---------------------------------------------------------------------------------------------

ROLES = ("retailer", "subscriber", "manager")
LANGS = ("zh", "en")
ORDER_STATUSES = ("pending_review", "pending_funds", "approved", "rejected", "cancelled")
# Orders the sender may still change or cancel by SMS (protocol.md: "not yet reviewed").
ORDER_CHANGEABLE = frozenset({"pending_review", "pending_funds"})
PHONE_CHANGE_STATUSES = ("pending", "confirmed", "expired")
RULE_ACTIONS = ("command", "reply", "tag", "forward", "webhook")
FORWARD_STATUSES = ("pending", "delivered")

Money = BigInteger

accounts = Table(
    "accounts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("account_no", String(32), nullable=False, unique=True),  # the code used in REG
    Column("role", String(16), nullable=False),
    Column("name", String(128), nullable=False),
    Column("phone", String(32), nullable=True, unique=True),  # NULL until REG
    Column("pin_hash", String(255), nullable=True),  # commands.pins encoding, never plain
    Column("pin_locked_until", UTCDateTime, nullable=True),
    Column("lang", String(2), nullable=False, server_default="zh"),
    Column("region", String(64), nullable=True),
    Column("route", String(64), nullable=True, index=True),
    Column("manager_id", BigId, ForeignKey("accounts.id"), nullable=True, index=True),
    Column("sms_ordering", Boolean, nullable=False, server_default=sa.false()),
    # ISO weekday numbers, e.g. "1,4" (Monday, Thursday); empty = every day.
    Column("order_days", String(16), nullable=False, server_default=""),
    # "HH:MM" local service time; NULL = all day.
    Column("order_window_start", String(5), nullable=True),
    Column("order_window_end", String(5), nullable=True),
    Column("balance_cents", Money, nullable=False, server_default="0"),
    Column("credit_cents", Money, nullable=False, server_default="0"),
    Column("last_bill_cents", Money, nullable=True),
    Column("last_bill_due", sa.Date, nullable=True),
    Column("balance_low_cents", Money, nullable=True),  # low-balance notice threshold
    Column("value_band", String(16), nullable=True),
    Column("active", Boolean, nullable=False, server_default=sa.true()),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The recipient's daily window for non-urgent notices, "HH:MM" local (migration 0004).
    Column("notify_window_start", String(5), nullable=True),
    Column("notify_window_end", String(5), nullable=True),
    CheckConstraint(_in("role", ROLES), name="role"),
    CheckConstraint(_in("lang", LANGS), name="lang"),
)

pin_failures = Table(
    "pin_failures",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("account_id", BigId, ForeignKey("accounts.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    # Lockout rule counts one account's failures in the last 30 minutes.
    Index(None, "account_id", "at"),
)

products = Table(
    "products",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("code", String(4), nullable=False, unique=True),
    Column("name_zh", String(64), nullable=False),
    Column("name_en", String(64), nullable=False),
    Column("price_cents", Money, nullable=False),
    Column("cost_cents", Money, nullable=False),
    Column("max_qty", Integer, nullable=False),
    Column("stock_qty", Integer, nullable=False, server_default="0"),  # company stock
    Column("active", Boolean, nullable=False, server_default=sa.true()),
)

orders = Table(
    "orders",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),  # the number users see
    Column("account_id", BigId, ForeignKey("accounts.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("total_cents", Money, nullable=False),
    Column("reject_reason", Text, nullable=True),
    Column("mo_id", BigId, ForeignKey("inbound_messages.id"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint(_in("status", ORDER_STATUSES), name="status"),
    # latest(): an account's newest order.
    Index(None, "account_id", "id"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("order_id", BigId, ForeignKey("orders.id"), nullable=False),
    Column("product_code", String(4), nullable=False),
    Column("qty", Integer, nullable=False),
    Column("price_cents", Money, nullable=False),  # unit price when the line was set
    UniqueConstraint("order_id", "product_code"),
)

order_history = Table(
    "order_history",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("order_id", BigId, ForeignKey("orders.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("detail", Text, nullable=True),
    Index(None, "order_id", "id"),
)

sales_reports = Table(
    "sales_reports",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("account_id", BigId, ForeignKey("accounts.id"), nullable=False),
    Column("report_date", sa.Date, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("account_id", "report_date"),
    Index(None, "report_date"),
)

sales_lines = Table(
    "sales_lines",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("report_id", BigId, ForeignKey("sales_reports.id"), nullable=False),
    Column("product_code", String(4), nullable=False),
    Column("qty", Integer, nullable=False),
    # Price and cost when reported, so revenue and margin do not drift with later price changes.
    Column("price_cents", Money, nullable=False),
    Column("cost_cents", Money, nullable=False),
    UniqueConstraint("report_id", "product_code"),
)

stock_counts = Table(
    "stock_counts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("account_id", BigId, ForeignKey("accounts.id"), nullable=False),
    Column("count_date", sa.Date, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("account_id", "count_date"),
)

stock_lines = Table(
    "stock_lines",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("count_id", BigId, ForeignKey("stock_counts.id"), nullable=False),
    Column("product_code", String(4), nullable=False),
    Column("qty", Integer, nullable=False),
    UniqueConstraint("count_id", "product_code"),
)

serial_events = Table(
    "serial_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("account_id", BigId, ForeignKey("accounts.id"), nullable=False),
    Column("serial", String(32), nullable=False, index=True),
    Column("is_imei", Boolean, nullable=False),
    Column("duplicate", Boolean, nullable=False),  # seen before: flagged, not counted
    Column("mo_id", BigId, ForeignKey("inbound_messages.id"), nullable=True),
    Column("at", UTCDateTime, nullable=False),
)

topics = Table(
    "topics",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("code", String(32), nullable=False, unique=True),  # uppercase, e.g. OUTAGE
    Column("name_zh", String(64), nullable=False),
    Column("name_en", String(64), nullable=False),
    # Open to unregistered senders (SUB from any number); otherwise registered accounts only.
    Column("public", Boolean, nullable=False, server_default=sa.true()),
    Column("active", Boolean, nullable=False, server_default=sa.true()),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("phone", String(32), nullable=False),
    Column("topic_id", BigId, ForeignKey("topics.id"), nullable=False),
    # Local hours [start, end) in which this subscriber accepts the topic; NULL = any time.
    Column("window_start", SmallInteger, nullable=True),
    Column("window_end", SmallInteger, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("phone", "topic_id"),
    Index(None, "topic_id"),
)

opt_outs = Table(
    "opt_outs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("phone", String(32), nullable=False, unique=True),
    Column("at", UTCDateTime, nullable=False),
)

phone_changes = Table(
    "phone_changes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("account_id", BigId, ForeignKey("accounts.id"), nullable=False),
    Column("new_phone", String(32), nullable=False),
    Column("code", String(6), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),  # wrong CFM codes
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint(_in("status", PHONE_CHANGE_STATUSES), name="status"),
    Index(None, "new_phone", "status"),
)

rules = Table(
    "rules",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("priority", Integer, nullable=False),  # lower first
    Column("keyword", String(64), nullable=True),
    Column("pattern", Text, nullable=True),  # regex
    Column("role", String(16), nullable=True),
    Column("group_name", String(64), nullable=True),
    Column("window_start", String(5), nullable=True),  # "HH:MM"
    Column("window_end", String(5), nullable=True),
    Column("action", String(16), nullable=False),
    Column("argument", Text, nullable=False, server_default=""),
    Column("enabled", Boolean, nullable=False, server_default=sa.true()),
    Column("updated_at", UTCDateTime, nullable=False),
    # Only MOs to this service number (gateway/numbers.py); NULL: every number (0016).
    Column("service_number", String(32), nullable=True),
    CheckConstraint(_in("action", RULE_ACTIONS), name="action"),
)

forwards = Table(
    "forwards",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("mo_id", BigId, ForeignKey("inbound_messages.id"), nullable=False),
    Column("target", String(255), nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    CheckConstraint(_in("status", FORWARD_STATUSES), name="status"),
    Index(None, "status", "id"),
)

phone_tags = Table(
    "phone_tags",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("phone", String(32), nullable=False),
    Column("tag", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("phone", "tag"),
)

groups = Table(
    "groups",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
)

group_members = Table(
    "group_members",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", BigId, ForeignKey("groups.id"), nullable=False),
    Column("account_id", BigId, ForeignKey("accounts.id"), nullable=False),
    UniqueConstraint("group_id", "account_id"),
    # A sender's groups, read for every MO (0019).
    Index("ix_group_members_account_id", "account_id"),
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),  # e.g. "rules_version"
    Column("value", Text, nullable=False),
)

# Operators' replacements of reply templates (commands/templates.py), by (lang, key); the
# YAML default applies where there is none (migration 0018).
template_overrides = Table(
    "template_overrides",
    metadata,
    Column("lang", String(8), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("text", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(64), nullable=True),
)

# -- outbound engine (migration 0004) ----------------------------------------------------------

BROADCAST_STATUSES = ("scheduled", "running", "done", "cancelled")
BROADCAST_TARGETS = ("group", "segment", "topic", "list")

broadcasts = Table(
    "broadcasts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("target_kind", String(16), nullable=False),
    Column("target", Text, nullable=False),  # JSON: group name, segment filter, topic, numbers
    Column("text", Text, nullable=False),
    Column("priority", SmallInteger, nullable=False),
    Column("schedule_at", UTCDateTime, nullable=True),
    Column("status", String(16), nullable=False),
    Column("total", Integer, nullable=False, server_default="0"),
    Column("queued", Integer, nullable=False, server_default="0"),
    Column("skipped", Integer, nullable=False, server_default="0"),  # opted out
    Column("error", Text, nullable=True),  # why it could not run (migration 0010)
    # The service number it goes out from; None: SMSGW_SOURCE_ADDR (migration 0018).
    Column("service_number", String(32), nullable=True),
    Column("created_by", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint(_in("status", BROADCAST_STATUSES), name="status"),
    CheckConstraint(_in("target_kind", BROADCAST_TARGETS), name="target_kind"),
)

# -- engagement: campaigns, polls, surveys (migration 0015) ------------------------------------

ENGAGEMENT_KINDS = ("campaign", "poll", "survey")
ENGAGEMENT_STATUSES = ("draft", "running", "paused", "closed")
# open: waiting for (more) answers; done: survey finished; timed_out: silent past the
# timeout; closed: the engagement closed or the phone opted out while it was open.
ENGAGEMENT_SESSION_STATUSES = ("open", "done", "timed_out", "closed")

engagements = Table(
    "engagements",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    # What a phone texts to join (open poll/survey) or to name the question it answers.
    Column("keyword", String(32), nullable=False, unique=True),
    Column("open_to_all", Boolean, nullable=False, server_default=sa.false()),
    Column("goal", Text, nullable=True),
    Column("lang", String(2), nullable=False),
    Column("config", Text, nullable=False),  # JSON: commands.engagement.spec
    Column("text", Text, nullable=True),  # a campaign's message
    Column("target_kind", String(16), nullable=True),
    Column("target", Text, nullable=True),  # JSON, as a broadcast's
    Column("broadcast_id", BigId, ForeignKey("broadcasts.id"), nullable=True),
    Column("reply_window_minutes", Integer, nullable=True),
    Column("created_by", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("closes_at", UTCDateTime, nullable=True),  # end of the reply window
    Column("closed_at", UTCDateTime, nullable=True),
    CheckConstraint(_in("kind", ENGAGEMENT_KINDS), name="kind"),
    CheckConstraint(_in("status", ENGAGEMENT_STATUSES), name="status"),
)

# One phone's state in one poll or survey: survives restarts, one row per (engagement, phone).
engagement_sessions = Table(
    "engagement_sessions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("engagement_id", BigId, ForeignKey("engagements.id"), nullable=False),
    Column("phone", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("step", Integer, nullable=False, server_default="0"),  # next question (0-based)
    Column("choice", Integer, nullable=True),  # a poll's counted option; 0 = free text
    Column("answers", Text, nullable=False, server_default="{}"),  # JSON {question id: value}
    Column("lang", String(2), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("completed_at", UTCDateTime, nullable=True),
    CheckConstraint(_in("status", ENGAGEMENT_SESSION_STATUSES), name="status"),
    UniqueConstraint("engagement_id", "phone"),
    Index(None, "phone", "status"),
)

# Every reply routed to an engagement, accepted or re-asked, with its MO: the timeline and
# the evidence that each MO counted once.
engagement_replies = Table(
    "engagement_replies",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("engagement_id", BigId, ForeignKey("engagements.id"), nullable=False),
    Column("phone", String(32), nullable=False),
    Column("mo_id", BigId, ForeignKey("inbound_messages.id"), nullable=True),
    Column("step", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("value", Text, nullable=True),  # JSON; NULL when refused
    Column("accepted", Boolean, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index(None, "engagement_id", "at"),
)

# The last slot each scheduled job ran for, so a restart neither skips nor repeats a run.
job_runs = Table(
    "job_runs",
    metadata,
    Column("job", String(64), primary_key=True),
    Column("last_slot", String(64), nullable=False),  # e.g. "2026-11-24" or "2026-W48"
    Column("last_run_at", UTCDateTime, nullable=False),
)

# -- several instances on one database (migration 0011) -----------------------------------------

# Time-limited ownership of a singleton duty; "instance:<name>" is an instance's heartbeat.
# Times are epoch seconds (floats): compared with arithmetic, never shown to people.
leases = Table(
    "leases",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", Float, nullable=False),
)

# The per-sender rate limit shared by every instance (commands/guards.py): the times of the
# messages accepted in the current window, space-separated, oldest first.
sender_guards = Table(
    "sender_guards",
    metadata,
    Column("phone", String(64), primary_key=True),
    Column("accepted", Text, nullable=False, server_default=""),
    Column("notified_at", Float, nullable=True),
    Column("opt_out_notified_at", Float, nullable=True),
    Column("seen_at", Float, nullable=False),
    Index(None, "seen_at"),
)

# The reply-storm guard: when the error reply for sha256(phone, MO text, reply) last went.
reply_guards = Table(
    "reply_guards",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("allowed_at", Float, nullable=False),
    Index(None, "allowed_at"),
)

# Events raised by other systems (POST /events) or by the gateway itself; durable, so a
# notice is never lost between "event accepted" and "notice queued".
events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("type", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # JSON
    Column("created_at", UTCDateTime, nullable=False),
    Column("processed_at", UTCDateTime, nullable=True),
    Column("error", Text, nullable=True),
    Column("notice_ids", Text, nullable=True),  # JSON list of MT ids (migration 0010)
    Index(None, "processed_at", "id"),
)


# Rows that collided when migration 0007 rewrote every phone to its one form: each row set
# aside (an account unbound, a duplicate subscription/opt-out/tag removed) or a value that is
# no phone number, copied whole as JSON, with the row that kept the number.

phone_conflicts = Table(
    "phone_conflicts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("table_name", String(64), nullable=False),
    Column("column_name", String(64), nullable=False),
    Column("row_id", BigInteger, nullable=False),
    Column("old_value", String(64), nullable=False),
    Column("canonical", String(32), nullable=True),  # NULL: not a phone number
    Column("kept_row_id", BigInteger, nullable=True),
    Column("action", String(16), nullable=False),  # unbound, removed, unparsable
    Column("row", Text, nullable=False),  # JSON
    Column("at", UTCDateTime, nullable=False),
)


# The SMPP server side's tables live in their own module on this metadata (migration 0006).
from store import models_upstream  # noqa: E402, F401

# -- admin API (migration 0005) ----------------------------------------------------------------

API_KEY_ROLES = ("admin", "operator", "viewer")

# Only a SHA-256 of each key is kept: keys are 32 random bytes, so a fast hash is enough (no
# KDF needed, unlike PINs); the prefix lets operators tell keys apart in lists and logs.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(64), nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    # Default callback_url of the messages this key sends (migration 0016).
    Column("callback_url", String(1024), nullable=True),
    CheckConstraint(_in("role", API_KEY_ROLES), name="role"),
)

# Every change made through the admin API: who (key), what (method, path, resource), when,
# and the resource before and after (JSON), written in the change's own transaction.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("key_id", BigId, nullable=True),  # NULL: setup mode (no key existed yet)
    Column("key_name", String(64), nullable=False),
    Column("method", String(8), nullable=False),
    Column("path", String(255), nullable=False),
    Column("resource", String(32), nullable=False),
    Column("resource_id", String(64), nullable=True),
    Column("before", Text, nullable=True),  # JSON
    Column("after", Text, nullable=True),  # JSON
    Index(None, "resource", "resource_id"),
)

# -- operator console (migration 0013) ---------------------------------------------------------

CONSOLE_LANGS = ("zh", "en")

# People who log in to the web console (API keys stay for machines). The password is kept as
# an scrypt hash (store/users.py). ``session_epoch`` is part of every session cookie: bumping
# it (logout, password change, disable) ends every session of the user at once.
console_users = Table(
    "console_users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("lang", String(8), nullable=False),
    Column("session_epoch", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(64), nullable=True),
    Column("password_changed_at", UTCDateTime, nullable=True),
    Column("last_login_at", UTCDateTime, nullable=True),
    Column("disabled_at", UTCDateTime, nullable=True),
    CheckConstraint(_in("role", API_KEY_ROLES), name="role"),
    CheckConstraint(_in("lang", CONSOLE_LANGS), name="lang"),
)


# -- webhooks (migration 0016, gateway/webhooks/, store/webhooks.py) ----------------------------

WEBHOOK_FORMS = ("json", "get")
WEBHOOK_STATUSES = ("pending", "delivering", "delivered", "dead")

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("url", String(1024), nullable=False),
    Column("secret", String(128), nullable=False),  # HMAC-SHA256 key of its signatures
    Column("events", Text, nullable=False, server_default="*"),  # comma-separated, or "*"
    Column("form", String(8), nullable=False, server_default="json"),
    # Kannel get-url style: a text/plain response body becomes the reply SMS.
    Column("reply", Boolean, nullable=False, server_default=sa.false()),
    Column("max_concurrency", Integer, nullable=False, server_default="4"),
    Column("timeout", sa.Float, nullable=False, server_default="10"),
    Column("enabled", Boolean, nullable=False, server_default=sa.true()),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint(_in("form", WEBHOOK_FORMS), name="form"),
)

# The durable outbox: one row per callback owed, written in the transaction of its cause.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(128), nullable=False, unique=True),
    Column("event", String(64), nullable=False),  # mo.received, message.delivered, order.approved…
    Column("subscription_id", BigId, nullable=True),
    Column("url", String(1024), nullable=False),
    Column("form", String(8), nullable=False, server_default="json"),
    Column("body", Text, nullable=False),  # JSON
    Column("mo_id", BigId, nullable=True),  # the MO, for a Kannel-style reply
    Column("reply_from", String(64), nullable=True),  # the number a reply goes out from
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("claimed_by", String(128), nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("reply_mt_id", BigId, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    CheckConstraint(_in("status", WEBHOOK_STATUSES), name="status"),
    Index(None, "status", "next_attempt_at"),
)
