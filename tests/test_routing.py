"""Routing units: first glob match in config order, default upstream per dialect, URL parsing."""

from __future__ import annotations

import pytest

from calo_addon.dialects import Refusal, recognise
from calo_addon.keypool import KeyPool
from calo_addon.routing import Router, Upstream, normal_host
from calo_addon.settings import Auth, AWSCredentials, RouteConfig, Settings

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
    assert (upstream.auth.kind, upstream.timeout, upstream.api.name) == ("auto", 12.0, "openai")
    assert upstream.credential_style(upstream.api) == "bearer"
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
    assert upstream.api.name == "gemini"  # base_url is Gemini's by definition
    assert upstream.credential_style(upstream.wire(op.dialect)) == auth
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
    upstream = Upstream.from_url(
        "r",
        url,
        auth=Auth("none"),
        keys=KeyPool("r", ()),
        timeout=1.0,
        connect_timeout=1.0,
        api=OPENAI.dialect,
    )
    assert (upstream.scheme, upstream.host, upstream.port, upstream.path_prefix) == (
        scheme,
        host,
        port,
        prefix,
    )
    assert upstream.address == address


def test_route_addresses():
    assert router(*ROUTES).route_addresses() == {"mini:1", "api.openai.com:443", "catch-all:3"}


@pytest.mark.parametrize(
    ("route", "api"),
    [
        (RouteConfig(url="https://generativelanguage.googleapis.com", api_keys=("g",)), "gemini"),
        (RouteConfig(url="https://bedrock-runtime.eu-west-1.amazonaws.com"), "bedrock"),
        (RouteConfig(url="https://api.anthropic.com", api_keys=("a",)), "anthropic"),
        (RouteConfig(url="http://127.0.0.1:11434", api_keys=("o",)), "openai"),
        (RouteConfig(url="http://vllm.internal", api_keys=("o",)), "openai"),
        (RouteConfig(url="http://127.0.0.1:1", auth="x-goog-api-key", api_keys=("g",)), "gemini"),
        (RouteConfig(url="http://127.0.0.1:1", aws=AWSCredentials("a", "s")), "bedrock"),
        (RouteConfig(url="http://127.0.0.1:1", api="anthropic", api_keys=("a",)), "anthropic"),
    ],
)
def test_the_upstream_api_is_the_routes_or_inferred(route, api):
    assert router(("m", route)).select(OPENAI, "m").api.name == api


def test_openai_calls_keep_googles_layer_unless_the_route_says_gemini():
    google = RouteConfig(url="https://generativelanguage.googleapis.com", api_keys=("g",))
    assert router(("m", google)).select(OPENAI, "m").wire(OPENAI.dialect).name == "openai"
    native = RouteConfig(url=google.url, api_keys=("g",), api="gemini")
    assert router(("m", native)).select(OPENAI, "m").wire(OPENAI.dialect).name == "gemini"


@pytest.mark.parametrize("host", ["API.OPENAI.COM", "api.openai.com.", "Api.OpenAI.com"])
def test_explicit_mode_unrouted_calls_stay_on_the_chosen_host_with_its_keys(host):
    """Issue 11.7: an unrouted model to api.openai.com uses the route configured for that host;
    issue 10.12: the host compares without case and trailing dot."""
    r = router(*ROUTES[:2])
    assert r.select(OPENAI, "o3", client_host=host).name == "gpt-4*"


def test_explicit_mode_refuses_a_host_no_route_configures():
    with pytest.raises(Refusal) as err:
        router().select(OPENAI, "o3", client_host="api.openai.com")
    assert err.value.status == 404 and "model_routes" in err.value.message
    assert router().select(GEMINI, "m", client_host="generativelanguage.googleapis.com").name == (
        "default"
    )


def test_loopback_names_are_one_host():
    assert normal_host("localhost") == normal_host("127.0.0.1") == normal_host("[::1]")
