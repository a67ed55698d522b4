"""The Idempotency-Key header of POST /messages and /messages/bulk.

Follows the IETF draft "The Idempotency-Key HTTP Header Field"
(draft-ietf-httpapi-idempotency-key-header, §2 and §2.7 "Error Scenarios"):
  * the first request with a key makes the change and its answer (status and body) is
    stored IN THE SAME TRANSACTION as the change, so a client whose answer was lost (a crash,
    a dropped connection) retries and gets that answer, with nothing created twice;
  * the same key with a different request body is 422 Unprocessable Content ("reuse of an
    idempotency key with a different payload", §2.7), code `idempotency_key_reused`;
  * two requests with one key at the same moment: the second finds the first's stored answer
    (the single writer serialises them); across instances the loser is 409 Conflict (§2.7,
    "a request is outstanding"), code `idempotency_key_in_use`, and may retry.
Keys are scoped per API key (two clients may pick the same key) and expire after
SMSGW_IDEMPOTENCY_TTL seconds (default 24 h). A replayed answer carries the header
`Idempotent-Replayed: true`. Requests refused before any change (a malformed body, no valid
item) store nothing: repeating them gives the same refusal.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.engine import Connection

from gateway.api.deps import Actor
from gateway.api.errors import ApiError
from store import idempotency

REPLAYED_HEADER = "Idempotent-Replayed"

IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=255,
    description="any unique string (e.g. a UUID): a retry with the same key and body gets "
                "the first answer and creates nothing new (kept 24 h, per API key)")]


class KeyInUse(Exception):
    """Another instance stored an answer under this key while we worked: roll back."""


@dataclass(frozen=True, slots=True)
class Replay:
    status_code: int
    body: str

    def response(self) -> JSONResponse:
        return JSONResponse(json.loads(self.body), status_code=self.status_code,
                            headers={REPLAYED_HEADER: "true"})


@dataclass(frozen=True, slots=True)
class Claim:
    """One keyed request: where its answer lives and what body it was for."""

    scope: str
    key: str
    fingerprint: str
    ttl: timedelta

    @classmethod
    def of(cls, actor: Actor, key: str | None, route: str, body: BaseModel,
           ttl_seconds: float) -> Claim | None:
        if key is None:
            return None
        canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True,
                               separators=(",", ":"))
        digest = hashlib.sha256(f"{route}\n{canonical}".encode()).hexdigest()
        scope = f"key:{actor.key_id}" if actor.key_id is not None else "insecure-dev"
        return cls(scope, key, digest, timedelta(seconds=ttl_seconds))

    def replay(self, conn: Connection, now: datetime) -> Replay | None:
        """The stored first answer, or None for a new key; 422 for a different body."""
        found = idempotency.find(conn, self.scope, self.key, now=now)
        if found is None:
            return None
        if found.fingerprint != self.fingerprint:
            raise ApiError(422, "idempotency_key_reused",
                           f"Idempotency-Key {self.key!r} was used for a different request "
                           "body; use a new key for a new request")
        return Replay(found.status_code, found.response)

    def save(self, conn: Connection, status_code: int, answer: BaseModel,
             now: datetime) -> None:
        if not idempotency.save(conn, self.scope, self.key, fingerprint=self.fingerprint,
                                status_code=status_code, response=answer.model_dump_json(),
                                now=now, ttl=self.ttl):
            raise KeyInUse(self.key)


def in_use(key: str) -> ApiError:
    return ApiError(409, "idempotency_key_in_use",
                    f"a request with Idempotency-Key {key!r} is being processed; retry "
                    "shortly to get its answer")
