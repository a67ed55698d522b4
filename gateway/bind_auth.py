"""Authenticating upstream SMPP binds without leaking, stalling or bloating.

- Every refusal is ESME_RBINDFAIL, whatever the reason (unknown system_id, disabled account,
  wrong password, lockout): the status tells an attacker nothing; our log line says why.
- An unknown or disabled system_id costs the same as a known one: the password is checked
  against a dummy hash with the same scrypt parameters, so timing does not tell either.
- Failures are throttled per source address and per system_id (gateway/auth_throttle.py).
  A system_id lockout does not shut out a source that bound it successfully before, so a
  stranger guessing an application's password cannot lock the application itself out.
- The KDF (~16 MiB, ~25 ms) runs on a small dedicated thread pool, never on the event loop
  nor on the store's threads; one KDF at a time per source address, at most
  ``max_per_source`` binds from one address and ``max_pending`` in all waiting for one
  (beyond that: refused at once). A flood of binds thus costs bounded memory and cannot
  stall a good bind from another address.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from commands.pins import hash_password, verify_password
from gateway.auth_throttle import AuthLimits, FailureThrottle
from gateway.smpp import status as st
from store import upstream
from store.store import Store

log = logging.getLogger("smsgw.smpp_server")

KDF_THREADS = 2
TRUST_SECONDS = 7 * 24 * 3600.0  # a source that bound a system_id stays trusted this long

_pool: ThreadPoolExecutor | None = None
_dummy_hash: str | None = None


def _kdf_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=KDF_THREADS, thread_name_prefix="bind-kdf")
    return _pool


def _dummy() -> str:
    """A real hash of a random password: verifying against it costs what a real one does."""
    global _dummy_hash
    if _dummy_hash is None:
        import secrets

        _dummy_hash = hash_password(secrets.token_hex(8))
    return _dummy_hash


@dataclass(slots=True)
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


@dataclass(frozen=True, slots=True)
class BindResult:
    status: int
    account: Any = None  # the upstream_accounts row when status is ESME_ROK


class BindAuthenticator:
    def __init__(self, store: Store, limits: AuthLimits | None = None, *,
                 max_pending: int = 64, max_per_source: int = 8):
        self.store = store
        limits = limits or AuthLimits()
        self.by_source = FailureThrottle("smpp_bind", "source", limits)
        self.by_system_id = FailureThrottle("smpp_bind", "system_id", limits)
        self.max_pending = max_pending
        self.max_per_source = max_per_source
        self._pending = 0
        self._slots: dict[str, _Slot] = {}  # at most max_pending: one per waiting source
        self._trusted: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._max_trusted = limits.max_tracked

    async def warm(self) -> None:
        """Make the dummy hash now, off the event loop, so no first bind pays for it."""
        await asyncio.get_running_loop().run_in_executor(_kdf_pool(), _dummy)

    async def authenticate(self, source: str, system_id: str, password: str) -> BindResult:
        if self._locked(source, system_id):
            return BindResult(st.ESME_RBINDFAIL)
        slot = self._slots.get(source)
        if self._pending >= self.max_pending or (
                slot is not None and slot.users >= self.max_per_source):
            # Not counted as a failure: nothing was checked. Refused at once, so waiting
            # binds (and their memory) stay bounded.
            log.warning("bind refused system_id=%s peer=%s: too many binds being checked "
                        "(%d from this address, %d in all)", system_id, source,
                        slot.users if slot else 0, self._pending)
            return BindResult(st.ESME_RBINDFAIL)
        self._pending += 1
        slot = self._slots.setdefault(source, _Slot())
        slot.users += 1
        try:
            async with slot.lock:  # one KDF at a time per source address
                if self._locked(source, system_id):  # locked while this one waited
                    return BindResult(st.ESME_RBINDFAIL)
                return await self._check(source, system_id, password)
        finally:
            self._pending -= 1
            slot.users -= 1
            if slot.users == 0:
                del self._slots[source]

    def _locked(self, source: str, system_id: str) -> bool:
        if self.by_source.retry_after(source) is not None:
            return True
        return (self.by_system_id.retry_after(system_id) is not None
                and not self._is_trusted(source, system_id))

    async def _check(self, source: str, system_id: str, password: str) -> BindResult:
        account = await self.store.read(lambda c: upstream.account(c, system_id))
        usable = account is not None and account.enabled
        if not usable and _dummy_hash is None:
            await self.warm()
        encoded = account.password_hash if usable else _dummy()
        ok = await asyncio.get_running_loop().run_in_executor(
            _kdf_pool(), verify_password, password, encoded)
        if ok and usable:
            self.by_source.success(source)
            self.by_system_id.success(system_id)
            self._trust(source, system_id)
            return BindResult(st.ESME_ROK, account)
        why = ("unknown system_id" if account is None else
               "account disabled" if not account.enabled else "wrong password")
        log.warning("bind refused system_id=%s peer=%s: %s", system_id, source, why)
        self.by_source.failure(source)
        self.by_system_id.failure(system_id)
        return BindResult(st.ESME_RBINDFAIL)

    def _is_trusted(self, source: str, system_id: str) -> bool:
        at = self._trusted.get((system_id, source))
        return at is not None and time.monotonic() - at < TRUST_SECONDS

    def _trust(self, source: str, system_id: str) -> None:
        self._trusted[(system_id, source)] = time.monotonic()
        self._trusted.move_to_end((system_id, source))
        while len(self._trusted) > self._max_trusted:
            self._trusted.popitem(last=False)
