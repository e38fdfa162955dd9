"""Inbound auth units: where the client's key comes from, taking every client credential out
of the request at once, and the check."""

from __future__ import annotations

import pytest
from mitmproxy.test import tutils

from calo_addon.dialects import Refusal
from calo_addon.inbound_auth import ProxyKeyCheck, take_client_credentials

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
        # Bearer wins whatever the header order; a SigV4 Authorization leaves x-api-key the key
        (request(("x-api-key", "other"), ("Authorization", "Bearer pk")), ("pk", "authorization")),
        (
            request(("Authorization", "AWS4-HMAC-SHA256 x"), ("x-api-key", "pk")),
            ("pk", "x-api-key"),
        ),
    ],
)
def test_presented_key(req, expected):
    presented = take_client_credentials(req)
    assert (presented.key, presented.source) == expected


def check(keys: tuple[str, ...], req, aws=()) -> None:
    ProxyKeyCheck(keys, aws).check(req, take_client_credentials(req))


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


def test_a_key_that_is_not_utf8_is_401_not_500():
    """Issue 10.13: a proxy key with bytes that are not UTF-8."""
    req = tutils.treq(path=PATH, headers=[(b"x-goog-api-key", b"\xff\xfe-not-utf8")])
    with pytest.raises(Refusal) as err:
        check(("pk",), req)
    assert err.value.status == 401


def test_a_valid_key_beside_a_sigv4_signature_authenticates():
    """Issue 11.2: a client that always signs (AnthropicBedrock, curl --aws-sigv4) and sends
    the proxy key as x-api-key is authenticated by the key; the signature is only stripped."""
    signature = "AWS4-HMAC-SHA256 Credential=AKIDCLIENT/20261126/us-east-1/bedrock/aws4_request"
    check(("pk",), request(("Authorization", signature), ("x-api-key", "pk")))
    with pytest.raises(Refusal) as err:
        check(("pk",), request(("Authorization", signature), ("x-api-key", "wrong")))
    assert err.value.status == 401
    with pytest.raises(Refusal) as err:  # no key and no proxy AWS credentials: SigV4 refused
        check(("pk",), request(("Authorization", signature)))
    assert err.value.status == 403


def test_without_proxy_keys_everything_passes():
    assert not ProxyKeyCheck(()).enabled
    check((), request())
    check((), request(("x-goog-api-key", "anything")))


def test_every_client_credential_is_taken_and_the_rest_kept():
    req = request(
        ("Authorization", "Bearer pk"),
        ("x-goog-api-key", "pk"),
        ("X-Api-Key", "pk"),
        ("X-AWS-Bearer-Token", "tok"),
        ("x-aws-region", "eu-west-1"),
        ("x-amz-security-token", "session"),
        ("content-type", "application/json"),
        ("x-goog-user-project", "proj"),
        query="?alt=sse&key=pk&foo=bar",
    )
    presented = take_client_credentials(req)
    assert presented.client_aws == {"x-aws-bearer-token": "tok", "x-aws-region": "eu-west-1"}
    assert sorted(req.headers.keys()) == ["content-type", "x-goog-user-project"]
    assert req.path == PATH.decode() + "?alt=sse&foo=bar"


def test_every_key_parameter_is_taken():
    req = request(query="?key=a&alt=sse&key=b")
    take_client_credentials(req)
    assert req.path == PATH.decode() + "?alt=sse"


def test_a_request_without_credentials_is_untouched():
    req = request(("accept", "*/*"), query="?alt=sse")
    before = (req.path, req.headers.fields)
    presented = take_client_credentials(req)
    assert presented.key is None and presented.client_aws == {}
    assert (req.path, req.headers.fields) == before


def test_percent_encoded_key_parameter_is_found_and_taken():
    """`%6Bey` decodes to `key`: servers read it as the key, so the proxy must too."""
    req = request(query="?%6Bey=client-secret&alt=sse")
    assert take_client_credentials(req).key == "client-secret"
    assert "client-secret" not in req.path
