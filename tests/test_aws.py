"""aws.SigV4Verifier: a client's SigV4 signature checked as strictly as AWS checks it.

Requests are signed by botocore, as boto3 signs them; `verify(..., now=)` is given the moment
the check happens, so the clock-skew rule is tested without waiting or patching clocks.
"""

from __future__ import annotations

import datetime

import pytest
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from mitmproxy import http

from calo_addon.aws import SigV4Verifier
from calo_addon.dialects import Refusal

AKID, SECRET = "AKIDVERIFY", "verify-secret"
URL = "http://127.0.0.1:8080/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke"
BODY = b'{"messages": [{"role": "user", "content": "hi"}]}'


def signed(**extra: str) -> tuple[http.Request, tuple[tuple[bytes, bytes], ...], datetime.datetime]:
    """A request signed like boto3 signs it (`extra` headers signed too), its header fields
    as sent, and the moment it was signed."""
    headers = {"host": "127.0.0.1:8080", "content-type": "application/json", **extra}
    aws = AWSRequest(method="POST", url=URL, data=BODY, headers=headers)
    SigV4Auth(Credentials(AKID, SECRET), "bedrock", "us-east-1").add_auth(aws)
    request = http.Request.make("POST", URL, BODY, dict(aws.headers.items()))
    when = datetime.datetime.strptime(aws.headers["X-Amz-Date"], SIGV4_TIMESTAMP)
    return request, tuple(request.headers.fields), when.replace(tzinfo=datetime.UTC)


def refusal(request, fields, now) -> Refusal:
    with pytest.raises(Refusal) as refused:
        SigV4Verifier({AKID: SECRET}).verify(request, fields, now=now)
    assert refused.value.status == 403
    return refused.value


def test_a_signature_within_the_allowed_skew_is_accepted():
    request, fields, when = signed()
    verifier = SigV4Verifier({AKID: SECRET})
    for skew in (0, 14 * 60, -14 * 60):
        now = when + datetime.timedelta(seconds=skew)
        assert verifier.verify(request, fields, now=now) == AKID


@pytest.mark.parametrize("minutes", [16, -16], ids=["expired", "not-yet-valid"])
def test_a_clock_more_than_15_minutes_off_is_refused(minutes):
    request, fields, when = signed()
    refused = refusal(request, fields, when + datetime.timedelta(minutes=minutes))
    assert refused.message == "signature expired or not yet valid"
    assert refused.code == "InvalidSignatureException"


def test_a_date_outside_the_credential_scope_is_refused():
    """X-Amz-Date must fall on the day the credential scope names (both are signed)."""
    request, fields, when = signed()
    day_before = (when - datetime.timedelta(days=1)).strftime("%Y%m%d")
    header = http.Headers(fields)
    header["authorization"] = header["authorization"].replace(f"/{when:%Y%m%d}/", f"/{day_before}/")
    refused = refusal(request, tuple(header.fields), when)
    assert refused.message == "signature expired or not yet valid"


def test_a_signed_header_missing_from_the_request_is_refused():
    request, fields, when = signed(**{"x-amz-meta-trace": "abc"})
    assert "x-amz-meta-trace" in http.Headers(fields)["authorization"]  # it was signed
    without = tuple((name, value) for name, value in fields if name != b"x-amz-meta-trace")
    refused = refusal(request, without, when)
    assert refused.message == "signed header 'x-amz-meta-trace' is missing"
    assert refused.code == "InvalidSignatureException"
