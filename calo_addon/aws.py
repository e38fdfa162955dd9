"""AWS credentials for Bedrock, all through botocore: SigV4 signing out, SigV4 checking in.

Outbound, botocore signs the final request over `host`, `content-type` and `x-amz-*` only:
hop-by-hop and mutable headers are left out, the host is the real upstream's, and botocore
URI-encodes the canonical path itself (so model ids with `:` sign right).
Inbound, a client that signed with proxy credentials (boto3 with ordinary SigV4 settings) is
checked by recomputing its signature with botocore from what it sent.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from mitmproxy import http

from .dialects import Refusal
from .settings import Auth, AWSCredentials

SERVICE = "bedrock"
MAX_CLOCK_SKEW = datetime.timedelta(minutes=15)
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request,\s*"
    r"SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$"
)
REGION = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+-\d{1,2}$")


@dataclass(frozen=True)
class ClientAWS:
    """Credentials a client handed the proxy in X-AWS-* headers, for header pass-through."""

    bearer_token: str | None = None
    credentials: AWSCredentials | None = None
    region: str | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], default_region: str) -> ClientAWS:
        """From the X-AWS-* headers (lower-cased names) the client sent; SigV4 keys sign for
        X-AWS-Region, else the configured default region."""
        if not headers:
            return cls()
        region = headers.get("x-aws-region") or None
        if region is not None and not REGION.match(region):
            raise Refusal(400, f"invalid X-AWS-Region {region!r}", "ValidationException")
        credentials = None
        if headers.get("x-aws-access-key") and headers.get("x-aws-secret-key"):
            credentials = AWSCredentials(
                access_key=headers["x-aws-access-key"],
                secret_key=headers["x-aws-secret-key"],
                session_token=headers.get("x-aws-session-token") or None,
                region=region or default_region,
            )
        return cls(headers.get("x-aws-bearer-token") or None, credentials, region)


def signed_region(signed_fields: tuple[tuple[bytes, bytes], ...]) -> str | None:
    """The region a SigV4 client signed for (its credential scope), if it signed."""
    if not signed_fields:
        return None
    match = _AUTH.match(http.Headers(signed_fields).get("authorization", "").strip())
    return match.group(3) if match and REGION.match(match.group(3)) else None


def sign(request: http.Request, creds: AWSCredentials, region: str | None = None) -> dict:
    """The SigV4 headers for `request` as it will leave (botocore signs `host`, `content-type`
    and `x-amz-*`), after removing any earlier signature. The caller sets them."""
    for name in ("authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"):
        request.headers.pop(name, None)
    signed = {
        name: value
        for name, value in request.headers.items()
        if name.lower() == "content-type" or name.lower().startswith("x-amz-")
    }
    signed["host"] = request.host_header or request.host
    aws_request = AWSRequest(
        method=request.method, url=request.url, headers=signed, data=request.raw_content or b""
    )
    credentials = Credentials(creds.access_key, creds.secret_key, creds.session_token)
    SigV4Auth(credentials, SERVICE, region or creds.region).add_auth(aws_request)
    return {
        name: aws_request.headers[name]
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token")
        if name in aws_request.headers
    }


class SigV4Verifier:
    """Checks a client's SigV4 signature against the proxy's own access-key ids and secrets,
    as strictly as AWS: the scope must be Bedrock's in a real region, the clock within 15
    minutes, every signed header present, and the signed payload hash the body received
    (an unsigned payload is refused, so a signature cannot be replayed over another body)."""

    def __init__(self, secrets: Mapping[str, str]):
        self._secrets = dict(secrets)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def verify(
        self,
        request: http.Request,
        signed_fields: tuple[tuple[bytes, bytes], ...],
        now: datetime.datetime | None = None,
    ) -> str:
        """The verified access-key id; raises Refusal(403) otherwise. `signed_fields`: the
        request's header fields as the client sent them (credentials are taken out of the
        flow on arrival); the path and body are the request's own."""
        headers = http.Headers(signed_fields)
        match = _AUTH.match(headers.get("authorization", "").strip())
        if not match:
            raise _refuse("malformed SigV4 Authorization header", "IncompleteSignatureException")
        key_id, date, region, service, signed_names, signature = match.groups()
        if service != SERVICE or not REGION.match(region):
            raise _refuse(
                f"credential scope must be {SERVICE} in an AWS region", "InvalidSignatureException"
            )
        secret = self._secrets.get(key_id)
        if secret is None:
            raise _refuse(
                "the security token included in the request is invalid",
                "UnrecognizedClientException",
            )
        timestamp = headers.get("x-amz-date", "")
        try:
            when = datetime.datetime.strptime(timestamp, SIGV4_TIMESTAMP).replace(
                tzinfo=datetime.UTC
            )
        except ValueError:
            raise _refuse(
                "missing or malformed X-Amz-Date", "IncompleteSignatureException"
            ) from None
        now = now or datetime.datetime.now(datetime.UTC)
        if abs(now - when) > MAX_CLOCK_SKEW or not timestamp.startswith(date):
            raise _refuse("signature expired or not yet valid", "InvalidSignatureException")
        body = request.raw_content or b""
        claimed = headers.get("x-amz-content-sha256")
        if claimed is not None and claimed != hashlib.sha256(body).hexdigest():
            raise _refuse(
                "X-Amz-Content-SHA256 does not match the body (unsigned payloads are refused)",
                "InvalidSignatureException",
            )
        names = signed_names.split(";")
        signed = {}
        for name in names:
            if name not in headers:
                raise _refuse(f"signed header {name!r} is missing", "InvalidSignatureException")
            signed[name] = headers[name]
        url = f"{request.scheme}://{headers.get('host') or request.host}{request.path}"
        aws_request = AWSRequest(method=request.method, url=url, headers=signed, data=body)
        aws_request.context["timestamp"] = timestamp
        auth = SigV4Auth(Credentials(key_id, secret), service, region)
        expected = auth.signature(
            auth.string_to_sign(aws_request, auth.canonical_request(aws_request)), aws_request
        )
        if not hmac.compare_digest(expected, signature):
            raise _refuse("the request signature does not match", "InvalidSignatureException")
        return key_id


def _refuse(message: str, code: str) -> Refusal:
    return Refusal(403, message, code)


def create_aws_sigv4_provider(credentials: AWSCredentials) -> Auth:
    """`auth=` for a route that signs with fixed credentials (the YAML's `auth: sigv4`)."""
    return Auth("sigv4", aws=credentials)


def create_passthrough_bedrock_provider() -> Auth:
    """`auth=` for a route that uses each client's own X-AWS-* credentials."""
    return Auth("bedrock-passthrough")
