"""Responses content parts and reasoning items <-> neutral parts.

Two neutral flags have no field in a reasoning item, so they ride on what clients echo back
(Codex drops item ids, so ids cannot carry them):
- `Thinking.attached` (a Gemini signature that sat on the next part): a reasoning item with a
  signature and no text, followed by another assistant item, reads back as attached.
- `Thinking.redacted` (Anthropic redacted_thinking): its data is written as
  `encrypted_content` with the prefix `redacted_thinking:` (no base64 signature contains ":").
"""

from __future__ import annotations

import itertools
import mimetypes
from typing import Any

from . import neutral
from .media import data_url, guess_media_type, parse_data_url, url_media

REDACTED_PREFIX = "redacted_thinking:"
SUMMARY_JOINER = "\n\n"


# ---------------------------------------------------------------- content parts (read)


def read_content(content: Any, field: str) -> list[neutral.Text | neutral.Media]:
    """A message's `content` (a string or a list of parts) -> neutral parts."""
    if isinstance(content, str):
        return [neutral.Text(content)] if content else []
    if not isinstance(content, list):
        raise neutral.TranslationError(f"{field} must be a string or a list", field)
    return [_read_content_part(part, f"{field}[{i}]") for i, part in enumerate(content)]


def _read_content_part(part: Any, field: str) -> neutral.Text | neutral.Media:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
        return neutral.Text(part["text"])
    if kind == "refusal" and isinstance(part.get("refusal"), str):
        return neutral.Text(part["refusal"])
    if kind == "input_image":
        return _read_image(part, field)
    if kind == "input_file":
        return _read_file(part, field)
    raise neutral.TranslationError(f"{field}: unsupported content part {kind!r}", field)


def _stored_file(field: str) -> neutral.TranslationError:
    """A file_id names a file stored at OpenAI, which no translated upstream can read."""
    return neutral.TranslationError(
        f"{field}.file_id refers to a file stored at OpenAI; send the content inline", field
    )


def _read_image(part: dict[str, Any], field: str) -> neutral.Media:
    url = part.get("image_url")
    if not isinstance(url, str):
        raise (
            _stored_file(field)
            if part.get("file_id")
            else neutral.TranslationError(f"{field}.image_url is required", field)
        )
    return url_media(url, part.get("detail"), f"{field}.image_url")


def _read_file(part: dict[str, Any], field: str) -> neutral.Media:
    name = part.get("filename")
    file_data, file_url = part.get("file_data"), part.get("file_url")
    if isinstance(file_data, str):
        if file_data.startswith("data:"):
            media_type, data = parse_data_url(file_data, f"{field}.file_data")
            return neutral.Media(media_type=media_type, data=data, name=name)
        guessed = guess_media_type(name, file_data) or "application/pdf"
        return neutral.Media(media_type=guessed, data=file_data, name=name)
    if isinstance(file_url, str):
        return neutral.Media(media_type=guess_media_type(name or file_url), url=file_url, name=name)
    if part.get("file_id"):
        raise _stored_file(field)
    raise neutral.TranslationError(f"{field} needs file_data or file_url", field)


# ---------------------------------------------------------------- content parts (write)


def write_content_part(part: neutral.Text | neutral.Media, role: str) -> dict[str, Any]:
    """A neutral part -> an input/output content part for a message of `role`."""
    if isinstance(part, neutral.Text):
        kind = "output_text" if role == "assistant" else "input_text"
        return {"type": kind, "text": part.text}
    return write_media(part)


def write_media(media: neutral.Media) -> dict[str, Any]:
    """Images become input_image (data URL or URL); anything else input_file."""
    is_image = (media.media_type or "").startswith("image/") or (
        media.media_type is None and media.url is not None and media.name is None
    )
    if is_image:
        url = data_url(media.media_type, media.data) if media.data is not None else media.url
        return {"type": "input_image", "image_url": url, "detail": media.detail or "auto"}
    out: dict[str, Any] = {"type": "input_file"}
    if media.data is not None:
        out["file_data"] = data_url(media.media_type, media.data)
        out["filename"] = media.name or "file" + (
            mimetypes.guess_extension(media.media_type or "") or ""
        )
    else:
        out["file_url"] = media.url
        if media.name:
            out["filename"] = media.name
    return out


# ---------------------------------------------------------------- reasoning


def read_reasoning(item: dict[str, Any]) -> neutral.Thinking:
    """A reasoning item -> Thinking (summary texts joined; else its reasoning_text content)."""
    summary = [s["text"] for s in item.get("summary") or [] if _has_text(s)]
    content = [c["text"] for c in item.get("content") or [] if _has_text(c)]
    text = SUMMARY_JOINER.join(summary) if summary else "".join(content)
    encrypted = item.get("encrypted_content")
    signature = encrypted if isinstance(encrypted, str) else None
    redacted = False
    if signature is not None and signature.startswith(REDACTED_PREFIX):
        redacted, signature = True, signature[len(REDACTED_PREFIX) :]
    return neutral.Thinking(
        text=text,
        signature=signature,
        redacted=redacted,
        summary=summary or None,
    )


def _has_text(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("text"), str)


def summary_texts(thinking: neutral.Thinking) -> list[str]:
    """The summary parts to write: the reader's own list when it still matches the text."""
    if thinking.summary is not None and SUMMARY_JOINER.join(thinking.summary) == thinking.text:
        return list(thinking.summary)
    return [thinking.text] if thinking.text else []


def write_reasoning(thinking: neutral.Thinking, item_id: str | None) -> dict[str, Any]:
    """Thinking -> a reasoning item; `item_id` None for input items (ids are server-side)."""
    item: dict[str, Any] = {"type": "reasoning"}
    if item_id is not None:
        item["id"] = item_id
    item["summary"] = [{"type": "summary_text", "text": t} for t in summary_texts(thinking)]
    if thinking.signature is not None:
        prefix = REDACTED_PREFIX if thinking.redacted else ""
        item["encrypted_content"] = prefix + thinking.signature
    return item


def mark_attached(parts: list[neutral.Part]) -> None:
    """A signed, textless Thinking right before another assistant part carried that part's
    signature (how the writer lays out Gemini's attached signatures)."""
    for here, after in itertools.pairwise(parts):
        if (
            isinstance(here, neutral.Thinking)
            and not here.text
            and here.signature
            and not here.redacted
            and not isinstance(after, neutral.Thinking)
        ):
            here.attached = True
