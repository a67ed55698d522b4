"""`smsgw up` as a real process: the first start creates an admin key and shows it once (and
saves it 0600 next to the database); `--insecure-dev` / SMSGW_INSECURE_DEV=1 instead serve
the API without a key, with a loud warning."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).parent.parent


@contextmanager
def smsgw_up(tmp_path: Path, *args: str, env: dict[str, str] | None = None
             ) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """Start `smsgw up` on ephemeral ports; yields the process and its stderr file."""
    stderr = tmp_path / f"stderr-{time.monotonic_ns()}.log"
    full_env = {k: v for k, v in os.environ.items() if k != "SMSGW_INSECURE_DEV"}
    full_env.update({"SMSGW_SMPP_SERVER_PORT": "0", "SMSGW_INSTANCE": "first-start",
                     "XDG_DATA_HOME": str(tmp_path / "xdg"), **(env or {})})
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "up", "--database-url",
             f"sqlite:///{tmp_path / 'gw.db'}", "--api-port", "0", "--sim-port", "0",
             "--sim-control-port", "0", *args],
            stdout=subprocess.PIPE, stderr=err, text=True, env=full_env, cwd=ROOT)
        try:
            yield proc, stderr
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


class Lines:
    """The process's stdout, read line by line by a thread (select() on a buffered pipe
    would miss lines already in the buffer)."""

    def __init__(self, proc: subprocess.Popen[str]):
        self.lines: queue.Queue[str | None] = queue.Queue()  # None: stdout closed
        self.seen = ""
        self.closed = False
        threading.Thread(target=self._pump, args=(proc,), daemon=True).start()

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _next(self, timeout: float) -> str | None:
        """The next line; None once stdout is closed; queue.Empty after ``timeout``."""
        if self.closed:
            return None
        line = self.lines.get(timeout=timeout)
        self.closed = line is None
        return line

    def until(self, pattern: str, timeout: float = 60) -> str:
        """stdout up to (and including) the next line matching ``pattern``."""
        out = ""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._next(left)
            except queue.Empty:
                break
            if line is None:
                break  # the process closed its stdout: no more lines will come
            out += line
            self.seen += line
            if re.search(pattern, line):
                return out
        raise AssertionError(f"no line matching {pattern!r} in:\n{self.seen}")

    def rest(self, timeout: float = 2) -> str:
        """Everything up to the end of stdout (after the process exited), or up to
        ``timeout`` s of silence."""
        out = ""
        with contextlib.suppress(queue.Empty):
            while (line := self._next(timeout)) is not None:
                out += line
        return out


def api_base(out: str) -> str:
    found = re.search(r"Admin API: (http://[\d.]+:\d+)/docs", out)
    assert found, out
    return found.group(1)


def key_rows(tmp_path: Path) -> list[tuple[str, str, str]]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'gw.db'}")
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT role, prefix, key_hash FROM api_keys").all()
    engine.dispose()
    return [tuple(r) for r in rows]


def test_first_start_creates_an_admin_key_once(tmp_path: Path) -> None:
    with smsgw_up(tmp_path) as (proc, stderr):
        lines = Lines(proc)
        out = lines.until(r"^=+$")  # the banner's opening rule
        out += lines.until(r"^=+$")  # … and its closing one
        key = re.search(r"^ {4}(smsgw_\S+)$", out, re.M)
        assert key, out
        key_text = key.group(1)
        base = api_base(out)
        assert f"curl -H 'Authorization: Bearer {key_text}' {base}/messages" in out
        key_file = tmp_path / "admin-api-key"  # next to the SQLite database
        assert str(key_file) in out
        assert key_file.read_text().strip() == key_text
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert httpx.get(f"{base}/accounts").status_code == 401
        ok = httpx.get(f"{base}/accounts", headers={"Authorization": f"Bearer {key_text}"})
        assert ok.status_code == 200, ok.text
    # Only the hash is stored; the key never reached the log.
    [(role, prefix, key_hash)] = key_rows(tmp_path)
    assert role == "admin" and key_text.startswith(prefix) and key_text not in key_hash
    assert key_text not in stderr.read_text()

    # Second start: no new key, nothing shown; the first key still works.
    with smsgw_up(tmp_path) as (proc, _):
        lines = Lines(proc)
        out = lines.until(r"smsgw is up")
        base = api_base(out)
        ok = httpx.get(f"{base}/stats", headers={"Authorization": f"Bearer {key_text}"})
        assert ok.status_code == 200
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
        rest = lines.rest()
    assert "FIRST START" not in out + rest and key_text not in out + rest
    assert len(key_rows(tmp_path)) == 1


def test_insecure_dev_flag_and_env_serve_without_a_key_loudly(tmp_path: Path) -> None:
    for args, env in ((("--insecure-dev",), {}), ((), {"SMSGW_INSECURE_DEV": "1"})):
        with smsgw_up(tmp_path, *args, env=env) as (proc, stderr):
            out = Lines(proc).until(r"smsgw is up")
            base = api_base(out)
            assert httpx.get(f"{base}/accounts").status_code == 200
            deadline = time.monotonic() + 10
            while "INSECURE DEV MODE" not in stderr.read_text():
                assert time.monotonic() < deadline, stderr.read_text()
                time.sleep(0.1)
        assert "FIRST START" not in out
    assert key_rows(tmp_path) == []  # dev mode creates no key
