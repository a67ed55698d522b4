"""Campaigns, polls and surveys in the console over plain HTTP: created through the forms
(the API's checks shown in the form), roles, the results page, the CSV, voters as groups."""

from __future__ import annotations

import re

import httpx

from gateway.app import Gateway
from store import admin
from store import engagement as st
from tests.console.conftest import form_token, login

POLL_FORM = {"name": "Delivery feedback", "keyword": "DLV", "lang": "en",
             "question": "How was the delivery?",
             "options": "Good = GOOD, 好\nAverage = OK\nBad = BAD, 差",
             "counts": "last", "confirm": "on", "target_kind": "", "open_to_all": "on"}


async def _create(http: httpx.AsyncClient, kind: str, form: dict[str, str]) -> httpx.Response:
    page = await http.get(f"/ui/engagements/new?kind={kind}")
    assert page.status_code == 200, page.text[:300]
    return await http.post(f"/ui/engagements/new/{kind}",
                           data={**form, "csrf": form_token(page.text)})


def _id(created: httpx.Response) -> int:
    assert created.status_code == 303, created.text[:1000]
    found = re.search(r"/ui/engagements/(\d+)", created.headers["location"])
    assert found, created.headers["location"]
    return int(found.group(1))


async def test_poll_created_through_the_form_runs_and_exports(
        console_gw: Gateway, http: httpx.AsyncClient) -> None:
    await login(http, "operator")
    eid = _id(await _create(http, "poll", POLL_FORM))
    e = await console_gw.store.read(lambda c: st.get(c, eid))
    assert e is not None and e["kind"] == "poll" and e["keyword"] == "DLV"
    assert e["open_to_all"] and e["config"]["options"][0]["keywords"] == ["GOOD", "好"]
    page = await http.get(f"/ui/engagements/{eid}")
    assert page.status_code == 200 and 'id="start"' in page.text and "DLV" in page.text
    r = await http.post(f"/ui/engagements/{eid}/start", data={"csrf": form_token(page.text)})
    assert r.status_code == 303, r.text[:500]
    await console_gw.simulator.inject_mo("8613700000031", "10690", "DLV GOOD")
    await console_gw.simulator.wait_for_inbox("8613700000031", 1, timeout=10)
    body = (await http.get(f"/ui/engagements/{eid}/results")).text
    assert re.search(r'data-option="1"><td>1\. Good</td><td class="votes">1<', body), body
    assert "<svg" in body and 'data-status="running"' in body
    listing = (await http.get("/ui/engagements")).text
    assert "Delivery feedback" in listing and "DLV" in listing
    csv = await http.get(f"/ui/engagements/{eid}/export.csv")
    assert csv.status_code == 200 and csv.content.startswith(b"\xef\xbb\xbf")
    assert csv.text.lstrip("\ufeff").splitlines()[1].startswith("8613700000031,")
    # Voters of each option saved as groups "DLV-<n>" for a follow-up broadcast.
    page = await http.get(f"/ui/engagements/{eid}")
    saved = await http.post(f"/ui/engagements/{eid}/groups",
                            data={"csrf": form_token(page.text)})
    assert saved.status_code == 200 and "DLV-1" in saved.text and "8613700000031" in saved.text
    r = await http.post(f"/ui/engagements/{eid}/close", data={"csrf": form_token(page.text)})
    assert r.status_code == 303
    assert (await console_gw.store.read(lambda c: st.get(c, eid)))["status"] == "closed"


async def test_the_apis_validation_errors_are_shown_in_the_form(
        console_gw: Gateway, http: httpx.AsyncClient) -> None:
    await login(http, "operator")
    before = await console_gw.store.read(lambda c: len(st.list_all(c)))
    # A protocol command as keyword: the API's own message, and what was typed is kept.
    r = await _create(http, "poll", {**POLL_FORM, "keyword": "BAL"})
    assert r.status_code == 422 and "protocol command" in r.text
    assert 'value="Delivery feedback"' in r.text and "Average = OK" in r.text
    r = await _create(http, "poll", {**POLL_FORM, "options": "Only one"})
    assert r.status_code == 422 and "poll.options" in r.text and "at least 2" in r.text
    r = await _create(http, "poll", {**POLL_FORM, "open_to_all": ""})
    assert r.status_code == 422 and "open_to_all" in r.text
    r = await _create(http, "survey", {"name": "s", "keyword": "SRV", "open_to_all": "on",
                                       "q1_id": "n", "q1_type": "number", "q1_text": "How many?",
                                       "q1_min": "9", "q1_max": "1", "final": "Thanks"})
    assert r.status_code == 422 and "min 9 is over max 1" in r.text
    r = await _create(http, "campaign", {"name": "c", "text": "hi", "target_kind": "group",
                                         "target": "nope"})
    assert r.status_code == 422 and "no group &#39;nope&#39;" in r.text, r.text[-3000:]
    assert await console_gw.store.read(lambda c: len(st.list_all(c))) == before


async def test_survey_and_campaign_created_through_the_form(
        console_gw: Gateway, http: httpx.AsyncClient) -> None:
    await login(http, "admin")
    sid = _id(await _create(http, "survey", {
        "name": "Week", "keyword": "WEEK", "lang": "en", "open_to_all": "on",
        "q1_id": "cartons", "q1_type": "number", "q1_text": "Cartons?", "q1_min": "0",
        "q1_max": "500", "q2_id": "brand", "q2_type": "choice", "q2_text": "Best brand?",
        "q2_options": "中华 = ZH; 玉溪 = YX", "q3_id": "ok", "q3_type": "yesno",
        "q3_text": "All fine?", "q4_id": "when", "q4_type": "date", "q4_text": "Next visit?",
        "q5_id": "note", "q5_type": "text", "q5_text": "Anything else?", "final": "Thanks",
        "timeout_minutes": "60"}))
    e = await console_gw.store.read(lambda c: st.get(c, sid))
    questions = e["config"]["questions"]
    assert [q["type"] for q in questions] == ["number", "choice", "yesno", "date", "text"]
    assert questions[0]["max"] == 500 and questions[1]["options"][1]["keywords"] == ["YX"]
    assert "Responses" in (await http.get(f"/ui/engagements/{sid}")).text
    cid = _id(await _create(http, "campaign", {
        "name": "Promo", "goal": "orders of 1005", "text": "1005 on offer",
        "target_kind": "list", "target": "8613700000041 8613700000042",
        "reply_window_minutes": "60"}))
    page = await http.get(f"/ui/engagements/{cid}")
    assert "orders of 1005" in page.text and "export.csv" not in page.text
    r = await http.post(f"/ui/engagements/{cid}/start", data={"csrf": form_token(page.text)})
    assert r.status_code == 303
    await console_gw.simulator.wait_for_inbox("8613700000042", 1, timeout=10)
    body = (await http.get(f"/ui/engagements/{cid}/results")).text
    assert re.search(r"<tr><td>2</td>", body), body  # two recipients
    # Starting it twice: the API's 409 is shown on the page.
    r = await http.post(f"/ui/engagements/{cid}/start", data={"csrf": form_token(page.text)})
    assert r.status_code == 409 and "cannot start" in r.text


async def test_viewer_sees_results_but_cannot_start_or_create(
        console_gw: Gateway, http: httpx.AsyncClient) -> None:
    await login(http, "viewer")
    sat = await console_gw.store.read(lambda c: st.by_keyword(c, "SAT"))  # demo poll
    page = await http.get(f"/ui/engagements/{sat.id}")
    assert page.status_code == 200 and 'id="pause"' not in page.text and "Tallies" in page.text
    assert 'id="new-poll"' not in (await http.get("/ui/engagements")).text
    token = form_token(page.text)
    r = await http.post(f"/ui/engagements/{sat.id}/pause", data={"csrf": token})
    assert r.status_code == 403 and "viewer" in r.text
    r = await http.post("/ui/engagements/new/poll", data={**POLL_FORM, "csrf": token})
    assert r.status_code == 403
    r = await http.post(f"/ui/engagements/{sat.id}/close", data={"csrf": "forged"})
    assert r.status_code == 403
    assert (await console_gw.store.read(lambda c: st.get(c, sat.id)))["status"] == "running"
    assert not await console_gw.store.read(lambda c: admin.list_audit(c, resource="poll"))
    csv = await http.get(f"/ui/engagements/{sat.id}/export.csv")  # reading is a viewer's
    assert csv.status_code == 200 and csv.content.startswith(b"\xef\xbb\xbf")
