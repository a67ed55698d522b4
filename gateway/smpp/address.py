"""TON/NPI (SMPP 3.4 §5.2.5-5.2.6) of the addresses we put in a PDU.

Left at 0/0 ("unknown"), an SMSC has to guess how to read ``8613800000001``; some read it as
a national number and misroute or refuse it. A phone we send to is in the one canonical form
(common/phones.py: E.164 digits, country code first), so it goes out as international/ISDN.
A name ("Shop") is alphanumeric. Other digits - a service number such as ``10690`` or a
Chinese SP number of up to 20 digits, which is not E.164 - stay "unknown", read by the SMSC
as configured for the account: claiming a type for them would be a guess.
"""

from __future__ import annotations

UNKNOWN = (0, 0)
INTERNATIONAL = (1, 1)  # international number, ISDN (E.164) plan
NETWORK_SPECIFIC = (3, 1)  # a short code of the network, ISDN plan
ALPHANUMERIC = (5, 0)


def ton_npi(addr: str, *, numeric: tuple[int, int] = UNKNOWN) -> tuple[int, int]:
    """ALPHANUMERIC for a name; for digits (a leading '+' allowed), ``numeric``: what the
    caller knows them to be (INTERNATIONAL for a canonical phone)."""
    digits = addr.removeprefix("+")
    if not digits:
        return UNKNOWN
    if not (digits.isascii() and digits.isdigit()):
        return ALPHANUMERIC
    return numeric
