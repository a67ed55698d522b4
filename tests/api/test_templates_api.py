"""Reply templates overridden by operators: checked on save (422 naming the fault), applied
to the next reply an SMS gets through the simulator without a restart, reset, audited."""

from __future__ import annotations

import pytest

from commands.templates import TemplateError, check_override, table
from gateway.app import Gateway
from tests.api.conftest import SHORT_CODE, Api, assert_error

PHONE = "8613800000077"
KEY = "err_unknown_command"  # "unknown command '{word}'"


async def sms(gw: Gateway, text: str) -> str:
    before = len(gw.simulator.handset(PHONE).inbox)
    await gw.simulator.inject_mo(PHONE, SHORT_CODE, text)
    inbox = await gw.simulator.wait_for_inbox(PHONE, before + 1, timeout=10)
    return inbox[before].text


async def test_override_checked_applied_reset_and_audited(gw: Gateway, api: Api) -> None:
    assert "unknown command 'XYZZY'" in await sms(gw, "XYZZY 1")
    err = assert_error(await api.operator.put(f"/templates/en/{KEY}",
                                              json={"text": "no such command '{wrd}'"}),
                       422, "invalid_template")
    assert "{wrd}" in err["message"] and "{word}" in err["message"], err
    assert_error(await api.operator.put("/templates/en/no_such_key", json={"text": "x"}), 404)
    assert_error(await api.viewer.put(f"/templates/en/{KEY}", json={"text": "{word}"}), 403)

    r = await api.operator.put(f"/templates/en/{KEY}", json={"text": "no such command '{word}'"})
    assert r.status_code == 200, r.text
    assert r.json()["overridden"] and r.json()["updated_by"].startswith("test-operator")
    assert "no such command 'PLUGH'" in await sms(gw, "PLUGH 1")  # no restart
    assert (await api.viewer.get("/templates/en")).json()[KEY] == "no such command '{word}'"

    r = await api.operator.delete(f"/templates/en/{KEY}")
    assert r.status_code == 200 and not r.json()["overridden"]
    assert r.json()["text"] == table("en")[KEY]
    assert "unknown command 'FROBOZZ'" in await sms(gw, "FROBOZZ 1")

    rows = await gw.store.read(lambda c: c.exec_driver_sql(
        "SELECT resource, resource_id FROM audit_log WHERE resource = 'template'").all())
    assert [tuple(r) for r in rows] == [("template", f"en/{KEY}")] * 2


@pytest.mark.parametrize(("lang", "key", "text", "fault"), [
    ("en", KEY, "unknown command", "missing placeholder(s) {word}"),
    ("en", KEY, "unknown {word} {extra}", "unknown placeholder(s) {extra}"),
    ("en", KEY, "unknown {word", "does not parse"),
    ("en", "e02_invalid_serial", "bad {serials}, {new} new, {dup:duplicate|}", "plural {dup"),
    ("zh", KEY, "unknown command {word}", "English word(s) in a Chinese template: unknown"),
    ("fr", KEY, "{word}", "unknown language"),
])
def test_check_override_names_the_fault(lang: str, key: str, text: str, fault: str) -> None:
    with pytest.raises(TemplateError) as exc:
        check_override(lang, key, text)
    assert fault in str(exc.value)


def test_check_override_accepts_a_good_text() -> None:
    text = "serial {serials} refused ({new} new, {dup:copy|copies})"
    assert check_override("en", "e02_invalid_serial", text) == text
    assert check_override("zh", KEY, "没有{word}这个指令") == "没有{word}这个指令"
