"""The one phone-number form: E.164 digits without '+', e.g. ``8613800000001``.

Every entry point (MO intake, CHG/CFM, the admin API, the CLI, broadcasts, the upstream SMPP
server, the simulator's handsets) calls `canonical` so that ``+86 138-0000-0001``,
``008613800000001``, ``8613800000001`` and ``13800000001`` are one phone (protocol.md, text
rules). Parsing is delegated to `phonenumbers` (Google's libphonenumber metadata): the
national-prefix and country-code rules of 240 regions are not something to hand-write.

A national number is read in the service's default country, ``SMSGW_DEFAULT_COUNTRY`` (a
country calling code, default 86). We check that a number is *possible* (right length for its
country), not that it is *valid* (allocated range): test ranges and new ranges must work.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator

DEFAULT_COUNTRY_ENV = "SMSGW_DEFAULT_COUNTRY"
_SEPARATORS = re.compile(r"[\s\-.()/]")
_EXAMPLE = "+86 138 0000 0001 or 13800000001"


class InvalidPhoneNumber(ValueError):
    """Raised with a message that says what was wrong and how to write the number."""


@lru_cache(maxsize=1)
def default_country() -> int:
    raw = os.environ.get(DEFAULT_COUNTRY_ENV, "86").strip().lstrip("+")
    if not raw.isascii() or not raw.isdigit() or \
            phonenumbers.region_code_for_country_code(int(raw)) == "ZZ":
        raise ValueError(f"{DEFAULT_COUNTRY_ENV}={raw!r} is not a country calling code "
                         "(digits such as 86 for China or 44 for the UK)")
    return int(raw)


def canonical(raw: str, *, international: bool = False, country: int | None = None) -> str:
    """E.164 digits of `raw`, or InvalidPhoneNumber saying why not.

    `international` is the SMPP hint (TON=1): the digits already start with a country code.
    Without it, a number is read as national in `country` (default: the service's), unless it
    starts with '+' or '00', or is too long to be national but starts with a country code.
    """
    text = _SEPARATORS.sub("", str(raw))
    if not text:
        raise InvalidPhoneNumber(f"no phone number given; write it as {_EXAMPLE}")
    if text.startswith("00"):
        text = "+" + text[2:]
    digits = text[1:] if text.startswith("+") else text
    if not digits.isascii() or not digits.isdigit():
        raise InvalidPhoneNumber(
            f"{raw!r} is not a phone number: only digits, spaces, '-' and a leading '+' "
            f"are allowed; write it as {_EXAMPLE}")
    cc = default_country() if country is None else country
    if international and not text.startswith("+"):
        text = "+" + text
    number = _parse(text, cc)
    if number is None and not text.startswith("+"):
        number = _parse("+" + text, cc)  # e.g. 4915112345678: a foreign number without '+'
    if number is None:
        raise InvalidPhoneNumber(
            f"{raw!r} is not a possible phone number (wrong length for its country); "
            f"write it as {_EXAMPLE}")
    # format_number keeps a national number's leading zero (Italy), national_number does not.
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


def _parse(text: str, cc: int) -> phonenumbers.PhoneNumber | None:
    region = phonenumbers.region_code_for_country_code(cc)
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_possible_number(number) else None


def canonical_or_none(raw: str, **kw: bool | int | None) -> str | None:
    """`canonical`, or None for what is not a phone number (alphanumeric senders, junk)."""
    try:
        return canonical(raw, **kw)  # type: ignore[arg-type]
    except InvalidPhoneNumber:
        return None


# The field type for every pydantic model that takes a phone number (API, config files): a
# bad number is a 422 whose message says how to write it; a good one arrives canonical.
Msisdn = Annotated[str, AfterValidator(canonical)]
