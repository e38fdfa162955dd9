"""Routing units: first glob match in config order, default upstream per dialect, URL parsing."""

from __future__ import annotations

import pytest

from calo_addon.dialects import recognise
from calo_addon.keypool import KeyPool
from calo_addon.routing import Router, Upstream
from calo_addon.settings import RouteConfig, Settings

GEMINI = recognise("POST", "/v1beta/models/m:generateContent", None)
OPENAI = recognise("POST", "/v1/chat/completions", None)


def router(*routes: tuple[str, RouteConfig]) -> Router:
    return Router(
        Settings(api_keys=("g1", "g2"), base_url="http://base:7/prefix", model_routes=routes)
    )


ROUTES = (
    ("gpt-4o-mini", RouteConfig(url="http://mini:1", api_keys=("m",))),
    ("gpt-4*", RouteConfig(url="https://api.openai.com", api_keys=("o",))),
    ("*", RouteConfig(url="http://catch-all:3", auth="none")),
)


@pytest.mark.parametrize(
    ("model", "route", "host"),
    [
        ("gpt-4o-mini", "gpt-4o-mini", "mini"),
        ("gpt-4o", "gpt-4*", "api.openai.com"),
        ("gemini-2.5-flash", "*", "catch-all"),
    ],
)
def test_first_matching_glob_wins_in_order(model, route, host):
    upstream = router(*ROUTES).select(OPENAI, model)
    assert (upstream.name, upstream.host) == (route, host)


def test_glob_order_is_config_order_not_specificity():
    upstream = router(*reversed(ROUTES)).select(OPENAI, "gpt-4o-mini")
    assert upstream.name == "*"


def test_route_carries_its_auth_keys_and_timeout():
    r = router(
        ("gpt-*", RouteConfig(url="https://api.openai.com", api_keys=("o1", "o2"), timeout=12))
    )
    upstream = r.select(OPENAI, "gpt-4")
    assert (upstream.auth, upstream.timeout, upstream.is_google) == ("bearer", 12.0, False)
    assert [upstream.keys.next().secret for _ in range(3)] == ["o1", "o2", "o1"]


@pytest.mark.parametrize(("op", "auth"), [(GEMINI, "x-goog-api-key"), (OPENAI, "bearer")])
def test_unmatched_goes_to_base_url_with_the_dialects_auth(op, auth):
    upstream = router(*ROUTES[:2]).select(op, "gemini-2.5-flash")
    assert upstream.name == "default"
    assert (upstream.scheme, upstream.host, upstream.port, upstream.path_prefix) == (
        "http",
        "base",
        7,
        "/prefix",
    )
    assert upstream.auth == auth and upstream.is_google
    assert upstream.keys.next().secret == "g1"


def test_no_model_goes_to_the_default():
    assert router(*ROUTES).select(OPENAI, None).name == "default"


def test_gemini_and_openai_defaults_share_one_rotation():
    r = router()
    assert r.select(GEMINI, "m").keys.next().secret == "g1"
    assert r.select(OPENAI, "m").keys.next().secret == "g2"


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "prefix", "address"),
    [
        ("https://api.openai.com", "https", "api.openai.com", 443, "", "api.openai.com:443"),
        ("http://localhost", "http", "localhost", 80, "", "localhost:80"),
        ("http://127.0.0.1:9", "http", "127.0.0.1", 9, "", "127.0.0.1:9"),
        (
            "https://h.example:8443/openai/v1/",
            "https",
            "h.example",
            8443,
            "/openai/v1",
            "h.example:8443",
        ),
        ("http://h.example/base", "http", "h.example", 80, "/base", "h.example:80"),
    ],
)
def test_upstream_from_url(url, scheme, host, port, prefix, address):
    upstream = Upstream.from_url("r", url, "none", KeyPool("r", ()), 1.0)
    assert (upstream.scheme, upstream.host, upstream.port, upstream.path_prefix) == (
        scheme,
        host,
        port,
        prefix,
    )
    assert upstream.address == address


def test_route_addresses():
    assert router(*ROUTES).route_addresses() == {"mini:1", "api.openai.com:443", "catch-all:3"}
