"""Logging as `smsgw up` and `smsgw simulator` set it up: one line per message event, cheap.

A line costs what the LogRecord collects, not only what the format prints: by default every
record also takes the process id (a system call with this libc), the thread and process
names, and the caller's file and line (a walk up the stack). Our formats print none of them;
measured with the gateway at INFO, they were about half of the logging cost, ~10 % of its
CPU per MO (issue 10). Python's logging HOWTO ("Optimization") names these switches.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
QUIET = {"smpplib": logging.ERROR, "alembic": logging.WARNING,
         # One line per HTTP request would drown the gateway's own events.
         "httpx": logging.WARNING, "httpcore": logging.WARNING}


class Formatter(logging.Formatter):
    """logging.Formatter with the date and time part formatted once a second, not per line
    (localtime + strftime were a fifth of a line's cost); the text is the same."""

    _second = -1
    _stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:  # handlers format under their lock: one thread at a time
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return self.default_msec_format % (self._stamp, record.msecs)


def configure(level: str | int, *, fmt: str = FORMAT, filename: str | Path | None = None
              ) -> None:
    """Root logging at ``level`` (a name such as "info", or a number), to stderr or a file."""
    if isinstance(level, str):
        level = getattr(logging, level.upper(), logging.INFO)
    handler: logging.Handler = (logging.FileHandler(filename) if filename is not None
                                else logging.StreamHandler())
    handler.setFormatter(Formatter(fmt))
    logging.basicConfig(level=level, handlers=[handler])
    logging.logProcesses = False
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # no findCaller: %(filename)s and %(lineno)d are not printed
    for name, quiet in QUIET.items():
        logging.getLogger(name).setLevel(quiet)
