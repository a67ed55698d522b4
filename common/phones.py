"""The one phone-number form: E.164 digits without '+', e.g. ``8613800000001``.

Every entry point (MO intake, CHG/CFM, the admin API, the CLI, broadcasts, the upstream SMPP
server, the simulator's handsets) calls `canonical` so that ``+86 138-0000-0001``,
``008613800000001``, ``8613800000001`` and ``13800000001`` are one phone (protocol.md, text
rules). Parsing is delegated to `phonenumbers` (Google's libphonenumber metadata): the
national-prefix and country-code rules of 240 regions are not something to hand-write.

A national number is read in the service's default country, ``SMSGW_DEFAULT_COUNTRY`` (a
country calling code, default 86). We check that a number is *possible* (right length for its
country), not that it is *valid* (allocated range): test ranges and new ranges must work;
validity only decides between the national and the international reading of bare digits.
A local number without its area code (``10086``-style service numbers) is not a phone.
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
    Without it, a number starting with '+' or '00' is international; other digits are read
    both as a national number of `country` (default: the service's) and as an international
    number missing its '+'. A *valid* reading (an allocated range) wins, national first, so
    ``13800000001`` is Chinese and ``4915112345678`` German; when neither is valid, a
    *possible* one (right length: test and new ranges) is taken, national first.
    """
    return _canonical(str(raw), international,
                      default_country() if country is None else country)


# ~100 µs a parse; MO intake, the simulator and bulk sends see the same numbers again and
# again. Keyed by the resolved country, so a changed setting is never served stale. About
# 300 bytes an entry: 16,384 numbers cost ~5 MB of RSS once full (65,536 cost 19 MB, which
# a 30-minute soak full of never-seen numbers took for a leak).
@lru_cache(maxsize=16384)
def _canonical(raw: str, international: bool, cc: int) -> str:
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
    readings = [_parse("+" + digits, cc)] if international or text.startswith("+") else \
        [_parse(digits, cc), _parse("+" + digits, cc)]
    found = [n for n in readings if isinstance(n, phonenumbers.PhoneNumber)]
    number = next((n for n in found if phonenumbers.is_valid_number(n)), None) or \
        next(iter(found), None)
    if number is None:
        why = next((r for r in readings if isinstance(r, str)), "not a possible phone number")
        raise InvalidPhoneNumber(f"{raw!r} is {why}; write it as {_EXAMPLE}")
    # format_number keeps a national number's leading zero (Italy), national_number does not.
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


_REASONS = {
    phonenumbers.ValidationResult.TOO_SHORT: "too short for a phone number",
    phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
        "too short: a local number needs its area code",
    phonenumbers.ValidationResult.TOO_LONG: "too long for a phone number",
    phonenumbers.ValidationResult.INVALID_LENGTH: "the wrong length for a phone number",
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "not a phone number (no such country code)",
}


_PARSE_ERRORS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
        "not a phone number (no country has that calling code)",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short for a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short for a phone number",
    phonenumbers.NumberParseException.TOO_LONG: "too long for a phone number",
}


def _parse(text: str, cc: int) -> phonenumbers.PhoneNumber | str:
    """`text` as a complete, possible number of region `cc` (or with its own '+' code), or
    why not. A reading that drops digits other than the country code and the trunk prefix
    (libphonenumber strips Chinese carrier-select codes such as 12593) is refused: a
    typo must not become a different, shorter number."""
    region = phonenumbers.region_code_for_country_code(cc)
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        return _PARSE_ERRORS.get(exc.error_type, "not a phone number")
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        return _REASONS.get(reason, "not a possible phone number")
    nsn = phonenumbers.national_significant_number(number)
    digits = text.lstrip("+")
    own_cc = str(number.country_code)
    meta = phonenumbers.PhoneMetadata.metadata_for_region(
        phonenumbers.region_code_for_number(number) or region)
    trunk = (meta.national_prefix or "") if meta is not None else ""
    if not digits.endswith(nsn) or \
            digits[:len(digits) - len(nsn)] not in ("", trunk, own_cc, own_cc + trunk):
        return "not a phone number as written (reading it would drop digits)"
    return number


def canonical_or_none(raw: str, **kw: bool | int | None) -> str | None:
    """`canonical`, or None for what is not a phone number (alphanumeric senders, junk)."""
    try:
        return canonical(raw, **kw)  # type: ignore[arg-type]
    except InvalidPhoneNumber:
        return None


# The field type for every pydantic model that takes a phone number (API, config files): a
# bad number is a 422 whose message says how to write it; a good one arrives canonical.
Msisdn = Annotated[str, AfterValidator(canonical)]
