"""PINs under the keyed hash (commands/pins.py, docs/security.md): format, the key file,
scrypt hashes still verified and upgraded at the next right PIN, key rotation, lockout."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from commands import pins
from store.models import accounts as accounts_t
from tests.domain.conftest import PH_R1, PIN, WRONG, assert_err, assert_ok, send


@pytest.fixture
def own_keys(tmp_path: Path) -> Iterator[Path]:
    """A key file of the test's own, installed for the test, the session's put back after."""
    saved = pins.current_keys()
    path = tmp_path / "pin.key"
    pins.install(pins.create_key_file(path))
    try:
        yield path
    finally:
        pins.install(saved)


def _stored(conn: Connection, phone: str) -> str:
    return conn.execute(sa.select(accounts_t.c.pin_hash)
                        .where(accounts_t.c.phone == phone)).scalar_one()


def _set_stored(conn: Connection, phone: str, encoded: str) -> None:
    conn.execute(accounts_t.update().where(accounts_t.c.phone == phone)
                 .values(pin_hash=encoded))


def test_keyed_hash_format_and_verify(own_keys: Path) -> None:
    encoded = pins.hash_pin("246810")
    prefix, kid, salt, digest = encoded.split("$")
    assert prefix == "hmac-sha256" and kid == pins.current_keys().current_id
    assert len(kid) == 8 and len(bytes.fromhex(salt)) == 16 and len(bytes.fromhex(digest)) == 32
    assert pins.current_keys().current.hex() not in encoded and "246810" not in encoded
    assert pins.verify_pin("246810", encoded) and not pins.verify_pin("246811", encoded)
    assert not pins.needs_rehash(encoded)
    assert pins.hash_pin("246810") != encoded  # salted: same PIN, another hash
    for garbage in ("", "garbage", "hmac-sha256$x$zz$00", "md5$1$2$3"):
        assert not pins.verify_pin("246810", garbage)


def test_scrypt_hash_still_verifies_and_needs_rehash() -> None:
    legacy = pins.hash_password("246810")
    assert legacy.startswith("scrypt$")
    assert pins.verify_pin("246810", legacy) and not pins.verify_pin("246811", legacy)
    assert pins.needs_rehash(legacy)


def test_scrypt_pin_upgraded_at_next_right_pin(conn: Connection, world: dict) -> None:
    legacy = pins.hash_password(PIN)
    _set_stored(conn, PH_R1, legacy)
    # A wrong PIN changes nothing (and counts towards the lockout as before).
    assert_err(send(conn, PH_R1, "ORD", pin=WRONG, items=[("1001", 1)]),
               "E04", "en")
    assert _stored(conn, PH_R1) == legacy
    # The right one: the command goes through and the hash is now keyed, same transaction.
    assert_ok(send(conn, PH_R1, "ORD", pin=PIN, items=[("1001", 1)]), "en")
    upgraded = _stored(conn, PH_R1)
    assert upgraded.startswith(f"hmac-sha256${pins.current_keys().current_id}$")
    assert pins.verify_pin(PIN, upgraded)
    # And it keeps working under the new hash, without another rewrite.
    assert_ok(send(conn, PH_R1, "ORD", pin=PIN, items=[("1001", 1)]), "en")
    assert _stored(conn, PH_R1) == upgraded


def test_wrong_pin_locks_out_with_keyed_hash(conn: Connection, world: dict) -> None:
    assert _stored(conn, PH_R1).startswith("hmac-sha256$")
    for left in (4, 3, 2, 1):
        assert_err(send(conn, PH_R1, "ORD", pin=WRONG, items=[("1001", 1)]), "E04", "en",
                   str(left))
    assert_err(send(conn, PH_R1, "ORD", pin=WRONG, items=[("1001", 1)]), "E05", "en")
    assert_err(send(conn, PH_R1, "ORD", pin=PIN, items=[("1001", 1)]), "E05", "en")


def test_key_file_created_0600_on_first_start(conn: Connection, tmp_path: Path) -> None:
    path = tmp_path / "data" / "pin.key"
    keys = pins.open_key_file(conn, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert pins.read_key_file(path) == keys  # same key read back
    assert len(keys.current) == pins.KEY_BYTES


def test_key_file_missing_while_keyed_hashes_exist_is_a_clear_error(
        conn: Connection, world: dict, tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "pin.key"
    with pytest.raises(pins.PinKeyError, match=r"pin\.key is missing.*restore it"):
        pins.open_key_file(conn, missing)
    assert not missing.exists()  # never silently replaced by a new key


def test_key_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("# only a comment\n")
    with pytest.raises(pins.PinKeyError, match="holds no key"):
        pins.read_key_file(bad)
    bad.write_text("not hex\n")
    with pytest.raises(pins.PinKeyError, match=r"bad\.key:1: a PIN key is hex"):
        pins.read_key_file(bad)
    bad.write_text("00ff\n")
    with pytest.raises(pins.PinKeyError, match="at least 16 octets"):
        pins.read_key_file(bad)


def test_default_key_file_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert pins.default_key_file(f"sqlite:///{tmp_path}/x/smsgw.db") == tmp_path / "x" / "pin.key"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert pins.default_key_file("postgresql://u@h/db") == tmp_path / "xdg" / "smsgw" / "pin.key"


def test_rotation_old_key_verifies_and_is_rehashed(
        conn: Connection, world: dict, own_keys: Path) -> None:
    old_id = pins.current_keys().current_id
    _set_stored(conn, PH_R1, pins.hash_pin(PIN))
    # The operator puts a new key on the first line and keeps the old one below it.
    own_keys.write_text("ab" * 32 + "\n" + own_keys.read_text())
    pins.install(pins.read_key_file(own_keys))
    new_id = pins.current_keys().current_id
    assert new_id != old_id and old_id in pins.current_keys().by_id
    assert_ok(send(conn, PH_R1, "ORD", pin=PIN, items=[("1001", 1)]), "en")
    assert _stored(conn, PH_R1).startswith(f"hmac-sha256${new_id}$")


def test_hash_of_a_removed_key_is_an_error_not_a_wrong_pin(own_keys: Path) -> None:
    encoded = pins.hash_pin(PIN)
    own_keys.write_text("cd" * 32 + "\n")  # the old key dropped too early
    pins.install(pins.read_key_file(own_keys))
    with pytest.raises(pins.PinKeyError, match="does not hold"):
        pins.verify_pin(PIN, encoded)
