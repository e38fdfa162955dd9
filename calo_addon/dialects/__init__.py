"""The API dialects, in the order recognition asks them, and what is known across them."""

from __future__ import annotations

from .anthropic import ANTHROPIC
from .base import Dialect, Operation, Refusal
from .bedrock import BEDROCK
from .gemini import GEMINI
from .openai import OPENAI
from .responses import RESPONSES

# Anthropic and Responses paths (/v1/messages, /v1/responses) are asked before OpenAI's /v1/.
DIALECTS: tuple[Dialect, ...] = (GEMINI, ANTHROPIC, RESPONSES, OPENAI, BEDROCK)
BY_NAME: dict[str, Dialect] = {d.name: d for d in DIALECTS}

__all__ = [
    "ANTHROPIC",
    "BEDROCK",
    "BY_NAME",
    "DIALECTS",
    "GEMINI",
    "OPENAI",
    "RESPONSES",
    "Dialect",
    "Operation",
    "Refusal",
    "api_for_auth",
    "api_host",
    "dialect_for_path",
    "recognise",
]


def recognise(method: str, path: str, key_source: str | None) -> Operation | None:
    """The operation a request is, or None. May raise Refusal for a recognised but bad request."""
    for dialect in DIALECTS:
        op = dialect.recognise(method, path, key_source)
        if op is not None:
            return op
    return None


def dialect_for_path(path: str) -> Dialect:
    """The dialect whose error shape fits an unrecognised path best."""
    for dialect in DIALECTS:
        if dialect.claims_path(path):
            return dialect
    return GEMINI


def api_for_auth(kind: str) -> Dialect | None:
    """The dialect that alone uses auth style `kind` (SigV4: Bedrock), if any."""
    return next((dialect for dialect in DIALECTS if kind in dialect.own_auth), None)


def api_host(host: str) -> Dialect | None:
    """The dialect whose public API host this is (explicit proxy mode), if any."""
    for dialect in DIALECTS:
        if dialect.owns_host(host):
            return dialect
    return None
