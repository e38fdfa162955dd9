"""Inbound auth units: where the client's key comes from, the check, and credential stripping."""

from __future__ import annotations

import pytest
from mitmproxy.test import tutils

from calo_addon.dialects import Refusal
from calo_addon.inbound_auth import ProxyKeyCheck, presented_key, strip_client_credentials

PATH = b"/v1beta/models/m:generateContent"


def request(*headers: tuple[str, str], query: str = ""):
    return tutils.treq(
        path=PATH + query.encode(), headers=[(k.encode(), v.encode()) for k, v in headers]
    )


@pytest.mark.parametrize(
    ("req", "expected"),
    [
        (request(("Authorization", "Bearer pk")), ("pk", "authorization")),
        (request(("authorization", "bearer pk ")), ("pk", "authorization")),
        (request(("x-goog-api-key", "pk")), ("pk", "x-goog-api-key")),
        (request(("X-Api-Key", "pk")), ("pk", "x-api-key")),
        (request(query="?alt=sse&key=pk"), ("pk", "query")),
        (request(("Authorization", "Basic abc")), (None, None)),
        (request(query="?monkey=pk"), (None, None)),
        (request(), (None, None)),
    ],
)
def test_presented_key(req, expected):
    assert presented_key(req) == expected


def check(keys: tuple[str, ...], req) -> None:
    ProxyKeyCheck(keys).check(req, presented_key(req)[0])


@pytest.mark.parametrize(
    "req",
    [
        request(("Authorization", "Bearer pk2")),
        request(("x-goog-api-key", "pk")),
        request(("x-api-key", "pk2")),
        request(query="?key=pk"),
    ],
)
def test_each_key_source_is_accepted(req):
    check(("pk", "pk2"), req)


@pytest.mark.parametrize(
    ("req", "message"),
    [
        (request(), "missing proxy API key"),
        (request(("x-goog-api-key", "")), "missing proxy API key"),
        (request(("x-goog-api-key", "wrong")), "invalid proxy API key"),
        (request(("Authorization", "Bearer pk-but-longer")), "invalid proxy API key"),
    ],
)
def test_missing_or_wrong_key_is_401(req, message):
    with pytest.raises(Refusal) as err:
        check(("pk",), req)
    assert (err.value.status, err.value.message) == (401, message)


def test_without_proxy_keys_everything_passes():
    assert not ProxyKeyCheck(()).enabled
    check((), request())
    check((), request(("x-goog-api-key", "anything")))


def test_strip_removes_every_client_credential_and_keeps_the_rest():
    req = request(
        ("Authorization", "Bearer pk"),
        ("x-goog-api-key", "pk"),
        ("X-Api-Key", "pk"),
        ("X-AWS-Bearer-Token", "tok"),
        ("x-aws-region", "eu-west-1"),
        ("content-type", "application/json"),
        ("x-goog-user-project", "proj"),
        query="?alt=sse&key=pk&foo=bar",
    )
    removed = strip_client_credentials(req)
    assert removed == {"x-aws-bearer-token": "tok", "x-aws-region": "eu-west-1"}
    assert sorted(req.headers.keys()) == ["content-type", "x-goog-user-project"]
    assert req.path == PATH.decode() + "?alt=sse&foo=bar"


def test_strip_removes_every_key_parameter():
    req = request(query="?key=a&alt=sse&key=b")
    strip_client_credentials(req)
    assert req.path == PATH.decode() + "?alt=sse"


def test_strip_leaves_a_request_without_credentials_untouched():
    req = request(("accept", "*/*"), query="?alt=sse")
    before = (req.path, req.headers.fields)
    assert strip_client_credentials(req) == {}
    assert (req.path, req.headers.fields) == before


def test_percent_encoded_key_parameter_is_found_and_stripped():
    """`%6Bey` decodes to `key`: servers read it as the key, so the proxy must too."""
    req = request(query="?%6Bey=client-secret&alt=sse")
    assert presented_key(req) == ("client-secret", "query")
    strip_client_credentials(req)
    assert "client-secret" not in req.path
