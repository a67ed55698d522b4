"""`smsgw phone`: the terminal handset against the real gateway and its bundled simulator."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import Settings
from gateway.phone import add_phone_parser, run_phone

PHONE = "8613800000009"


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    gateway = Gateway(Settings(
        database_url=f"sqlite:///{tmp_path / 'gw.db'}", sim_port=0, sim_control_port=0,
        api_port=0, sim_receipt_delay=0.05, poll_interval=0.1, reconnect_min=0.05,
        reconnect_max=0.5, source_addr="10690", instance="t"))
    await gateway.start(api=False)
    try:
        await asyncio.wait_for(gateway.client.wait_bound(), 10)
        yield gateway
    finally:
        await gateway.stop()


def control_url(gw: Gateway) -> str:
    assert gw.simulator is not None
    return f"http://127.0.0.1:{gw.simulator.control_port}"


async def test_send_prints_the_reply(gw: Gateway) -> None:
    out, err = io.StringIO(), io.StringIO()
    rc = await run_phone(PHONE, control_url=control_url(gw), send="HELP", wait=10, count=1,
                         stdout=out, stderr=err, poll_interval=0.05)
    assert rc == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("→ 10690 ") and lines[0].endswith("  HELP")
    reply = [line for line in lines if line.startswith("← 10690 ")]
    assert len(reply) == 1 and "HELP" in reply[0].split("  ", 1)[1]  # the command list


async def test_interactive_two_lines_including_chinese(gw: Gateway) -> None:
    out, err = io.StringIO(), io.StringIO()
    stdin = asyncio.StreamReader()
    task = asyncio.create_task(run_phone(PHONE, control_url=control_url(gw), stdin=stdin,
                                         stdout=out, stderr=err, poll_interval=0.05))
    stdin.feed_data(b"HELP\n/help\n")
    stdin.feed_data("帮助\n".encode())

    async def replies() -> list[str]:
        while True:
            got = [x for x in out.getvalue().splitlines() if x.startswith("← ")]
            if len(got) >= 2:
                return got
            await asyncio.sleep(0.05)

    got = await asyncio.wait_for(replies(), 15)
    stdin.feed_eof()
    assert await asyncio.wait_for(task, 5) == 0, err.getvalue()
    text = out.getvalue()
    assert "→ 10690" in text and "  帮助" in text
    assert "/quit" in text  # the local /help listing, not sent as an SMS
    bodies = [x.split("  ", 1)[1] for x in got]
    # HELP answers in English, 帮助 in Chinese (protocol.md: the keyword's language).
    assert any(b.isascii() and "HELP" in b for b in bodies), bodies
    assert any(not b.isascii() and "帮助" in b for b in bodies), bodies
    assert gw.simulator is not None and len(gw.simulator.handset(PHONE).inbox) == 2


async def test_quit_command_and_old_inbox_not_replayed(gw: Gateway) -> None:
    assert gw.simulator is not None
    await gw.simulator.inject_mo(PHONE, "10690", "HELP")
    await gw.simulator.wait_for_inbox(PHONE, 1, timeout=10)
    out = io.StringIO()
    stdin = asyncio.StreamReader()
    stdin.feed_data(b"/quit\nHELP\n")
    rc = await asyncio.wait_for(run_phone(PHONE, control_url=control_url(gw), stdin=stdin,
                                          stdout=out, stderr=io.StringIO()), 10)
    assert rc == 0
    assert "1 earlier message" in out.getvalue()
    assert "← " not in out.getvalue() and "→ " not in out.getvalue()


async def test_unreachable_simulator_says_what_to_do() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out, err = io.StringIO(), io.StringIO()
    rc = await run_phone(PHONE, control_url=f"http://127.0.0.1:{port}", send="HELP",
                         stdout=out, stderr=err)
    assert rc == 1
    assert "smsgw up" in err.getvalue() and out.getvalue() == ""


async def test_bad_number_is_refused() -> None:
    err = io.StringIO()
    assert await run_phone("not-a-number", send="HELP", stdout=io.StringIO(), stderr=err) == 2
    assert "not a phone number" in err.getvalue()


def test_parser_wiring() -> None:
    import argparse

    from gateway.phone import phone_main

    parser = argparse.ArgumentParser(prog="smsgw")
    add_phone_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["phone", PHONE, "--send", "帮助", "--wait", "2"])
    assert (args.command, args.msisdn, args.send, args.wait) == ("phone", PHONE, "帮助", 2.0)
    assert args.to == "10690" and args.control_url.startswith("http://127.0.0.1:")
    assert args.func is phone_main
