"""common.phones: the one phone-number form (issue 8, "One phone-number form")."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import BaseModel, ValidationError

from common import phones
from common.phones import InvalidPhoneNumber, Msisdn, canonical, canonical_or_none


@pytest.fixture
def country(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set SMSGW_DEFAULT_COUNTRY for one test (the value is cached per process)."""
    phones.default_country.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    phones.default_country.cache_clear()


@pytest.mark.parametrize("raw", [
    "+86 138-0000-0001", "008613800000001", "8613800000001", "13800000001",
    "+8613800000001", "0086 138 0000 0001", "+86 (138) 0000 0001", "86 138 0000 0001",
    " 138.0000.0001 ",
])
def test_every_written_form_is_one_phone(raw: str) -> None:
    assert canonical(raw) == "8613800000001"


@pytest.mark.parametrize(("raw", "expected"), [
    ("+447911123456", "447911123456"),    # UK mobile with '+'
    ("00447911123456", "447911123456"),   # ... with the 00 international prefix
    ("447911123456", "447911123456"),     # ... without '+': not a Chinese number
    ("+44 07911 123456", "447911123456"),  # a trunk 0 written after the country code
    ("+4915112345678", "4915112345678"),
    ("4915112345678", "4915112345678"),
    ("+14155552671", "14155552671"),
    ("14155552671", "14155552671"),      # 11 digits from 1, yet no Chinese mobile range
    ("+390612345678", "390612345678"),   # Italy keeps the leading 0 of its numbers
    ("390612345678", "390612345678"),
])
def test_foreign_numbers_with_and_without_plus(raw: str, expected: str) -> None:
    assert canonical(raw) == expected


def test_national_numbers_with_trunk_prefix_and_landlines() -> None:
    assert canonical("01012345678") == "861012345678"  # Beijing landline, trunk 0
    assert canonical("861012345678") == "861012345678"


def test_smpp_international_hint_reads_the_country_code() -> None:
    assert canonical("8613800000001", international=True) == "8613800000001"
    assert canonical("447911123456", international=True) == "447911123456"


@pytest.mark.parametrize(("raw", "says"), [
    ("", "no phone number given"),
    ("   ", "no phone number given"),
    ("abc", "only digits"),
    ("138OOOO0001", "only digits"),
    ("++8613800000001", "only digits"),
    ("１３８０００００００１", "only digits"),  # full-width digits are not ASCII digits
    ("12", "too short"),
    ("123", "too short"),
    ("10086", "area code"),  # a local service number, not a subscriber's phone
    ("+999123456789", "no country has that calling code"),
    ("+86", "not a phone number"),
    ("123456789012", "drop digits"),  # libphonenumber would strip '12345' as a carrier code
    ("+8613800000001234567", "too long"),
])
def test_junk_and_short_numbers_raise_with_a_helpful_message(raw: str, says: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as err:
        canonical(raw)
    message = str(err.value)
    assert says in message
    assert "write it as +86 138 0000 0001 or 13800000001" in message
    assert canonical_or_none(raw) is None


def test_invalid_phone_number_is_a_value_error() -> None:
    # pydantic turns ValueError from a validator into a 422 naming the field.
    assert issubclass(InvalidPhoneNumber, ValueError)


def test_canonical_or_none_passes_good_numbers_and_hints() -> None:
    assert canonical_or_none("+86 138-0000-0001") == "8613800000001"
    assert canonical_or_none("447911123456", international=True) == "447911123456"
    assert canonical_or_none("SMSGW") is None  # an alphanumeric sender


def test_msisdn_field_type_canonicalises_and_refuses() -> None:
    class Body(BaseModel):
        phone: Msisdn

    assert Body(phone="+86 138-0000-0001").phone == "8613800000001"
    with pytest.raises(ValidationError) as err:
        Body(phone="12")
    assert "too short" in str(err.value)
    assert err.value.errors()[0]["loc"] == ("phone",)


def test_default_country_is_86(country: pytest.MonkeyPatch) -> None:
    country.delenv(phones.DEFAULT_COUNTRY_ENV, raising=False)
    assert phones.default_country() == 86
    assert canonical("13800000001") == "8613800000001"


def test_default_country_from_the_environment(country: pytest.MonkeyPatch) -> None:
    country.setenv(phones.DEFAULT_COUNTRY_ENV, "44")
    assert phones.default_country() == 44
    assert canonical("07911 123456") == "447911123456"
    # International forms do not depend on the setting.
    assert canonical("+86 138-0000-0001") == "8613800000001"
    assert canonical("8613800000001") == "8613800000001"


def test_default_country_accepts_a_leading_plus(country: pytest.MonkeyPatch) -> None:
    country.setenv(phones.DEFAULT_COUNTRY_ENV, " +49 ")
    assert canonical("015112345678") == "4915112345678"


def test_explicit_country_overrides_the_setting() -> None:
    assert canonical("07911 123456", country=44) == "447911123456"


@pytest.mark.parametrize("bad", ["CN", "999", "", "8 6", "٨٦"])
def test_a_bad_default_country_says_what_to_set(country: pytest.MonkeyPatch, bad: str) -> None:
    country.setenv(phones.DEFAULT_COUNTRY_ENV, bad)
    with pytest.raises(ValueError, match=r"SMSGW_DEFAULT_COUNTRY=.* is not a country calling "
                                         r"code") as err:
        canonical("13800000001")
    # A misconfiguration is not "a bad number": canonical_or_none must not hide it.
    assert not isinstance(err.value, InvalidPhoneNumber)
    with pytest.raises(ValueError, match="SMSGW_DEFAULT_COUNTRY"):
        canonical_or_none("13800000001")
