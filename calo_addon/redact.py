"""Secrets never leave in logs, comments or errors: one place that scrubs them."""

from __future__ import annotations

from collections.abc import Iterable

from .dialects.base import CLIENT_AWS_PREFIX, CREDENTIAL_HEADERS

REDACTED = "[REDACTED]"
SECRET_HEADERS = frozenset({*CREDENTIAL_HEADERS, "cookie", "set-cookie"})
SECRET_QUERY = frozenset({"key", "x-amz-signature", "x-amz-credential", "x-amz-security-token"})


def is_secret_header(name: str) -> bool:
    name = name.lower()
    return name in SECRET_HEADERS or name.startswith(CLIENT_AWS_PREFIX)


def headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {k: (REDACTED if is_secret_header(k) else v) for k, v in items}


def query(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {k: (REDACTED if k.lower() in SECRET_QUERY else v) for k, v in items}


class Scrubber:
    """Replaces every known secret in free text (bodies at DEBUG, error messages)."""

    def __init__(self, secrets: Iterable[str]):
        # longest first, so a key that contains another is scrubbed whole
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text
