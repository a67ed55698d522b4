"""`smsgw phone <msisdn>`: a virtual handset in the terminal.

Type an SMS (Chinese input works) and press Enter: it goes to the gateway as an MO through
the simulator's control API (``POST /mo``); everything the handset receives (replies and
notices) is printed as it arrives, by polling ``GET /handsets/<msisdn>/inbox?since=<id>``:

    → 10690 12:01:00  HELP
    ← 10690 12:01:02  Commands: HELP ... Send HELP <cmd> for a format.

It talks to a running gateway's bundled simulator (``smsgw up``), so it is how a newcomer,
an operator or a trainer tries the protocol. ``--send TEXT --wait SECONDS`` sends one
message, prints what arrives for that long and exits (for scripts and tests).
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

import httpx

from common.phones import canonical

DEFAULT_CONTROL_URL = f"http://127.0.0.1:{os.environ.get('SMSGW_SIM_CONTROL_PORT', '2776')}"
DEFAULT_TO = os.environ.get("SMSGW_SOURCE_ADDR", "10690")
DEFAULT_SEND_WAIT = 5.0  # seconds --send waits for replies when --wait is not given
POLL_INTERVAL = 0.25  # seconds between inbox polls: replies feel immediate, load is nil

LOCAL_HELP = """\
Local commands (everything else is sent as an SMS):
  /help        this list
  /to <code>   text another short code (now {to})
  /quit        leave (Ctrl-D and Ctrl-C work too)
  //text       send a message that starts with '/'
Try: HELP, 帮助, HELP ORD"""


class PhoneError(Exception):
    """The simulator cannot be used (not running, wrong URL); the message says what to do."""


def _unreachable(url: str, exc: BaseException) -> PhoneError:
    return PhoneError(f"cannot reach the simulator at {url} ({type(exc).__name__}): "
                      "is `smsgw up` running? (or pass --control-url)")


class _StdinLines:
    """Lines from stdin without blocking the event loop.

    An ``asyncio.StreamReader`` is read directly. A real file descriptor (tty, pipe, file)
    is read with ``os.read`` on a daemon thread: no buffered-reader lock is held across the
    blocking read, so leaving with the thread still waiting for a line cannot wedge the
    interpreter's shutdown. Anything else with ``readline`` (e.g. ``io.StringIO``) is read on
    the thread too.
    """

    def __init__(self, source: Any) -> None:
        self._source = source
        self._queue: asyncio.Queue[str | None] | None = None

    async def readline(self) -> str | None:
        """The next line without its newline, or None at end of input."""
        if isinstance(self._source, asyncio.StreamReader):
            data = await self._source.readline()
            if not data:
                return None
            return data.decode("utf-8", "replace").rstrip("\r\n")
        if self._queue is None:
            self._queue = asyncio.Queue()
            loop = asyncio.get_running_loop()
            threading.Thread(target=self._pump, args=(loop, self._queue),
                             name="smsgw-phone-stdin", daemon=True).start()
        return await self._queue.get()

    def _pump(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
        def put(item: str | None) -> bool:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                return False
            return True

        try:
            fd = self._source.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None
        try:
            if fd is None:
                while line := self._source.readline():
                    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
                    if not put(text.rstrip("\r\n")):
                        return
            else:
                decoder = codecs.getincrementaldecoder("utf-8")("replace")
                pending = ""
                while chunk := os.read(fd, 4096):
                    pending += decoder.decode(chunk)
                    *lines, pending = pending.split("\n")
                    for line in lines:
                        if not put(line.rstrip("\r")):
                            return
                pending += decoder.decode(b"", final=True)
                if pending and not put(pending.rstrip("\r")):
                    return
        except OSError:
            pass
        put(None)


class Phone:
    """One virtual handset talking to the simulator's control API."""

    def __init__(self, msisdn: str, http: httpx.AsyncClient, *, to: str,
                 write: Callable[[str], None], poll_interval: float = POLL_INTERVAL) -> None:
        self.msisdn = msisdn
        self.to = to
        self.http = http
        self.write = write
        self.poll_interval = poll_interval
        self.since = 0
        self.received = 0
        self.arrived = asyncio.Event()  # set on every new inbox message
        self._lost = False

    @property
    def url(self) -> str:
        return str(self.http.base_url).rstrip("/")

    async def connect(self) -> int:
        """Check the simulator is there; start after what the inbox already holds.
        Returns how many earlier messages the inbox has."""
        try:
            (await self.http.get("/healthz")).raise_for_status()
            earlier = await self._inbox(None)
        except httpx.TransportError as exc:
            raise _unreachable(self.url, exc) from None
        except httpx.HTTPStatusError as exc:
            raise PhoneError(f"{self.url} answered {exc.response.status_code}: is it the "
                             "simulator's control API (smsgw up prints its address)?") from None
        self.since = max((m["id"] for m in earlier), default=0)
        return len(earlier)

    async def _inbox(self, since: int | None) -> list[dict[str, Any]]:
        params = {"since": since} if since is not None else None
        resp = await self.http.get(f"/handsets/{self.msisdn}/inbox", params=params)
        resp.raise_for_status()
        items: list[dict[str, Any]] = resp.json()
        return items

    async def send(self, text: str) -> bool:
        try:
            resp = await self.http.post("/mo", json={"from": self.msisdn, "to": self.to,
                                                     "text": text})
        except httpx.TransportError as exc:
            self.write(f"!  not sent: {_unreachable(self.url, exc)}")
            return False
        if resp.status_code != 202:
            self.write(f"!  not sent: the simulator answered {resp.status_code}: "
                       f"{_detail(resp)}")
            return False
        parts = resp.json().get("parts", 1)
        self.write(_line("→", self.to, datetime.now().astimezone(), text, parts))
        return True

    async def poll_once(self) -> None:
        try:
            items = await self._inbox(self.since)
        except (httpx.TransportError, httpx.HTTPStatusError) as exc:
            if not self._lost:
                self._lost = True
                self.write(f"!  lost contact with the simulator at {self.url} "
                           f"({type(exc).__name__}); retrying…")
            return
        if self._lost:
            self._lost = False
            self.write("!  simulator reachable again")
            if not items and self.since:
                # A restarted simulator numbers its inbox from 1 again.
                with contextlib.suppress(httpx.HTTPError):
                    everything = await self._inbox(None)
                    top = max((m["id"] for m in everything), default=0)
                    if top < self.since:
                        self.since = top
        for msg in sorted(items, key=lambda m: m["id"]):
            if msg["id"] <= self.since:
                continue
            self.since = msg["id"]
            self.received += 1
            self.write(_line("←", msg.get("source_addr", "?"), _when(msg.get("received_at")),
                             msg.get("text", ""), msg.get("parts", 1)))
        if items:
            self.arrived.set()

    async def poll_forever(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self.poll_interval)

    async def wait_for(self, seconds: float, count: int | None = None) -> None:
        """Keep printing for ``seconds``, or until ``count`` messages have arrived."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, seconds)
        while count is None or self.received < count:
            left = deadline - loop.time()
            if left <= 0:
                break
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)
        await self.poll_once()  # whatever landed in the last interval


def _detail(resp: httpx.Response) -> str:
    try:
        detail = resp.json().get("detail", resp.text)
    except ValueError:
        return resp.text[:200]
    if isinstance(detail, list):  # FastAPI validation errors
        return "; ".join(f"{'.'.join(map(str, d.get('loc', [])[1:]))}: {d.get('msg')}"
                         for d in detail if isinstance(d, dict))
    return str(detail)


def _when(value: str | None) -> datetime:
    if value:
        try:
            return datetime.fromisoformat(value).astimezone()
        except ValueError:
            pass
    return datetime.now().astimezone()


def _line(arrow: str, addr: str, when: datetime, text: str, parts: int = 1) -> str:
    head = f"{arrow} {addr} {when:%H:%M:%S}  "
    body = text.replace("\r\n", "\n").replace("\n", "\n" + " " * len(head))
    tail = f"  [{parts} parts]" if parts and parts > 1 else ""
    return head + body + tail


def _writer(stream: IO[str]) -> Callable[[str], None]:
    def write(line: str) -> None:
        try:
            stream.write(line + "\n")
        except UnicodeEncodeError:  # a terminal that cannot show Chinese: show escapes
            enc = getattr(stream, "encoding", None) or "ascii"
            stream.write(line.encode(enc, "backslashreplace").decode(enc) + "\n")
        stream.flush()

    return write


async def run_phone(msisdn: str, *, control_url: str = DEFAULT_CONTROL_URL,
                    to: str = DEFAULT_TO, stdin: Any = None, stdout: IO[str] | None = None,
                    stderr: IO[str] | None = None, send: str | None = None,
                    wait: float | None = None, count: int | None = None,
                    poll_interval: float = POLL_INTERVAL) -> int:
    """Run the handset until end of input (or ``/quit``); returns an exit status.

    ``stdin``: an ``asyncio.StreamReader``, a file object, or None for ``sys.stdin``.
    ``send``: non-interactive: send this one text, print what arrives for ``wait`` seconds
    (default 5) or until ``count`` messages arrived, and return.
    Interactive: after end of input, keep printing for ``wait`` seconds (default 0), so
    ``echo HELP | smsgw phone 861... --wait 3`` shows the reply.
    """
    out = _writer(stdout or sys.stdout)
    err = _writer(stderr or sys.stderr)
    try:
        # The handset is its canonical number: `+86 138-0000-0001` is 8613800000001.
        msisdn = canonical(msisdn)
    except ValueError as exc:  # a bad number, or a bad SMSGW_DEFAULT_COUNTRY
        err(f"smsgw phone: {exc}")
        return 2
    async with httpx.AsyncClient(base_url=control_url, timeout=5.0) as http:
        phone = Phone(msisdn, http, to=to, write=out, poll_interval=poll_interval)
        try:
            earlier = await phone.connect()
        except PhoneError as exc:
            err(f"smsgw phone: {exc}")
            return 1
        interactive = send is None
        if interactive:
            out(f"Phone {msisdn} texting {to} via {phone.url}. Type a message and press "
                "Enter; /help for local commands, Ctrl-D to quit.")
            if earlier:
                out(f"({earlier} earlier message(s) in this handset's inbox not shown)")
        poller = asyncio.create_task(phone.poll_forever(), name="smsgw-phone-poll")
        try:
            if not interactive:
                assert send is not None
                if not await phone.send(send):
                    return 1
                await phone.wait_for(DEFAULT_SEND_WAIT if wait is None else wait, count)
                return 0
            await _interact(phone, _StdinLines(stdin if stdin is not None else sys.stdin), out)
            if wait:
                await phone.wait_for(wait, count)
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
    return 0


async def _interact(phone: Phone, lines: _StdinLines, out: Callable[[str], None]) -> None:
    while (line := await lines.readline()) is not None:
        text = line.strip()
        if not text:
            continue
        if text.startswith("//"):
            text = text[1:]
        elif text.startswith("/"):
            cmd, _, arg = text.partition(" ")
            cmd = cmd.lower()
            if cmd in ("/quit", "/exit", "/q"):
                return
            if cmd in ("/help", "/?", "/h"):
                out(LOCAL_HELP.format(to=phone.to))
            elif cmd == "/to" and arg.strip():
                phone.to = arg.strip()
                out(f"now texting {phone.to}")
            else:
                out(f"unknown local command {cmd!r}; /help lists them (//text sends '/text')")
            continue
        await phone.send(text)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

PHONE_EPILOG = """\
examples:
  smsgw phone 8613800000001                      interactive: type HELP, 帮助, ...
  smsgw phone 8613800000001 --send HELP --wait 3 one message, print replies for 3 s
  echo 帮助 | smsgw phone 8613800000001 --wait 3

Needs a running gateway with its bundled simulator (smsgw up); --control-url points
elsewhere (env SMSGW_SIM_CONTROL_PORT sets the default port).
"""


def add_phone_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``phone`` to an argparse subparsers object (``smsgw phone``)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "phone", help="a virtual handset in the terminal: text the gateway, see replies",
        description="An interactive handset against a running gateway's simulator: type an "
                    "SMS, see the reply and any notices as they arrive.",
        epilog=PHONE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("msisdn", help="this handset's number in any form, e.g. 8613800000001, "
                                  "'+86 138-0000-0001' or 13800000001 (national numbers "
                                  "are read in SMSGW_DEFAULT_COUNTRY, default 86)")
    p.add_argument("--control-url", default=DEFAULT_CONTROL_URL,
                   help=f"simulator control API (default {DEFAULT_CONTROL_URL})")
    p.add_argument("--to", default=DEFAULT_TO,
                   help=f"short code to text (default {DEFAULT_TO})")
    p.add_argument("--send", metavar="TEXT",
                   help="send TEXT, print what arrives, exit (non-interactive)")
    p.add_argument("--wait", type=float, metavar="SECONDS",
                   help="how long to keep printing after --send (default "
                        f"{DEFAULT_SEND_WAIT:g}) or after end of input (default 0)")
    p.add_argument("--count", type=int, metavar="N",
                   help="stop waiting as soon as N messages have arrived")
    p.set_defaults(func=phone_main)
    return p


def phone_main(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(run_phone(
            args.msisdn, control_url=args.control_url, to=args.to, send=args.send,
            wait=args.wait, count=args.count))
    except KeyboardInterrupt:  # Ctrl-C: leave quietly
        print(file=sys.stderr)
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smsgw")
    add_phone_parser(parser.add_subparsers(dest="command", required=True))
    return phone_main(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
