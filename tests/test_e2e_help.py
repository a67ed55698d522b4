"""HELP by role, plurals and Chinese replies, through the simulator and the gateway (issue 8).

Each role sees only the commands it may use (commands/roles.yaml), in English and Chinese,
in one SMS; `HELP <cmd>` for a command the sender may not use says so instead of a format.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio

from commands.demo import load_demo_data
from commands.help import fits_one_sms
from commands.registry import REGISTRY
from commands.roles import load_roles
from gateway.app import Gateway
from gateway.config import Settings
from tests.test_e2e_commands import MANAGER, RETAILER, RETAILER3, SUBSCRIBER, send

pytestmark = pytest.mark.asyncio(loop_scope="module")

UNREGISTERED = "8613600000077"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gw(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    db = Path(tmp_path_factory.mktemp("help")) / "smsgw.db"
    gateway = Gateway(Settings(
        database_url=f"sqlite:///{db}", sim_port=0, sim_control_port=0, api_port=0,
        sim_receipt_delay=0.01, poll_interval=0.05, instance="e2e-help",
        rate_limit_messages=1000, mo_redelivery_window=1.0))
    await gateway.start(api=False)
    await gateway.store.write(lambda c: load_demo_data(c, now=datetime.now(UTC)))
    await gateway.client.wait_bound()
    yield gateway
    await gateway.stop()


def listed(reply: str, lang: str) -> set[str]:
    """The command codes a HELP list reply names."""
    if lang == "en":
        m = re.fullmatch(r"Commands: ([A-Z ]+)\. Send HELP <cmd> for a format", reply)
        assert m, reply
        return set(m.group(1).split())
    m = re.fullmatch(r"指令：(.+)。发“帮助 指令”看格式", reply)
    assert m, reply
    by_zh = {s.name_zh: s.code for s in REGISTRY.specs.values()}
    return {by_zh[w] for w in m.group(1).split()}


ROLES = load_roles()
PUBLIC = set(ROLES.public)
RETAILER_ALL = PUBLIC | ROLES.roles["retailer"].commands
SUBSCRIBER_ALL = PUBLIC | ROLES.roles["subscriber"].commands
MANAGER_ALL = PUBLIC | ROLES.roles["manager"].commands


@pytest.mark.parametrize(("phone", "expected"), [
    (RETAILER, RETAILER_ALL),
    (RETAILER3, RETAILER_ALL - {"ORD", "MOD", "CAN", "RPT"}),  # SMS ordering not enabled
    (SUBSCRIBER, SUBSCRIBER_ALL),
    (MANAGER, MANAGER_ALL),
    (UNREGISTERED, PUBLIC),
])
@pytest.mark.parametrize(("keyword", "lang"), [("HELP", "en"), ("帮助", "zh")])
async def test_help_lists_what_the_sender_may_use(gw: Gateway, phone: str, expected: set[str],
                                                  keyword: str, lang: str) -> None:
    reply = await send(gw, phone, keyword)
    assert listed(reply, lang) == expected
    assert fits_one_sms(reply)


@pytest.mark.parametrize(("phone", "text", "expected"), [
    (SUBSCRIBER, "HELP ORD", "ORD is not available to your account. Send HELP for your commands"),
    (SUBSCRIBER, "帮助 订货", "您的账户不能使用订货。发送 帮助 查看可用指令"),
    (RETAILER3, "HELP MOD", "MOD is not available to your account. Send HELP for your commands"),
    (MANAGER, "帮助 销量", "您的账户不能使用销量。发送 帮助 查看可用指令"),
    (UNREGISTERED, "HELP BAL",
     "BAL is for registered numbers. Send REG <account> <PIN> first, then HELP"),
    (UNREGISTERED, "帮助余额", "余额需先注册：发送 注册 <账号> <密码>，再发 帮助"),
])
async def test_help_for_a_command_the_sender_may_not_use(gw: Gateway, phone: str, text: str,
                                                         expected: str) -> None:
    assert await send(gw, phone, text) == expected


@pytest.mark.parametrize(("phone", "text", "needle"), [
    (RETAILER, "HELP ORD", "ORD <PIN> <code>*<qty>"),
    (RETAILER, "帮助 订货", "订货 <密码> <编码>*<数量>"),
    (SUBSCRIBER, "HELP BAL", "BAL"),
    (SUBSCRIBER, "帮助 余额", "余额"),
    (UNREGISTERED, "HELP REG", "REG <account> <PIN>"),
    (UNREGISTERED, "帮助 注册", "注册 <账号> <密码>"),
])
async def test_help_for_a_usable_command_shows_its_format(gw: Gateway, phone: str, text: str,
                                                          needle: str) -> None:
    reply = await send(gw, phone, text)
    assert needle in reply and "not available" not in reply and "不能" not in reply


# --- plurals and Chinese replies through the real path -------------------------------------


async def test_english_counts_agree(gw: Gateway) -> None:
    one = await send(gw, RETAILER, "SAL 1001*1")
    assert ": 1 item, 1 unit, revenue" in one, one
    many = await send(gw, RETAILER, "SAL 1001*2 1002*3")
    assert ": 2 items, 5 units, revenue" in many, many
    pin = await send(gw, SUBSCRIBER, "PIN 000000 111111")
    assert "(4 tries left)" in pin, pin


# ASCII words a Chinese reply may contain: the protocol's own (ERR, error codes, command
# keywords the sender typed) and codes (digits inside: R1001, 1001).
_ALLOWED = {"ERR"} | {k for s in REGISTRY.specs.values()
                      for k in (s.code, *s.pinyin, *s.english)}


def english_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[A-Za-z][A-Za-z0-9]*", text)
            if w.upper() not in _ALLOWED and not re.fullmatch(r"E\d\d", w)
            and not any(ch.isdigit() for ch in w)]


@pytest.mark.parametrize("text", [
    "订货123456 1001*1",  # subscriber: not allowed → names the command in Chinese
    "查询线路",  # subscriber may not use Q at all
    "销量1001*1",
    "改密000000 111111",
    "查单",
])
async def test_chinese_replies_have_no_english_words(gw: Gateway, text: str) -> None:
    reply = await send(gw, SUBSCRIBER, text)
    assert english_words(reply) == [], reply


async def test_chinese_order_and_query_replies(gw: Gateway) -> None:
    order = await send(gw, RETAILER, "订货123456 1001*2")
    assert english_words(order) == [] and "×2" in order, order
    assert english_words(await send(gw, RETAILER, "查单")) == []
    # A retailer may not see the route: the refusal names it in Chinese, not "ROUTE".
    route = await send(gw, RETAILER, "查询线路")
    assert "线路" in route and english_words(route) == [], route
