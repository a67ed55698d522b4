"""The templates page over plain HTTP: an operator edits a reply template (the check's
message shown on a bad one), sees it marked edited, and resets it to the default."""

from __future__ import annotations

import httpx

from commands.templates import table
from gateway.app import Gateway
from tests.console.conftest import form_token, login

KEY = "err_unknown_command"


async def test_edit_template_form_validation_and_reset(console_gw: Gateway,
                                                       http: httpx.AsyncClient) -> None:
    assert (await login(http, "operator")).status_code == 303
    page = await http.get(f"/ui/templates?edit=en/{KEY}")
    assert page.status_code == 200 and 'id="template-form"' in page.text
    token = form_token(page.text)

    bad = await http.post(f"/ui/templates/en/{KEY}",
                          data={"text": "no such command {cmd}", "csrf": token})
    assert bad.status_code == 422
    assert 'id="error"' in bad.text and "{cmd}" in bad.text  # the fault, named
    assert "no such command {cmd}" in bad.text  # the operator's text kept in the form

    ok = await http.post(f"/ui/templates/en/{KEY}",
                         data={"text": "no such command '{word}'", "csrf": token})
    assert ok.status_code == 303, ok.text
    listed = await http.get(ok.headers["location"])
    assert "no such command &#39;{word}&#39;" in listed.text and "saved" in listed.text

    page = await http.get(f"/ui/templates?edit=en/{KEY}")
    assert 'id="template-reset"' in page.text
    reset = await http.post(f"/ui/templates/en/{KEY}/reset", data={"csrf": token})
    assert reset.status_code == 303
    page = await http.get(f"/ui/templates?edit=en/{KEY}")
    assert 'id="template-reset"' not in page.text
    assert "no such command" not in page.text
    assert table("en")[KEY].replace("'", "&#39;") in page.text


async def test_viewer_cannot_edit_a_template(console_gw: Gateway,
                                            http: httpx.AsyncClient) -> None:
    assert (await login(http, "viewer")).status_code == 303
    page = await http.get("/ui/templates")
    assert page.status_code == 200 and "?edit=" not in page.text
    r = await http.post(f"/ui/templates/en/{KEY}",
                        data={"text": "x {word}", "csrf": form_token(page.text)})
    assert r.status_code == 403
