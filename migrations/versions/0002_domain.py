"""Domain: accounts, PIN failures, products, orders, sales/stock reports, serials, topics,
subscriptions, opt-outs, number changes, rule-engine tables (rules, forwards, tags, groups) and
settings.

Revision ID: 0002_domain
Revises: 0001
Create Date: 2025-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_domain"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from store.models (see 0001).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
Money = sa.BigInteger()


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("account_no", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("pin_hash", sa.String(length=255), nullable=True),
        sa.Column("pin_locked_until", TS, nullable=True),
        sa.Column("lang", sa.String(length=2), server_default="zh", nullable=False),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("route", sa.String(length=64), nullable=True),
        sa.Column("manager_id", BigId, nullable=True),
        sa.Column("sms_ordering", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("order_days", sa.String(length=16), server_default="", nullable=False),
        sa.Column("order_window_start", sa.String(length=5), nullable=True),
        sa.Column("order_window_end", sa.String(length=5), nullable=True),
        sa.Column("balance_cents", Money, server_default="0", nullable=False),
        sa.Column("credit_cents", Money, server_default="0", nullable=False),
        sa.Column("last_bill_cents", Money, nullable=True),
        sa.Column("last_bill_due", sa.Date(), nullable=True),
        sa.Column("balance_low_cents", Money, nullable=True),
        sa.Column("value_band", sa.String(length=16), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("lang IN ('zh', 'en')", name="ck_accounts_lang"),
        sa.CheckConstraint(
            "role IN ('retailer', 'subscriber', 'manager')", name="ck_accounts_role"
        ),
        sa.ForeignKeyConstraint(
            ["manager_id"], ["accounts.id"], name="fk_accounts_manager_id_accounts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("account_no", name="uq_accounts_account_no"),
        sa.UniqueConstraint("phone", name="uq_accounts_phone"),
    )
    op.create_index("ix_accounts_manager_id", "accounts", ["manager_id"], unique=False)
    op.create_index("ix_accounts_route", "accounts", ["route"], unique=False)
    op.create_table(
        "groups",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_groups"),
        sa.UniqueConstraint("name", name="uq_groups_name"),
    )
    op.create_table(
        "opt_outs",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_opt_outs"),
        sa.UniqueConstraint("phone", name="uq_opt_outs_phone"),
    )
    op.create_table(
        "phone_tags",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_phone_tags"),
        sa.UniqueConstraint("phone", "tag", name="uq_phone_tags_phone_tag"),
    )
    op.create_table(
        "products",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=4), nullable=False),
        sa.Column("name_zh", sa.String(length=64), nullable=False),
        sa.Column("name_en", sa.String(length=64), nullable=False),
        sa.Column("price_cents", Money, nullable=False),
        sa.Column("cost_cents", Money, nullable=False),
        sa.Column("max_qty", sa.Integer(), nullable=False),
        sa.Column("stock_qty", sa.Integer(), server_default="0", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_products"),
        sa.UniqueConstraint("code", name="uq_products_code"),
    )
    op.create_table(
        "rules",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("keyword", sa.String(length=64), nullable=True),
        sa.Column("pattern", sa.Text(), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("group_name", sa.String(length=64), nullable=True),
        sa.Column("window_start", sa.String(length=5), nullable=True),
        sa.Column("window_end", sa.String(length=5), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("argument", sa.Text(), server_default="", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(
            "action IN ('command', 'reply', 'tag', 'forward')", name="ck_rules_action"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_rules"),
        sa.UniqueConstraint("name", name="uq_rules_name"),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_settings"),
    )
    op.create_table(
        "topics",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name_zh", sa.String(length=64), nullable=False),
        sa.Column("name_en", sa.String(length=64), nullable=False),
        sa.Column("public", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_topics"),
        sa.UniqueConstraint("code", name="uq_topics_code"),
    )
    op.create_table(
        "forwards",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("mo_id", BigId, nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.CheckConstraint("status IN ('pending', 'delivered')", name="ck_forwards_status"),
        sa.ForeignKeyConstraint(
            ["mo_id"], ["inbound_messages.id"], name="fk_forwards_mo_id_inbound_messages"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_forwards"),
    )
    op.create_index("ix_forwards_status_id", "forwards", ["status", "id"], unique=False)
    op.create_table(
        "group_members",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("group_id", BigId, nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_group_members_account_id_accounts"
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name="fk_group_members_group_id_groups"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_group_members"),
        sa.UniqueConstraint("group_id", "account_id", name="uq_group_members_group_id_account_id"),
    )
    op.create_table(
        "orders",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total_cents", Money, nullable=False),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("mo_id", BigId, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(
            "status IN ('pending_review', 'pending_funds', 'approved', 'rejected', 'cancelled')",
            name="ck_orders_status",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_orders_account_id_accounts"
        ),
        sa.ForeignKeyConstraint(
            ["mo_id"], ["inbound_messages.id"], name="fk_orders_mo_id_inbound_messages"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
    )
    op.create_index("ix_orders_account_id_id", "orders", ["account_id", "id"], unique=False)
    op.create_table(
        "phone_changes",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("new_phone", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'confirmed', 'expired')", name="ck_phone_changes_status"
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_phone_changes_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_phone_changes"),
    )
    op.create_index(
        "ix_phone_changes_new_phone_status", "phone_changes", ["new_phone", "status"], unique=False
    )
    op.create_table(
        "pin_failures",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_pin_failures_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_pin_failures"),
    )
    op.create_index(
        "ix_pin_failures_account_id_at", "pin_failures", ["account_id", "at"], unique=False
    )
    op.create_table(
        "sales_reports",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("report_date", sa.Date(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_sales_reports_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sales_reports"),
        sa.UniqueConstraint(
            "account_id", "report_date", name="uq_sales_reports_account_id_report_date"
        ),
    )
    op.create_index("ix_sales_reports_report_date", "sales_reports", ["report_date"], unique=False)
    op.create_table(
        "serial_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("serial", sa.String(length=32), nullable=False),
        sa.Column("is_imei", sa.Boolean(), nullable=False),
        sa.Column("duplicate", sa.Boolean(), nullable=False),
        sa.Column("mo_id", BigId, nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_serial_events_account_id_accounts"
        ),
        sa.ForeignKeyConstraint(
            ["mo_id"], ["inbound_messages.id"], name="fk_serial_events_mo_id_inbound_messages"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_serial_events"),
    )
    op.create_index("ix_serial_events_serial", "serial_events", ["serial"], unique=False)
    op.create_table(
        "stock_counts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("count_date", sa.Date(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_stock_counts_account_id_accounts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_stock_counts"),
        sa.UniqueConstraint(
            "account_id", "count_date", name="uq_stock_counts_account_id_count_date"
        ),
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("topic_id", BigId, nullable=False),
        sa.Column("window_start", sa.SmallInteger(), nullable=True),
        sa.Column("window_end", sa.SmallInteger(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["topic_id"], ["topics.id"], name="fk_subscriptions_topic_id_topics"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_subscriptions"),
        sa.UniqueConstraint("phone", "topic_id", name="uq_subscriptions_phone_topic_id"),
    )
    op.create_index("ix_subscriptions_topic_id", "subscriptions", ["topic_id"], unique=False)
    op.create_table(
        "order_history",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("order_id", BigId, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name="fk_order_history_order_id_orders"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_order_history"),
    )
    op.create_index(
        "ix_order_history_order_id_id", "order_history", ["order_id", "id"], unique=False
    )
    op.create_table(
        "order_lines",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("order_id", BigId, nullable=False),
        sa.Column("product_code", sa.String(length=4), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("price_cents", Money, nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_order_lines_order_id_orders"),
        sa.PrimaryKeyConstraint("id", name="pk_order_lines"),
        sa.UniqueConstraint(
            "order_id", "product_code", name="uq_order_lines_order_id_product_code"
        ),
    )
    op.create_table(
        "sales_lines",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("report_id", BigId, nullable=False),
        sa.Column("product_code", sa.String(length=4), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("price_cents", Money, nullable=False),
        sa.Column("cost_cents", Money, nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"], ["sales_reports.id"], name="fk_sales_lines_report_id_sales_reports"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sales_lines"),
        sa.UniqueConstraint(
            "report_id", "product_code", name="uq_sales_lines_report_id_product_code"
        ),
    )
    op.create_table(
        "stock_lines",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("count_id", BigId, nullable=False),
        sa.Column("product_code", sa.String(length=4), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["count_id"], ["stock_counts.id"], name="fk_stock_lines_count_id_stock_counts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_stock_lines"),
        sa.UniqueConstraint(
            "count_id", "product_code", name="uq_stock_lines_count_id_product_code"
        ),
    )


def downgrade() -> None:
    op.drop_table("stock_lines")
    op.drop_table("sales_lines")
    op.drop_table("order_lines")
    op.drop_table("order_history")
    op.drop_table("subscriptions")
    op.drop_table("stock_counts")
    op.drop_table("serial_events")
    op.drop_table("sales_reports")
    op.drop_table("pin_failures")
    op.drop_table("phone_changes")
    op.drop_table("orders")
    op.drop_table("group_members")
    op.drop_table("forwards")
    op.drop_table("topics")
    op.drop_table("settings")
    op.drop_table("rules")
    op.drop_table("products")
    op.drop_table("phone_tags")
    op.drop_table("opt_outs")
    op.drop_table("groups")
    op.drop_table("accounts")
