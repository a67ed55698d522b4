"""Smoke tests: every benchmark's --short mode runs as a subprocess, exits 0 and writes a
sane one-line JSON summary (counts match, nothing lost or doubled), so they cannot rot.

They check correctness only, never speed: figures on a shared test machine mean nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def run_short(tmp_path: Path, script: str, *flags: str) -> dict[str, Any]:
    out = tmp_path / f"{script}.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / f"{script}.py"), "--short", "--json", str(out), *flags],
        capture_output=True, text=True, timeout=90, cwd=BENCH.parent)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
    assert "check: OK" in proc.stdout, proc.stdout
    lines = out.read_text().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["benchmark"] == script and summary["ok"] is True
    return summary


@pytest.mark.timeout(120)
def test_e2e_mix_with_the_simulator_in_its_own_process(tmp_path: Path) -> None:
    s = run_short(tmp_path, "e2e", "--mix", "--sim-process", "--rate", "100")
    assert s["mode"] == "mix" and s["sim_process"] is True
    assert s["replies"] == s["count"] == 60 and s["missing"] == 0 and s["extra"] == 0
    assert sum(s["kinds"].values()) == 60
    assert s["kinds"].get("garbage", 0) + s["kinds"].get("long", 0) == \
        s["reply_codes"].get("E01", 0)
    assert s["db_found"] == s["db_expected"]
    assert s["log_level"] == "info" and s["log_lines"] >= 2 * s["count"]  # as `smsgw up` logs
    assert s["mo_per_s"] > 0 and s["latency"]["p99_ms"] >= s["latency"]["p50_ms"] > 0
    assert s["cpu_ms_per_mo_gateway"] > 0 and s["cpu_ms_per_mo_sim"] > 0
    # The machine-wide reading (anything running counts, other tests too) and the ceiling
    # the CPU cost allows (cores / cost per MO).
    cores = os.cpu_count() or 1
    assert s["busy_cores"] > 0
    per_mo_s = (s["cpu_ms_per_mo_gateway"] + s["cpu_ms_per_mo_sim"]) / 1000
    assert s["cpu_ceiling_per_s"] == pytest.approx(cores / per_mo_s)


@pytest.mark.timeout(120)
@pytest.mark.postgres
def test_e2e_with_two_gateway_processes_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    s = run_short(tmp_path, "e2e", "--mix", "--sim-process", "--instances", "2",
                  "--database-url", pg_url)
    assert s["instances"] == 2 and s["replies"] == s["count"] == 60
    assert s["missing"] == s["extra"] == 0 and s["db_found"] == s["db_expected"]
    assert s["log_lines"] >= 2 * s["count"]  # both gateways' lines, wherever each MO went


@pytest.mark.timeout(120)
def test_outbound(tmp_path: Path) -> None:
    s = run_short(tmp_path, "outbound")
    # 300 broadcast + 5 priority-1 replies + the answers to 5 MOs sent during the drain.
    assert s["count"] == 300 and s["submitted"] == s["receipts_matched"] == 310
    assert len(s["reply_waits_ms"]) == 5 and s["dispatch_per_s"] > 0 and s["rss_mb_max"] > 0
    assert 0 < s["mo_ack_max_ms"] <= s["mo_answer_max_ms"]
    assert s["cpu_ms_per_msg_sim"] is None  # the simulator shares the gateway's process
    assert s["busy_cores"] > 0
    cores = os.cpu_count() or 1
    assert s["cpu_ceiling_per_s"] == pytest.approx(cores / (s["cpu_ms_per_msg"] / 1000))


@pytest.mark.timeout(120)
def test_upstream(tmp_path: Path) -> None:
    s = run_short(tmp_path, "upstream")
    assert s["accepted"] == s["distinct_ids"] == s["receipts_matched"] == s["count"] == 200
    assert s["receipts_doubled"] == 0 and s["receipts_unknown"] == 0
    assert s["smsc_submits_accepted"] == 200 and s["accepted_per_s"] > 0
    assert s["app_process"] is False and s["cpu_ms_per_msg_app"] is None


@pytest.mark.timeout(120)
def test_upstream_with_the_application_in_its_own_process(tmp_path: Path) -> None:
    s = run_short(tmp_path, "upstream", "--app-process")
    assert s["app_process"] is True and s["cpu_ms_per_msg_app"] > 0
    assert s["accepted"] == s["distinct_ids"] == s["receipts_matched"] == s["count"] == 200
    assert s["receipts_doubled"] == 0 and s["receipts_unknown"] == 0


@pytest.mark.timeout(120)
def test_soak(tmp_path: Path) -> None:
    s = run_short(tmp_path, "soak")
    assert s["count"] == 120 and s["replies"] == 120 and s["missing"] == s["extra"] == 0
    assert s["samples"] >= 5 and s["rss_mb_max"] > 0
    assert set(s["trends"]) == {"rss_mb", "cpu_pct", "queued", "sending", "mo_unprocessed",
                                "receipts_unmatched"}
    assert s["db_found"] == s["db_expected"]


@pytest.mark.timeout(120)
def test_codec(tmp_path: Path) -> None:
    s = run_short(tmp_path, "codec")
    assert s["count"] == 300 and s["pdus"] == 8
    for key in ("reference_encode_per_s", "fast_encode_per_s", "reference_decode_per_s",
                "fast_decode_per_s"):
        assert s[key] > 0, key
