"""Configuration loading and the `smsgw simulator` command line."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from simulator.cli import build_parser, config_from_args, main
from simulator.config import ConfigError, SimulatorConfig, parse_outcomes

from .conftest import Esme


def test_defaults() -> None:
    c = SimulatorConfig()
    assert (c.host, c.port, c.control_port, c.accounts) == \
        ("127.0.0.1", 2775, 2776, {"smsgw": "secret"})
    assert c.receipt_outcomes == {"DELIVRD": 1.0} and c.message_id_format == "hex"


def test_file_env_and_flags_precedence(tmp_path: Path) -> None:
    f = tmp_path / "sim.yaml"
    f.write_text("port: 3000\ncontrol-port: 3001\nreceipt_outcomes: {delivrd: 3, UNDELIV: 1}\n"
                 "accounts: {a: b}\nseed: 5\n")
    c = SimulatorConfig.load(f, env={"SMSGW_SIM_PORT": "4000"}, overrides={"seed": 9})
    assert (c.port, c.control_port, c.seed) == (4000, 3001, 9)
    assert c.receipt_outcomes == {"DELIVRD": 3.0, "UNDELIV": 1.0}
    j = tmp_path / "sim.json"
    j.write_text(json.dumps({"message_id_format": "decimal"}))
    assert SimulatorConfig.load(j, env={}).message_id_format == "decimal"


@pytest.mark.parametrize("data, needle", [
    ({"port": 70000}, "port"),
    ({"receipt_outcomes": {"DELIVERED!": 1}}, "unknown receipt stat"),
    ({"receipt_outcomes": {"DELIVRD": 0}}, "more than 0"),
    ({"accounts": {"a" * 16: "x"}}, "system_id"),
    ({"message_id_format": "uuid"}, "message_id_format"),
    ({"receipt_dealy": 1}, "unknown setting"),
])
def test_bad_values_have_clear_errors(tmp_path: Path, data: dict, needle: str) -> None:
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        SimulatorConfig.load(f, env={})
    assert needle in str(err.value) and "bad.json" in str(err.value)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        SimulatorConfig.load(tmp_path / "missing.yaml", env={})
    f = tmp_path / "list.yaml"
    f.write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        SimulatorConfig.load(f, env={})


def test_flags() -> None:
    args = build_parser().parse_args([
        "--port", "0", "--control-port", "0", "--account", "a:b", "--account", "c:d",
        "--outcomes", "DELIVRD=0.9,UNDELIV=0.1", "--seed", "3", "--throttle", "10",
        "--receipt-delay", "1.5", "--log-level", "debug"])
    c = config_from_args(args)
    assert c.accounts == {"a": "b", "c": "d"}
    assert c.receipt_outcomes == {"DELIVRD": 0.9, "UNDELIV": 0.1}
    assert (c.seed, c.throttle_tps, c.receipt_delay, args.log_level) == (3, 10, 1.5, "DEBUG")
    with pytest.raises(ConfigError):
        parse_outcomes("DELIVRD")
    assert c.inbox_limit == 100_000  # the default
    assert config_from_args(build_parser().parse_args(["--inbox-limit", "5"])).inbox_limit == 5
    assert config_from_args(build_parser().parse_args(["--inbox-limit", "0"])).inbox_limit \
        is None  # keep everything
    with pytest.raises(ConfigError, match="inbox-limit"):
        config_from_args(build_parser().parse_args(["--inbox-limit", "-1"]))


def test_main_reports_bad_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--outcomes", "NOPE=1"]) == 2
    assert "unknown receipt stat" in capsys.readouterr().err


def test_help_mentions_the_essentials(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for word in ("--port", "--account", "--outcomes", "POST   /mo", "SMSGW_SIM_PORT", "2775"):
        assert word in out


async def test_process_unbinds_on_sigint() -> None:
    from gateway.smpp.connection import connect

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator", "--port", "0", "--no-control",
        stderr=asyncio.subprocess.PIPE, cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stderr is not None
    try:
        line = (await asyncio.wait_for(proc.stderr.readline(), 20)).decode()
        port = int(re.search(r"smpp=[\d.]+:(\d+)", line).group(1))  # type: ignore[union-attr]
        conn = await connect("127.0.0.1", port, Esme())
        await conn.bind("bind_transceiver", "smsgw", "secret")
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(conn.closed, 10) == "unbound by peer"
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
