"""Auth (keys, roles) and the error shape, limits and OpenAPI (tests/api/test_auth_security.py:
no keyless access, insecure-dev, throttling)."""

from __future__ import annotations

import httpx

from tests.api.conftest import Api, assert_error


async def test_health_is_open_and_everything_else_needs_a_key(api: Api) -> None:
    assert (await api.anon.get("/healthz")).json() == {"status": "ok"}
    assert (await api.anon.get("/readyz")).status_code == 200
    assert "smsgw_queue_depth" in (await api.anon.get("/metrics")).text
    for method, path in (("GET", "/accounts"), ("GET", "/messages"), ("POST", "/messages"),
                         ("GET", "/stats"), ("GET", "/api-keys"), ("POST", "/events")):
        err = assert_error(await api.anon.request(method, path), 401, "unauthorized")
        assert "smsgw api-key create" in err["message"]
    bad = httpx.AsyncClient(base_url=api.base, headers={"Authorization": "Bearer nope"})
    async with bad:
        assert_error(await bad.get("/accounts"), 401, "invalid_key")
    # X-API-Key works as well as Bearer.
    async with httpx.AsyncClient(base_url=api.base,
                                 headers={"X-API-Key": api.keys["viewer"]}) as c:
        assert (await c.get("/accounts")).status_code == 200


async def test_roles(api: Api) -> None:
    msg = {"to": "8613800000009", "text": "hi"}
    assert (await api.viewer.get("/messages")).status_code == 200
    assert_error(await api.viewer.post("/messages", json=msg), 403, "forbidden")
    assert_error(await api.viewer.post("/products", json={}), 403)
    assert (await api.operator.post("/messages", json=msg)).status_code == 202
    # API keys: admin only, reads included.
    assert_error(await api.operator.get("/api-keys"), 403, "forbidden")
    assert_error(await api.operator.post("/api-keys", json={"name": "x", "role": "viewer"}),
                 403)
    assert_error(await api.viewer.get("/api-keys"), 403)
    r = await api.admin.post("/api-keys", json={"name": "ci", "role": "viewer"})
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["key"].startswith(new["prefix"]) and new["role"] == "viewer"
    listed = (await api.admin.get("/api-keys")).json()
    assert {k["name"] for k in listed} >= {"test-admin", "ci"}
    assert all("key_hash" not in k and "key" not in k for k in listed)
    async with httpx.AsyncClient(base_url=api.base,
                                 headers={"Authorization": f"Bearer {new['key']}"}) as c:
        assert (await c.get("/stats")).status_code == 200
        assert (await api.admin.delete(f"/api-keys/{new['id']}")).status_code == 200
        assert_error(await c.get("/stats"), 401, "invalid_key")
    assert_error(await api.admin.delete(f"/api-keys/{api.key_ids['admin']}"), 409, "own_key")
    audit = (await api.admin.get("/audit-log", params={"resource": "api_key"})).json()
    assert [e["method"] for e in audit["items"]][:2] == ["DELETE", "POST"]
    assert audit["items"][0]["before"]["revoked_at"] is None
    assert audit["items"][0]["after"]["revoked_at"] is not None


async def test_error_shape_everywhere(api: Api) -> None:
    assert_error(await api.admin.get("/no/such/thing"), 404, "not_found")
    assert_error(await api.admin.delete("/stats"), 405, "method_not_allowed")
    assert_error(await api.admin.get("/accounts/999999"), 404, "not_found")
    err = assert_error(await api.admin.post("/messages", json={"to": "x", "text": ""}), 422,
                       "validation_error")
    assert {tuple(d["loc"]) for d in err["details"]} == {("body", "to"), ("body", "text")}
    assert_error(await api.admin.post("/messages", content=b"{not json",
                                      headers={"content-type": "application/json"}), 422)
    assert_error(await api.admin.get("/messages", params={"limit": 501}), 422)
    assert_error(await api.admin.get("/messages", params={"cursor": "garbage!"}), 400,
                 "bad_cursor")
    assert_error(await api.admin.get("/accounts/99999999999999999999"), 422)
    big = {"to": "8613800000001", "text": "x" * (1024 * 1024 + 1)}
    assert_error(await api.admin.post("/messages", json=big), 413, "payload_too_large")
    assert_error(await api.admin.post("/messages", json={"to": "8613800000001",
                                                         "text": "a\u0000b"}), 400)
    assert_error(await api.admin.get("/accounts", params={"q": "a\x00"}), 400)


async def test_openapi_and_docs(api: Api) -> None:
    schema = (await api.anon.get("/openapi.json")).json()
    assert "/accounts/import" in schema["paths"] and "/orders/{order_id}/approve" in schema["paths"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    resp_422 = schema["paths"]["/messages"]["post"]["responses"]["422"]
    assert resp_422["content"]["application/json"]["schema"]["$ref"].endswith("ErrorResponse")
    assert (await api.anon.get("/docs")).status_code == 200
