"""Redaction units: secret headers and query parameters, and secrets in free text."""

from __future__ import annotations

from calo_addon.redact import REDACTED, Scrubber, headers, query


def test_secret_headers_are_redacted_case_insensitively():
    given = [
        ("Authorization", "Bearer sk-1"),
        ("x-goog-api-key", "g"),
        ("X-Api-Key", "a"),
        ("X-AWS-Secret-Key", "s"),
        ("x-amz-security-token", "t"),
        ("Cookie", "c=1"),
        ("content-type", "application/json"),
        ("x-amz-date", "20250101T000000Z"),
    ]
    assert headers(given) == {
        "Authorization": REDACTED,
        "x-goog-api-key": REDACTED,
        "X-Api-Key": REDACTED,
        "X-AWS-Secret-Key": REDACTED,
        "x-amz-security-token": REDACTED,
        "Cookie": REDACTED,
        "content-type": "application/json",
        "x-amz-date": "20250101T000000Z",
    }


def test_secret_query_parameters_are_redacted():
    given = [("key", "k"), ("alt", "sse"), ("X-Amz-Signature", "sig"), ("keys", "v")]
    assert query(given) == {"key": REDACTED, "alt": "sse", "X-Amz-Signature": REDACTED, "keys": "v"}


def test_scrubber_replaces_every_occurrence_of_every_secret():
    scrub = Scrubber(["sk-alpha", "AKIASECRET"])
    text = 'key sk-alpha sent; again "sk-alpha" and AKIASECRET'
    assert scrub(text) == f'key {REDACTED} sent; again "{REDACTED}" and {REDACTED}'


def test_scrubber_replaces_the_longest_secret_whole():
    scrub = Scrubber(["abcd", "abcdefgh"])
    assert scrub("x abcdefgh y abcd") == f"x {REDACTED} y {REDACTED}"


def test_scrubber_ignores_empty_and_very_short_values():
    scrub = Scrubber(["", "ab"])
    assert scrub("about a tab") == "about a tab"
