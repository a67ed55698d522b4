"""The admin API takes a phone number in any written form and keeps the one canonical form
(common.phones.Msisdn): accounts, CSV import, subscriptions, the per-phone interaction log."""

from __future__ import annotations

from urllib.parse import quote

from gateway.app import Gateway
from tests.api.conftest import Api, assert_error
from tests.test_e2e import wait_until


async def test_account_phone_any_form_stored_canonical(api: Api) -> None:
    r = await api.operator.post("/accounts", json={
        "account_no": "P001", "role": "retailer", "name": "Dashes", "phone": "+86 138-0000-0011"})
    assert r.status_code == 201, r.text
    assert r.json()["phone"] == "8613800000011"
    # The same phone in another form is taken, and found by any form.
    assert_error(await api.operator.post("/accounts", json={
        "account_no": "P002", "role": "retailer", "name": "Same", "phone": "13800000011"}),
        409, "phone_taken")
    for form in ("13800000011", "+8613800000011", "0086 138 0000 0011"):
        found = (await api.viewer.get("/accounts", params={"phone": form})).json()["items"]
        assert [a["account_no"] for a in found] == ["P001"], form
    r = await api.operator.patch(f"/accounts/{r.json()['id']}",
                                 json={"phone": "+86 (138) 0000 0012"})
    assert r.json()["phone"] == "8613800000012"


async def test_bad_phone_is_422_saying_how_to_write_it(api: Api) -> None:
    for bad in ("12", "abc", "10086"):
        err = assert_error(await api.operator.post("/accounts", json={
            "account_no": "P009", "role": "retailer", "name": "Bad", "phone": bad}), 422)
        assert "phone" in err["message"] and "13800000001" in err["message"], err
    assert_error(await api.viewer.get("/accounts", params={"phone": "12"}), 422)
    assert_error(await api.viewer.get("/phones/12/interactions"), 422)


async def test_csv_import_reads_any_form_and_reports_bad_numbers_per_row(api: Api) -> None:
    csv = (
        "account_no,role,name,phone\n"
        "Q001,retailer,Plus,+86 138-0000-0021\n"
        "Q002,retailer,National repeat,13800000021\n"  # line 3: the same phone as line 2
        "Q003,retailer,Too short,12\n"                 # line 4: not a phone
        "Q004,retailer,Foreign,+44 7911 123456\n"
    )
    report = (await api.operator.post("/accounts/import", content=csv)).json()
    assert report["imported"] == 2, report
    by_row = {e["row"]: e["errors"] for e in report["errors"]}
    assert set(by_row) == {3, 4}
    assert any("8613800000021 repeats row 2" in m for m in by_row[3]), by_row
    assert any(m.startswith("phone") and "too short" in m for m in by_row[4]), by_row
    got = (await api.viewer.get("/accounts", params={"q": "Q00"})).json()["items"]
    assert sorted(a["phone"] for a in got) == ["447911123456", "8613800000021"]


async def test_subscriptions_take_any_form(api: Api) -> None:
    await api.operator.post("/topics", json={"code": "PH", "name_zh": "号", "name_en": "Ph"})
    r = await api.operator.post("/topics/PH/subscriptions", json={"phone": "+86 138-0000-0031"})
    assert r.status_code in (200, 201), r.text
    subs = (await api.viewer.get("/topics/PH/subscriptions")).json()
    items = subs["items"] if isinstance(subs, dict) else subs
    assert [s["phone"] for s in items] == ["8613800000031"]
    r = await api.operator.delete("/topics/PH/subscriptions/13800000031")
    assert r.status_code == 200 and r.json()["phone"] == "8613800000031", r.text
    assert_error(await api.operator.post("/topics/PH/subscriptions", json={"phone": "abc"}), 422)


async def test_interaction_log_found_by_any_form(gw: Gateway, api: Api) -> None:
    phone = "8613800000041"
    await gw.simulator.inject_mo(phone, "10690", "HELP")

    async def answered() -> bool:
        r = await api.viewer.get(f"/phones/{phone}/interactions")
        return len(r.json()["items"]) >= 2

    await wait_until(answered)
    def rows(body: dict) -> list[tuple[str, int]]:  # (a status may move on meanwhile)
        return [(x["direction"], x["id"]) for x in body["items"]]

    canonical = (await api.viewer.get(f"/phones/{phone}/interactions")).json()
    assert canonical["phone"] == phone and rows(canonical) == [("in", 1), ("out", 1)]
    for form in ("+8613800000041", "13800000041", "+86 138-0000-0041", "008613800000041"):
        r = await api.viewer.get(f"/phones/{quote(form)}/interactions")
        assert r.status_code == 200, (form, r.text)
        assert r.json()["phone"] == phone and rows(r.json()) == rows(canonical), form
