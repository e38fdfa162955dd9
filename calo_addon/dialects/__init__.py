"""The API dialects, in the order recognition asks them."""

from __future__ import annotations

from . import bedrock, gemini, openai
from .base import Dialect, Operation, Refusal, Usage

DIALECTS: tuple[Dialect, ...] = (gemini, openai, bedrock)  # type: ignore[assignment]

__all__ = ["DIALECTS", "Dialect", "Operation", "Refusal", "Usage", "dialect_for_path", "recognise"]


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
    return gemini  # type: ignore[return-value]
