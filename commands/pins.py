"""PIN hashing: scrypt, salted, never a plain PIN in the store.

A 6-digit PIN has only 10^6 values, so the hash alone cannot protect it against an offline
search; what protects it is the lockout (5 wrong in 30 min, commands/handlers/common.py) and
the KDF cost per guess. n=2**14, r=8, p=1 is the interactive-login setting of the scrypt
paper and of Python's own docs (~16 MiB, ~25 ms here).

The KDF runs before the store transaction (Context.pin_ok): `precheck` is what the engine
calls, outside the writer, so the single writer thread never stalls on it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy.engine import Connection

from commands.parsed import Parsed

N, R, P = 2**14, 8, 1
SALT_BYTES = 16
DKLEN = 32
_PREFIX = "scrypt"


def _kdf(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        pin.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=DKLEN, maxmem=64 * 1024 * 1024
    )


def hash_pin(pin: str) -> str:
    """`scrypt$n$r$p$salt_hex$hash_hex`; the parameters travel with the hash."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _kdf(pin, salt, N, R, P)
    return f"{_PREFIX}${N}${R}${P}${salt.hex()}${digest.hex()}"


def verify_pin(pin: str, encoded: str) -> bool:
    """True when `pin` matches; False for a wrong PIN or an unreadable hash."""
    try:
        prefix, n, r, p, salt_hex, hash_hex = encoded.split("$")
        if prefix != _PREFIX:
            return False
        expected = bytes.fromhex(hash_hex)
        digest = _kdf(pin, bytes.fromhex(salt_hex), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


def pin_in(parsed: Parsed) -> str | None:
    """The PIN a command carries (the *old* one for PIN), None when it carries none."""
    if parsed.command == "PIN":
        return parsed.args.get("old")
    if parsed.command in ("REG", "ORD", "MOD", "CAN", "RPT", "CHG"):
        return parsed.args.get("pin")
    return None


def precheck(conn: Connection, phone: str, parsed: Parsed) -> bool | None:
    """Context.pin_ok for this message, computed before the write transaction.

    REG checks the PIN issued for the account named in the message (account numbers are
    stored uppercase; the phone is not bound yet); every other PIN-carrying command checks
    the sender's account. None when the command has no PIN or there is no hash to check
    against.
    """
    from store.domain import accounts  # local: store.domain imports nothing from commands

    pin = pin_in(parsed)
    if pin is None:
        return None
    if parsed.command == "REG":
        encoded = accounts.pin_hash_for_account_no(
            conn, str(parsed.args.get("account", "")).upper()
        )
    else:
        encoded = accounts.pin_hash_for_phone(conn, phone)
    if encoded is None:
        return None
    return verify_pin(pin, encoded)
