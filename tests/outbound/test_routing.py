"""Routing rule and connections file (gateway/routing.py): pure, no sockets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.routing import (
    ConnectionsFileError,
    ConnectionSpec,
    NoRouteEver,
    NoRouteNow,
    Routed,
    Router,
    load_connections,
    parse_connections,
    parse_cost,
    specs_from_settings,
)


def spec(name: str, *, prefixes: tuple[str, ...] = (), cost: int = 0, weight: int = 1,
         ucs2: bool = True) -> ConnectionSpec:
    return ConnectionSpec(name, "127.0.0.1", 2775, "smsgw", "secret", prefixes=prefixes,
                          cost_millis=cost, weight=weight, ucs2=ucs2)


CHEAP = spec("cheap", prefixes=("86138",), cost=10)
DEAR = spec("dear", cost=50)
ALL = {"cheap", "dear"}


def test_cheapest_capable_wins_and_fails_over() -> None:
    r = Router([CHEAP, DEAR], seed=1)
    assert r.choose("8613800000001", False, ALL) == Routed(CHEAP)
    assert r.choose("8613900000001", False, ALL) == Routed(DEAR)
    assert r.choose("8613800000001", False, {"dear"}) == Routed(DEAR)  # cheap is down
    now = r.choose("8613800000001", False, set())
    assert isinstance(now, NoRouteNow) and "cheap" in now.reason


def test_no_configured_connection_serves() -> None:
    r = Router([CHEAP, spec("other", prefixes=("86139",))])
    never = r.choose("15551234567", False, {"cheap", "other"})
    assert isinstance(never, NoRouteEver)
    assert "no configured connection serves destination 15551234567" in never.reason


def test_ucs2_needs_a_ucs2_connection() -> None:
    gsm_only = spec("gsm", prefixes=("86",), cost=1, ucs2=False)
    r = Router([gsm_only, DEAR])
    assert r.choose("8613800000001", False, {"gsm", "dear"}) == Routed(gsm_only)
    assert r.choose("8613800000001", True, {"gsm", "dear"}) == Routed(DEAR)
    assert isinstance(r.choose("8613800000001", True, {"gsm"}), NoRouteNow)
    never = Router([gsm_only]).choose("8613800000001", True, {"gsm"})
    assert isinstance(never, NoRouteEver) and "UCS2" in never.reason


def test_weighted_choice_among_equal_cost_is_seeded() -> None:
    a, b, c = spec("a", cost=5, weight=3), spec("b", cost=5, weight=1), spec("c", cost=9)
    up = {"a", "b", "c"}

    def picks(seed: int) -> list[str]:
        r = Router([a, b, c], seed=seed)
        out = []
        for _ in range(4000):
            d = r.choose("8613800000001", False, up)
            assert isinstance(d, Routed)
            out.append(d.spec.name)
        return out

    first = picks(7)
    assert first == picks(7)  # same seed, same choices
    counts = Counter(first)
    assert counts["c"] == 0  # dearer: never while a or b is up
    assert 2.6 < counts["a"] / counts["b"] < 3.4


def test_longer_prefix_does_not_outrank_cost() -> None:
    specific = spec("specific", prefixes=("8613800",), cost=30)
    broad = spec("broad", prefixes=("86",), cost=20)
    r = Router([specific, broad])
    assert r.choose("8613800000001", False, {"specific", "broad"}) == Routed(broad)


def test_claim_filter() -> None:
    r = Router([CHEAP, DEAR])
    f = r.claim_filter("dear", ALL)
    assert f.serve is None and f.exclude == ("86138",) and not f.exclude_all
    assert f.unserved_except is None  # dear serves everything
    assert r.claim_filter("dear", {"dear"}).exclude == ()  # cheap down: dear takes all
    assert r.claim_filter("cheap", ALL).serve == ("86138",)
    both = Router([CHEAP, spec("x", prefixes=("1",), cost=99)])
    assert both.claim_filter("x", {"cheap", "x"}).unserved_except == ("1", "86138")
    everything_cheap = Router([spec("all", cost=1), DEAR])
    assert everything_cheap.claim_filter("dear", {"all", "dear"}).exclude_all


def test_cost_parsing() -> None:
    assert parse_cost("0.045") == 45
    assert parse_cost(0.05) == 50
    assert parse_cost(2) == 2000
    for bad in ("abc", "-1", "0.0001", True, "nan"):
        with pytest.raises(ConnectionsFileError):
            parse_cost(bad)


GOOD = """
connections:
  - name: cheap
    host: 127.0.0.1
    port: 2775
    system_id: smsgw
    password: secret
    window: 20
    tps: 50
    prefixes: ["86138", "+86139"]
    ucs2: false
    cost_per_part: "0.012"
    weight: 2
  - {name: dear, host: smsc.example, port: 2776, cost_per_part: 0.05}
"""


def test_load_connections_file(tmp_path: Path) -> None:
    path = tmp_path / "connections.yaml"
    path.write_text(GOOD)
    cheap, dear = load_connections(path)
    assert cheap == ConnectionSpec("cheap", "127.0.0.1", 2775, "smsgw", "secret", "", 20, 50.0,
                                   ("86138", "86139"), False, 12, 2)
    assert dear.prefixes == () and dear.ucs2 and dear.cost_millis == 50 and dear.window == 10
    settings = Settings(connections_file=str(path))
    assert [s.name for s in specs_from_settings(settings)] == ["cheap", "dear"]


def test_default_is_the_single_settings_connection() -> None:
    (only,) = specs_from_settings(Settings(smsc_host="10.0.0.1", smsc_port=2800, window=7))
    assert (only.name, only.host, only.port, only.window, only.prefixes) == (
        "smsc1", "10.0.0.1", 2800, 7, ())


@pytest.mark.parametrize(("data", "message"), [
    ([{"name": "a", "host": "h", "port": 1, "colour": "red"}], "unknown key(s) ['colour']"),
    ([{"name": "a", "port": 1}], "'a': host is required"),
    ([{"name": "a", "host": "h", "port": 1, "prefixes": ["86-138"]}], "bad prefix '86-138'"),
    ([{"name": "a", "host": "h", "port": 1}, {"name": "a", "host": "g", "port": 2}],
     "duplicate connection name 'a'"),
    ([{"name": "a", "host": "h", "port": 70000}], "port 70000 outside"),
    ([{"name": "a", "host": "h", "port": 1, "tps": -1}], "tps must be"),
    ([{"name": "a", "host": "h", "port": 1, "ucs2": "yes"}], "ucs2 must be true or false"),
    ({"conections": []}, "unknown top-level key"),
    ([], "non-empty list"),
])
def test_bad_files_are_named(data: object, message: str) -> None:
    with pytest.raises(ConnectionsFileError) as exc:
        parse_connections(data, source="conn.yaml")
    assert message in str(exc.value)
    assert "conn.yaml" in str(exc.value)


def test_unreadable_or_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConnectionsFileError, match="cannot read"):
        load_connections(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("connections: [\n")
    with pytest.raises(ConnectionsFileError, match="not valid YAML"):
        load_connections(bad)


def test_connection_tls_options() -> None:
    specs = parse_connections([
        {"name": "agg", "host": "smsc.example", "port": 3550, "tls": True,
         "tls_ca": "/etc/smsgw/agg-ca.pem"},
        {"name": "plain", "host": "10.0.0.2", "port": 2775}])
    assert (specs[0].tls, specs[0].tls_ca, specs[0].tls_verify) == (
        True, "/etc/smsgw/agg-ca.pem", True)
    assert (specs[1].tls, specs[1].tls_ca) == (False, None)
    with pytest.raises(ConnectionsFileError, match="tls must be true or false"):
        parse_connections([{"name": "x", "host": "h", "port": 1, "tls": "yes"}])
    single = specs_from_settings(Settings(smsc_host="h", smsc_tls=True, smsc_tls_verify=False))
    assert (single[0].tls, single[0].tls_verify) == (True, False)
