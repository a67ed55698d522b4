"""Property-based run of the OpenAPI schema against the live server (schemathesis): no 500,
responses match their declared schemas, status codes and content types.

Each operation gets a bounded number of examples (no shrinking), so the run stays well under
a minute. It runs on SQLite only: the API code is the same on both stores, and the
PostgreSQL path of every query is covered by the other tests of this folder.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.app import Gateway  # noqa: E402
from tests.api.conftest import Api  # noqa: E402

EXAMPLES = 12
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance,
          content_type_conformance]


def _run(schema_dict: dict[str, Any], base: str, key: str) -> list[str]:
    schema = schemathesis.openapi.from_dict(schema_dict)
    headers = {"Authorization": f"Bearer {key}"}
    failures: list[str] = []
    for result in schema.get_all_operations():
        failures += _run_operation(result.ok(), base, headers)
    return failures


CALLS: list[int] = []


def _run_operation(operation: Any, base: str, headers: dict[str, str]) -> list[str]:
    failures: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        response = case.call(base_url=base, headers=headers, timeout=20)
        CALLS.append(response.status_code)
        case.validate_response(response, checks=CHECKS)

    try:
        check()
    except Exception as exc:  # collect every operation's failure, not only the first
        failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:2000])
    return failures


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_openapi_schema_holds(gw: Gateway, api: Api, db_url: str) -> None:
    async with httpx.AsyncClient(base_url=api.base) as c:
        schema = (await c.get("/openapi.json")).json()
    started = time.monotonic()
    failures = await asyncio.to_thread(_run, schema, api.base, api.keys["admin"])
    assert not failures, "\n\n".join(failures)
    assert len(CALLS) > 3 * len(schema["paths"]), len(CALLS)  # it did run
    assert 500 not in CALLS
    assert time.monotonic() - started < 60
