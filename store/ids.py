"""SMSC message id normalisation.

SMSCs disagree on how they print the id of a submitted message: some answer submit_sm_resp
with a hex id and quote it in decimal in the delivery receipt (or the other way round), some
pad with zeros, some change case. Ids are stored normalised and receipts are matched against
every plausible spelling.
"""

from __future__ import annotations

import string

_HEX = frozenset(string.hexdigits)


def normalise_smsc_id(s: str) -> str:
    """Strip whitespace, lowercase and drop leading zeros (keeping a lone "0")."""
    s = s.strip().lower()
    stripped = s.lstrip("0")
    if not stripped and s:
        return "0"
    return stripped


def smsc_id_candidates(s: str) -> list[str]:
    """The normalised id plus its decimal<->hex reinterpretations, without duplicates.

    A decimal-looking id may really be hex (and vice versa), so both readings are offered;
    the first element is always the normalised id itself.
    """
    norm = normalise_smsc_id(s)
    out = [norm]
    if not norm:
        return out
    if norm.isdecimal() and norm.isascii():
        out.append(format(int(norm), "x"))
    if all(c in _HEX for c in norm):
        out.append(str(int(norm, 16)))
    # Dedupe keeping order ("0".."9" read the same in both bases).
    return list(dict.fromkeys(out))
