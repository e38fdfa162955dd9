"""Media in one place (calo_addon/translate/media.py): data URLs and types guessed from bytes."""

from __future__ import annotations

import base64

import pytest

from calo_addon.translate import media, neutral


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 8, "image/png"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 8, "image/jpeg"),
        (b"GIF89a" + b"\0" * 8, "image/gif"),
        (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"),
        (b"%PDF-1.7\n%", "application/pdf"),
        (b"RIFF\0\0\0\0WAVEfmt ", None),  # a RIFF that is not WebP: sound, not an image
        (b"hello world!", None),
    ],
)
def test_sniffed_media_types(raw, expected):
    assert media.sniff_media_type(b64(raw)) == expected


def test_data_urls_both_ways():
    png = b64(b"\x89PNG\r\n\x1a\n")
    assert media.data_url_parts(f"data:image/png;name=a.png;base64,{png}") == ("image/png", png)
    assert media.data_url_parts(f"data:;base64,{png}") == (None, png)
    assert media.data_url_parts("data:text/plain,hello") is None  # text, not media
    assert media.data_url_parts("https://example.com/a.png") is None
    with pytest.raises(neutral.TranslationError, match="must be a base64 data URL"):
        media.parse_data_url("data:text/plain,hello", "image_url.url")
    assert media.data_url(None, png) == f"data:image/png;base64,{png}"  # typed by its bytes
    assert media.data_url(None, b64(b"????"), "image/png").startswith("data:image/png;")
    assert media.url_media("https://x/a.png", "low", "f") == neutral.Media(
        url="https://x/a.png", detail="low"
    )
    assert media.guess_media_type("report.pdf") == "application/pdf"
    assert media.guess_media_type(None, png) == "image/png"
