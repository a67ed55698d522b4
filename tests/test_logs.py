"""common/logs.py: the lines read as logging's own formatter writes them, for less."""

from __future__ import annotations

import logging
import time

from common import logs


def test_the_line_is_the_standard_one() -> None:
    ours, std = logs.Formatter(logs.FORMAT), logging.Formatter(logs.FORMAT)
    now = time.time()
    for created in (now, now + 0.25, now + 1.5, now + 61.999, now + 86_400.001):
        record = logging.LogRecord("smsgw.mo", logging.INFO, __file__, 1,
                                   "mo=%d disposition=%s", (7, "answered"), None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert ours.format(record) == std.format(record)
    # An explicit date format is honoured as by the standard formatter.
    dated, std_dated = logs.Formatter("%(asctime)s %(message)s", "%H:%M"), \
        logging.Formatter("%(asctime)s %(message)s", "%H:%M")
    assert dated.format(record) == std_dated.format(record)


def test_configure_writes_lines_without_process_and_caller_lookups(tmp_path) -> None:  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.logProcesses, logging._srcfile)
    root.handlers.clear()
    try:
        logs.configure("info", filename=tmp_path / "gw.log")
        logging.getLogger("smsgw.mo").info("mo=%d disposition=%s", 1, "answered")
        logging.getLogger("smsgw.mo").debug("not at info")
        for h in root.handlers:
            h.flush()
        [line] = (tmp_path / "gw.log").read_text().splitlines()
        assert line.endswith("INFO    smsgw.mo: mo=1 disposition=answered")
        assert logging.logProcesses is False and logging._srcfile is None
    finally:
        for h in root.handlers:
            h.close()
        root.handlers[:], root.level = saved[0], saved[1]
        logging.logProcesses, logging._srcfile = saved[2], saved[3]
