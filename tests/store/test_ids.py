from __future__ import annotations

import pytest

from store.ids import normalise_smsc_id, smsc_id_candidates


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("  00A1b2 ", "a1b2"),
        ("0", "0"),
        ("0000", "0"),
        ("12345", "12345"),
        ("000123", "123"),
        ("", ""),
        ("msg-0001", "msg-0001"),
    ],
)
def test_normalise(raw: str, norm: str) -> None:
    assert normalise_smsc_id(raw) == norm


def test_candidates_decimal_and_hex() -> None:
    # 255 decimal == ff hex; "255" is also valid hex (0x255 == 597).
    assert smsc_id_candidates("255") == ["255", "ff", "597"]
    assert smsc_id_candidates("00FF") == ["ff", "255"]
    assert smsc_id_candidates("7") == ["7"]
    assert smsc_id_candidates("0") == ["0"]
    assert smsc_id_candidates("abc-1") == ["abc-1"]
    assert smsc_id_candidates("") == [""]


def test_candidates_are_symmetric() -> None:
    # A receipt id in one base finds a stored id in the other, whichever side is which.
    for n in (10, 255, 4096, 123456789, 2**63):
        dec, hx = str(n), format(n, "x")
        assert hx in smsc_id_candidates(dec)
        assert dec in smsc_id_candidates(hx)


def test_non_ascii_digits_are_not_numbers() -> None:
    assert smsc_id_candidates("١٢") == ["١٢"]  # Arabic-Indic digits: isdecimal() but not ours
