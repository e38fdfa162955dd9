"""Media in every protocol, in one place: base64 data URLs (read and written), and the media
type of base64 data that came without one, from its first bytes or a file name."""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from typing import Any

from . import neutral

# data:<type>[;<param>...];base64,<data>; other data URLs carry text, not media
_DATA_URL = re.compile(r"^data:([^;,]+)?(?:;[^,]*)?;base64,(.*)$", re.DOTALL)
_MAGIC = (
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"%PDF", "application/pdf"),
)


def sniff_media_type(data: str) -> str | None:
    """The media type of base64 `data` from its first bytes, or None."""
    head64 = data[:24]
    try:
        head = base64.b64decode(head64 + "=" * (-len(head64) % 4))
    except (binascii.Error, ValueError):
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)


def guess_media_type(name: str | None, data: str | None = None) -> str | None:
    """By the file name's extension, else by the data's first bytes."""
    guessed = mimetypes.guess_type(name)[0] if name else None
    return guessed or (sniff_media_type(data) if data else None)


def data_url_parts(url: str) -> tuple[str | None, str] | None:
    """A base64 data URL -> (its media type or None, the base64 data); None for anything else."""
    match = _DATA_URL.match(url)
    return (match.group(1), match.group(2)) if match else None


def parse_data_url(url: str, field: str) -> tuple[str | None, str]:
    """As `data_url_parts`, refusing anything but a base64 data URL (a TranslationError)."""
    parts = data_url_parts(url)
    if parts is None:
        raise neutral.TranslationError(f"'{field}' must be a base64 data URL", field)
    return parts


def url_media(url: str, detail: Any, field: str) -> neutral.Media:
    """Media given by URL: inline when it is a data URL, else the URL itself."""
    if url.startswith("data:"):
        media_type, data = parse_data_url(url, field)
        return neutral.Media(media_type=media_type, data=data, detail=detail)
    return neutral.Media(url=url, detail=detail)


def data_url(media_type: str | None, data: str, default: str = "application/octet-stream") -> str:
    """Base64 `data` as a data URL; without a media type, the one its bytes show, else
    `default`."""
    return f"data:{media_type or sniff_media_type(data) or default};base64,{data}"
