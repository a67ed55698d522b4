"""Shared plumbing for the benchmarks: ports, the simulator process, CPU/RSS readings,
percentiles and the one-line JSON summary. Not a benchmark itself."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import logging
import os
import resource
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from common import logs  # noqa: E402 (after the repo is on sys.path)

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def add_log_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"],
                        help="the gateway's log level (default info, as `smsgw up` runs: one "
                             "line per message event, a real cost); the lines go to a file, "
                             "warnings also to the terminal")
    parser.add_argument("--log-file", metavar="FILE",
                        help="keep the gateway's log here (default: a temporary file)")


def start_logging(args: argparse.Namespace) -> Path:
    """Log as `smsgw up` does (common/logs.py), into --log-file or a temporary file. The
    in-process simulator stands in for the SMSC: its own lines stay out (warnings only)."""
    if args.log_file:
        path = Path(args.log_file)
    else:
        directory = tempfile.mkdtemp(prefix="smsgw-bench-")
        atexit.register(shutil.rmtree, directory, True)
        path = Path(directory) / "gateway.log"
    logs.configure(args.log_level, filename=path)
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter(logs.FORMAT))
    logging.getLogger().addHandler(console)
    logging.getLogger("smsgw.simulator").setLevel(logging.WARNING)
    return path


def log_lines(path: Path) -> int:
    """Lines the gateway logged so far."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (all its threads); this process by default."""
    if pid is None:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime
    # /proc/PID/stat: fields 14 and 15 (utime, stime) in clock ticks, after the "(comm)".
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


class MachineCpu:
    """The whole machine's CPU over an interval (/proc/stat): how many cores were busy with
    anything - gateway, simulator, database, fsync - and how many sat idle.

    Next to the CPU per message it tells a CPU-bound run (idle near 0: the rate is what the
    cores allow at that cost) from a latency-bound one (cores idle: something waits)."""

    def __init__(self) -> None:
        self.cores = os.cpu_count() or 1
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[int, int]:
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except OSError:  # not Linux: no reading
            return 0, 0
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields) - idle, sum(fields)

    def busy_cores(self) -> float:
        """Cores busy on average since this object was made."""
        busy0, total0 = self._start
        busy1, total1 = self._read()
        return self.cores * (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0

    def busy_seconds(self) -> float:
        """Core-seconds spent busy since this object was made (all cores together)."""
        busy0, _ = self._start
        return (self._read()[0] - busy0) / _CLK_TCK


def cpu_ceiling(per_msg_ms: float, cores: int) -> float:
    """Messages a second ``cores`` allow when each costs ``per_msg_ms`` of CPU, nothing idle."""
    return cores / (per_msg_ms / 1000) if per_msg_ms > 0 else 0.0


def cpu_budget_line(per_msg_ms: float, busy_cores: float, cores: int, noun: str) -> str:
    """How busy the machine was, and the rate the measured CPU cost allows on it at most."""
    return (f"CPU budget: {busy_cores:.2f} of {cores} cores busy; at {per_msg_ms:.2f} ms of "
            f"gateway + simulator CPU per {noun}, {cores} cores allow at most "
            f"{cpu_ceiling(per_msg_ms, cores):,.0f} {noun}s/s (database server CPU not counted)")


def rss_mb(pid: int | None = None) -> float:
    """Resident set size in MB (Linux /proc); this process by default."""
    with open(f"/proc/{pid or 'self'}/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 1e6


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds (nearest-rank; empty → {})."""
    if not values:
        return {}
    s = sorted(values)

    def rank(p: float) -> float:
        return s[min(len(s) - 1, max(0, int(p * len(s) + 0.5) - 1))]

    return {"p50_ms": rank(0.50) * 1000, "p90_ms": rank(0.90) * 1000,
            "p99_ms": rank(0.99) * 1000, "max_ms": s[-1] * 1000}


def fmt_latency(p: dict[str, float]) -> str:
    if not p:
        return "no replies"
    return (f"p50 {p['p50_ms']:.1f} ms, p90 {p['p90_ms']:.1f} ms, p99 {p['p99_ms']:.1f} ms, "
            f"max {p['max_ms']:.1f} ms")


def write_json(path: str | None, summary: dict[str, Any]) -> None:
    """The one-line JSON summary (--json FILE); '-' writes it to stdout."""
    if not path:
        return
    line = json.dumps(summary, sort_keys=True, default=str)
    if path == "-":
        print(line, flush=True)
    else:
        Path(path).write_text(line + "\n")


def db_kind(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0]


def gateway_overrides(url: str, **extra: Any) -> dict[str, Any]:
    """Settings every benchmark gateway shares: no HTTP API, throttle and receipts fast,
    no per-sender rate limit (a benchmark's handsets send more than a person would)."""
    base: dict[str, Any] = dict(
        database_url=url, api_port=0, sim_port=0, sim_control_port=0, smpp_server_port=None,
        sim_receipt_delay=0.0, poll_interval=0.05, rate_limit_messages=1_000_000,
        rate_limit_seconds=1.0, instance="bench")
    base.update(extra)
    return base


class SimProcess:
    """`benchmarks/simdriver.py` in its own process: an SMSC simulator plus the MO driver,
    spoken to over stdin/stdout one JSON line at a time."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, *, receipt_delay: float = 0.0, record: bool = False) -> int:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(REPO / "benchmarks" / "simdriver.py"),
            "--receipt-delay", str(receipt_delay), *(["--record"] if record else []),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=str(REPO),
            limit=64 * 1024 * 1024)
        hello = await self._read()
        self.port = int(hello["port"])
        return self.port

    async def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        return await self._read()

    async def _read(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"simulator process exited (rc={await self.proc.wait()})")
        return json.loads(line)

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the driver stops its simulator and exits
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.proc = None


def queue_sample(conn: Any) -> dict[str, int]:
    """What is waiting in the gateway: MTs queued and being sent, MOs not yet processed,
    receipts that arrived before their submit_sm_resp (pending_receipts)."""
    import sqlalchemy as sa

    from store.models import inbound_messages, outbound_messages, pending_receipts

    def count(table: Any, *where: Any) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(
            *where)).scalar_one())

    return {"queued": count(outbound_messages, outbound_messages.c.status == "queued"),
            "sending": count(outbound_messages, outbound_messages.c.status == "sending"),
            "mo_unprocessed": count(inbound_messages, inbound_messages.c.status == "received"),
            "receipts_unmatched": count(pending_receipts)}


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (y per x unit) of (x, y) points; 0 for fewer than two."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
