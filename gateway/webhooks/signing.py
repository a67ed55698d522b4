"""Webhook signatures: HMAC-SHA256 over ``timestamp + "." + body`` with the target's secret.

Headers on every callback (docs/webhooks.md shows a receiver verifying them):

- ``X-Smsgw-Timestamp``: Unix seconds when this attempt was signed (each retry re-signs);
- ``X-Smsgw-Signature``: ``v1=<hex digest>``;
- ``Idempotency-Key``: the same on every attempt of one callback (the receiver dedups on it).

For the GET form the signed "body" is the request's query string (what follows ``?``).
Stripe and Slack sign the same way (timestamp and body), which stops a replay of an old
request once the receiver checks the timestamp against a tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Smsgw-Signature"
TIMESTAMP_HEADER = "X-Smsgw-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DELIVERY_HEADER = "X-Smsgw-Delivery"
EVENT_HEADER = "X-Smsgw-Event"
VERSION = "v1"
DEFAULT_TOLERANCE = 300  # seconds a receiver should accept between our clock and its own


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{VERSION}={digest.hexdigest()}"


def verify(secret: str, timestamp: str | int, body: bytes, signature: str, *,
           tolerance: float = DEFAULT_TOLERANCE, now: float | None = None) -> bool:
    """What a receiver does (also used by our tests as the reference)."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)
