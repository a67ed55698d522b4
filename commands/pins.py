"""PIN hashing: a keyed hash (HMAC-SHA256) whose key lives outside the database.

Threat model (docs/security.md): a 6-digit PIN has 10^6 values, so whoever holds a stored
hash *and* everything needed to compute it finds the PIN by trying them all, whatever the
cost per guess (a slow KDF at 25 ms is about 7 CPU-hours, i.e. minutes on a few cores). A
keyed hash moves that "everything needed" out of the database: a dump without the key file
is useless, and a check costs microseconds instead of 25 ms and 16 MiB. The online lockout
(5 wrong in 30 min, commands/handlers/common.py) stays the main defence.

Encodings (the prefix tells them apart):
- `hmac-sha256$<key id>$<salt hex>$<digest hex>`: digest = HMAC(key, salt || PIN). The salt
  keeps two accounts with the same PIN from having the same hash; the key id names the key
  of the key file that made it, so keys can be rotated (old keys stay for verification).
- `scrypt$n$r$p$<salt hex>$<hash hex>`: the earlier format. Still verified; a successful
  check re-hashes it with the current key, inside the command's transaction (`PinCheck.rehash`).

Passwords (upstream SMPP binds) are not PINs: they keep the slow KDF (`hash_password`).

The key file holds one hex key per line (`#` comments allowed); the first is current, the
others are old keys kept until no hash made with them remains. It is created with mode 0600
on first start (`open_key_file`); missing later while keyed hashes exist, the gateway refuses
to start rather than lock every retailer out.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Connection

from commands.parsed import Parsed

# --- scrypt (passwords, and PIN hashes made before the keyed hash) ---------------------------

N, R, P = 2**14, 8, 1
SALT_BYTES = 16
DKLEN = 32
SCRYPT_PREFIX = "scrypt"
HMAC_PREFIX = "hmac-sha256"
KEY_BYTES = 32
KEY_FILE_ENV = "SMSGW_PIN_KEY_FILE"
KEY_FILE_NAME = "pin.key"


class PinKeyError(RuntimeError):
    """The PIN key file is missing or unreadable; the message says what to do."""


def _kdf(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=DKLEN,
        maxmem=64 * 1024 * 1024,
    )


def hash_password(secret: str) -> str:
    """`scrypt$n$r$p$salt_hex$hash_hex` (~25 ms, 16 MiB): for passwords, not PINs."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _kdf(secret, salt, N, R, P)
    return f"{SCRYPT_PREFIX}${N}${R}${P}${salt.hex()}${digest.hex()}"


def verify_password(secret: str, encoded: str) -> bool:
    """True when `secret` matches a scrypt hash; False for a mismatch or an unreadable hash."""
    try:
        prefix, n, r, p, salt_hex, hash_hex = encoded.split("$")
        if prefix != SCRYPT_PREFIX:
            return False
        expected = bytes.fromhex(hash_hex)
        digest = _kdf(secret, bytes.fromhex(salt_hex), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


# --- the key ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PinKeys:
    current_id: str
    by_id: dict[str, bytes]  # every key of the file, the current one included
    path: Path | None = None

    @property
    def current(self) -> bytes:
        return self.by_id[self.current_id]


def key_id(key: bytes) -> str:
    """A short public name for a key (never the key): 8 hex digits of a hash of it."""
    return hashlib.sha256(b"smsgw pin key id\0" + key).hexdigest()[:8]


def keys_from(keys: list[bytes], path: Path | None = None) -> PinKeys:
    if not keys:
        raise PinKeyError("no PIN key given")
    return PinKeys(key_id(keys[0]), {key_id(k): k for k in reversed(keys)}, path)


_keys: PinKeys | None = None


def install(keys: PinKeys | None) -> None:
    """Use `keys` for every PIN hash and check of this process (None: forget them)."""
    global _keys
    _keys = keys


def current_keys() -> PinKeys:
    """The installed keys; else the file named by SMSGW_PIN_KEY_FILE, which must exist."""
    if _keys is None:
        path = os.environ.get(KEY_FILE_ENV)
        if not path:
            raise PinKeyError(
                "no PIN key loaded: start the gateway (it opens the key file) or set "
                f"{KEY_FILE_ENV} to the key file")
        install(read_key_file(Path(path)))
    assert _keys is not None
    return _keys


def default_key_file(database_url: str | None) -> Path:
    """Next to the SQLite file; for PostgreSQL, in the gateway's data directory."""
    from sqlalchemy.engine import make_url

    from store.db import default_database_url

    url = make_url(database_url or default_database_url())
    if url.get_backend_name() == "sqlite" and url.database:
        return Path(url.database).expanduser().parent / KEY_FILE_NAME
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "smsgw" / KEY_FILE_NAME


def read_key_file(path: Path) -> PinKeys:
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise PinKeyError(
            f"PIN key file {path} is missing. Stored PINs are hashed with it and cannot be "
            "checked without it: restore it from your backup (or point "
            f"{KEY_FILE_ENV} at it). Only if it is lost for good: reset every PIN "
            "(POST /accounts/{id}/pin) after starting with a new, empty key file."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PinKeyError(f"PIN key file {path} cannot be read: {exc}") from exc
    keys: list[bytes] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            key = bytes.fromhex(line)
        except ValueError:
            raise PinKeyError(f"{path}:{n}: a PIN key is hex digits") from None
        if len(key) < 16:
            raise PinKeyError(f"{path}:{n}: a PIN key needs at least 16 octets (32 hex digits)")
        keys.append(key)
    if not keys:
        raise PinKeyError(f"PIN key file {path} holds no key")
    return keys_from(keys, path)


def create_key_file(path: Path) -> PinKeys:
    """A new key file readable by its owner only (created atomically; never overwritten)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write("# smsgw PIN key (docs/security.md): keep it secret, back it up apart "
                "from the database.\n# First line is current; older keys below it.\n")
        f.write(key.hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    return keys_from([key], path)


def open_key_file(conn: Connection, path: Path) -> PinKeys:
    """The key file at start: read it; create it when absent and no keyed hash exists yet
    (first start, or a store holding only scrypt hashes); refuse when hashes need it."""
    from store.domain import accounts  # local: store.domain imports nothing from commands

    if not path.exists() and not accounts.any_pin_hash_with_prefix(conn, HMAC_PREFIX + "$"):
        return create_key_file(path)
    return read_key_file(path)


# --- PINs ------------------------------------------------------------------------------------


def _digest(key: bytes, salt: bytes, pin: str) -> bytes:
    return hmac.new(key, salt + pin.encode("utf-8"), hashlib.sha256).digest()


def hash_pin(pin: str) -> str:
    """`hmac-sha256$key_id$salt_hex$digest_hex` with the current key."""
    keys = current_keys()
    salt = secrets.token_bytes(SALT_BYTES)
    return f"{HMAC_PREFIX}${keys.current_id}${salt.hex()}${_digest(keys.current, salt, pin).hex()}"


def verify_pin(pin: str, encoded: str) -> bool:
    """True when `pin` matches; False for a wrong PIN or an unreadable hash.

    Raises PinKeyError for a keyed hash made with a key the key file no longer holds (a
    configuration fault, not a wrong PIN: it must not count towards the lockout)."""
    if encoded.startswith(SCRYPT_PREFIX + "$"):
        return verify_password(pin, encoded)
    try:
        prefix, kid, salt_hex, digest_hex = encoded.split("$")
        if prefix != HMAC_PREFIX:
            return False
        salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
    except ValueError:
        return False
    keys = current_keys()
    key = keys.by_id.get(kid)
    if key is None:
        raise PinKeyError(
            f"a PIN hash was made with key {kid}, which the key file {keys.path} does not "
            "hold: put that key back (below the current one) or reset the PIN")
    return hmac.compare_digest(_digest(key, salt, pin), expected)


def needs_rehash(encoded: str) -> bool:
    """Not made with the current key (scrypt, or an older key of the file)."""
    return not encoded.startswith(f"{HMAC_PREFIX}${current_keys().current_id}$")


@dataclass(frozen=True, slots=True)
class PinCheck:
    ok: bool
    # (stored hash, its replacement): a right PIN under an old format or key, re-hashed with
    # the current key in the command's transaction (handlers/common.check_pin).
    rehash: tuple[str, str] | None = None


def pin_in(parsed: Parsed) -> str | None:
    """The PIN a command carries (the *old* one for PIN), None when it carries none."""
    if parsed.command == "PIN":
        return parsed.args.get("old")
    if parsed.command in ("REG", "ORD", "MOD", "CAN", "RPT", "CHG"):
        return parsed.args.get("pin")
    return None


def check(conn: Connection, phone: str, parsed: Parsed) -> PinCheck | None:
    """The PIN in the message checked against the stored hash (Context.pin_ok / pin_rehash).

    Runs on a read connection before the write transaction: a keyed hash costs microseconds,
    but a not yet upgraded scrypt hash costs ~25 ms and must not stall the single writer.
    REG checks the PIN issued for the account named in the message (account numbers are
    stored uppercase; the phone is not bound yet); every other PIN-carrying command checks
    the sender's account. None when the command has no PIN or there is no hash to check.
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
    if not verify_pin(pin, encoded):
        return PinCheck(False)
    return PinCheck(True, (encoded, hash_pin(pin)) if needs_rehash(encoded) else None)


def precheck(conn: Connection, phone: str, parsed: Parsed) -> bool | None:
    """`check(...).ok`, None when there is nothing to check."""
    result = check(conn, phone, parsed)
    return None if result is None else result.ok
