"""Bedrock units: recognition of percent-encoded ids, default upstream per region, usage."""

from __future__ import annotations

import base64
import json

import pytest
from mitmproxy.test import tutils

from calo_addon import aws
from calo_addon.dialects import BEDROCK as bedrock
from calo_addon.dialects import Refusal, recognise
from calo_addon.routing import Router
from calo_addon.settings import Settings

ARN = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-3-haiku-v1:0"


def test_percent_encoded_arn_is_decoded_and_reencoded_like_botocore():
    segment = "arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-haiku-v1%3A0"
    op = recognise("POST", f"/model/{segment}/converse", None)
    assert op.dialect is bedrock and op.path_model == ARN
    request = tutils.treq(path=f"/model/{segment}/converse".encode())
    bedrock.set_model(op, request, None, ARN)
    assert request.path == f"/model/{segment}/converse"


@pytest.mark.parametrize("segment", ["..%2Fx", "a%00b", "%2e%2e"])
def test_traversal_in_model_id_is_refused(segment):
    with pytest.raises(Refusal) as err:
        recognise("POST", f"/model/{segment}/invoke", None)
    assert err.value.status == 400


@pytest.mark.parametrize(
    ("region", "host"),
    [
        (None, "bedrock-runtime.us-east-1.amazonaws.com"),
        ("eu-west-1", "bedrock-runtime.eu-west-1.amazonaws.com"),
    ],
)
def test_unmatched_models_go_to_the_regional_endpoint(region, host):
    router = Router(Settings(api_keys=("k",)))
    op = recognise("POST", "/model/anthropic.claude-v2/invoke", None)
    upstream = router.select(op, "anthropic.claude-v2", region)
    assert (upstream.scheme, upstream.host, upstream.port, upstream.auth.kind) == (
        "https",
        host,
        443,
        "bedrock-passthrough",
    )


def test_region_header_must_be_a_region():
    request = tutils.treq(headers=[(b"x-aws-region", b"evil.example/x")])
    with pytest.raises(Refusal):
        aws.ClientAWS.from_headers({"x-aws-region": request.headers["x-aws-region"]}, "us-east-1")
    region = aws.ClientAWS.from_headers({"x-aws-region": "ap-southeast-3"}, "us-east-1").region
    assert region == "ap-southeast-3"


def test_passthrough_keys_without_a_region_sign_for_the_default_region():
    """Issue 11.3: X-AWS-Access-Key without X-AWS-Region signs for bedrock.default_region."""
    headers = {"x-aws-access-key": "AKID", "x-aws-secret-key": "secret"}
    assert aws.ClientAWS.from_headers(headers, "eu-central-1").credentials.region == "eu-central-1"


def test_signed_region_read_from_the_credential_scope():
    auth = (
        "AWS4-HMAC-SHA256 Credential=AKID/20261125/us-west-2/bedrock/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
    )
    assert aws.signed_region(((b"authorization", auth.encode()),)) == "us-west-2"


def test_usage_from_every_bedrock_shape():
    assert (
        bedrock.usage(
            None, {"usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}}
        ).total_tokens
        == 3
    )
    assert (
        bedrock.usage(None, {"usage": {"input_tokens": 4, "output_tokens": 5}}).output_tokens == 5
    )
    metrics = {"amazon-bedrock-invocationMetrics": {"inputTokenCount": 6, "outputTokenCount": 7}}
    chunk = {"bytes": base64.b64encode(json.dumps(metrics).encode()).decode()}
    assert bedrock.usage(None, chunk).input_tokens == 6
    assert bedrock.usage(None, {"contentBlockDelta": {}}) is None
