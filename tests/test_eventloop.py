"""gateway/eventloop.py: uvloop when installed and not turned off, asyncio's loop otherwise."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from gateway import eventloop

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def test_default_is_uvloop_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(eventloop.ENV, raising=False)
    expected = "uvloop" if HAVE_UVLOOP else "asyncio"
    assert eventloop.name() == expected
    assert eventloop.run(_loop_module()) == expected


@pytest.mark.parametrize("value", ["0", "false", "off", "no"])
def test_env_turns_it_off(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(eventloop.ENV, value)
    assert eventloop.loop_factory() is None
    assert eventloop.run(_loop_module()) == "asyncio"


def test_flag_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV, "1")
    assert eventloop.run(_loop_module(), use_uvloop=False) == "asyncio"
