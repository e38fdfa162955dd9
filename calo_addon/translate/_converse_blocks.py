"""Converse content blocks <-> neutral parts, for the request and answer halves of converse.py.

Blocks are one-key objects: {text}, {image}, {document}, {toolUse}, {toolResult},
{reasoningContent}, {cachePoint}, {guardContent} ... In the HTTP JSON, bytes (image and
document sources, redacted reasoning) are base64 strings, which is what `neutral.Media.data` and
a redacted `Thinking.signature` hold, so they pass through untouched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from . import neutral
from .media import parse_data_url, sniff_media_type
from .neutral import (
    Media,
    Part,
    Text,
    Thinking,
    ToolCall,
    ToolResult,
    TranslationError,
    expect_dict,
    expect_str,
)

IMAGE_FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}
DOCUMENT_FORMATS = {
    "pdf": "application/pdf",
    "csv": "text/csv",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html",
    "txt": "text/plain",
    "md": "text/markdown",
}
_IMAGE_BY_TYPE = {v: k for k, v in IMAGE_FORMATS.items()} | {"image/jpg": "jpeg"}
_DOCUMENT_BY_TYPE = {v: k for k, v in DOCUMENT_FORMATS.items()} | {"text/x-markdown": "md"}
EMPTY_TOOL_RESULT = "(no output)"  # Converse rejects blank text blocks


def note(dropped: list[str], name: str) -> None:
    """Name a dropped field once."""
    if name not in dropped:
        dropped.append(name)


def is_claude(model: str | None) -> bool:
    """Anthropic models on Bedrock (ids and ARNs carry "anthropic." or "claude")."""
    if not model:
        return False
    return "anthropic." in model or "claude" in model.lower()


def reasons_by_effort(model: str | None) -> bool:
    """Amazon Nova 2 and later: extended thinking by effort level (`reasoningConfig`)."""
    found = re.search(r"nova-(\d+)-", model or "")
    return found is not None and int(found.group(1)) >= 2


def supports_tool_status(model: str | None) -> bool:
    """toolResult.status is taken by Claude and Nova only (the API reference says so)."""
    return is_claude(model) or (model is not None and "nova" in model.lower())


# ---------------------------------------------------------------- reading


def read_blocks(blocks: Any, dropped: list[str], where: str) -> list[Part]:
    """A Converse content list as neutral parts (advisory blocks named in `dropped`)."""
    if not isinstance(blocks, list):
        raise TranslationError(f"{where} must be a list of content blocks", where)
    parts: list[Part] = []
    for block in blocks:
        if not isinstance(block, dict) or not block:
            raise TranslationError(f"{where} holds a block that is not an object", where)
        kind = next((k for k in _READERS if k in block), None)
        if kind is None:
            note(dropped, next(iter(block)))
            continue
        parts.extend(_READERS[kind](block[kind], dropped))
    return parts


def _read_text(value: Any, dropped: list[str]) -> list[Part]:
    return [Text(expect_str(value, "text"))]


def _read_image(value: Any, dropped: list[str]) -> list[Part]:
    block = expect_dict(value, "image")
    media_type = IMAGE_FORMATS.get(_format_name(block))
    if media_type is None:
        raise TranslationError(f"unknown image format {block.get('format')!r}", "image.format")
    return [Media(media_type=media_type, **_read_source(block.get("source"), "image"))]


def _format_name(block: dict[str, Any]) -> str:
    """An image or document block's `format`; "" (no known format) when it is not a string."""
    name = block.get("format")
    return name if isinstance(name, str) else ""


def _read_document(value: Any, dropped: list[str]) -> list[Part]:
    block = expect_dict(value, "document")
    media_type = DOCUMENT_FORMATS.get(_format_name(block), "text/plain")
    for advisory in ("context", "citations"):
        if advisory in block:
            note(dropped, f"document.{advisory}")
    source = _read_source(block.get("source"), "document")
    return [Media(media_type=media_type, name=block.get("name"), **source)]


def _read_source(value: Any, where: str) -> dict[str, Any]:
    source = expect_dict(value, f"{where}.source")
    if isinstance(source.get("bytes"), str):
        return {"data": source["bytes"]}
    if isinstance(source.get("s3Location"), dict):
        return {"url": expect_str(source["s3Location"].get("uri"), f"{where}.source.s3Location")}
    if isinstance(source.get("text"), str):  # documents may come as plain text
        return {"data": base64.b64encode(source["text"].encode()).decode()}
    raise TranslationError(f"{where}.source needs bytes or an s3Location", f"{where}.source")


def _read_tool_use(value: Any, dropped: list[str]) -> list[Part]:
    block = expect_dict(value, "toolUse")
    arguments = block.get("input")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise TranslationError("toolUse.input must be a JSON object", "toolUse.input")
    call_id = expect_str(block.get("toolUseId"), "toolUse.toolUseId")
    return [
        ToolCall(
            id=call_id, name=expect_str(block.get("name"), "toolUse.name"), arguments=arguments
        )
    ]


def _read_tool_result(value: Any, dropped: list[str]) -> list[Part]:
    block = expect_dict(value, "toolResult")
    content: list[Text | Media] = []
    for item in block.get("content") or []:
        if isinstance(item, dict) and "json" in item:
            content.append(Text(json.dumps(item["json"], ensure_ascii=False)))
            continue
        parts = read_blocks([item], dropped, "toolResult.content")
        content.extend(p for p in parts if isinstance(p, Text | Media))
    return [
        ToolResult(
            id=expect_str(block.get("toolUseId"), "toolResult.toolUseId"),
            content=content,
            is_error=block.get("status") == "error",
        )
    ]


def _read_reasoning(value: Any, dropped: list[str]) -> list[Part]:
    block = expect_dict(value, "reasoningContent")
    if isinstance(block.get("redactedContent"), str):
        return [Thinking(redacted=True, signature=block["redactedContent"])]
    text = expect_dict(block.get("reasoningText"), "reasoningContent.reasoningText")
    return [Thinking(text=text.get("text") or "", signature=text.get("signature"))]


def _read_citations(value: Any, dropped: list[str]) -> list[Part]:
    """Cited text an assistant wrote: its text stays, the citations go."""
    note(dropped, "citationsContent")
    items = expect_dict(value, "citationsContent").get("content") or []
    text = "".join(i.get("text", "") for i in items if isinstance(i, dict))
    return [Text(text)] if text else []


def _read_guard(value: Any, dropped: list[str]) -> list[Part]:
    """Text marked for a guardrail is still prompt text: keep it, drop the marking."""
    note(dropped, "guardContent")
    text = value.get("text") if isinstance(value, dict) else None
    inner = text.get("text") if isinstance(text, dict) else None
    return [Text(inner)] if isinstance(inner, str) else []


def _read_cache_point(value: Any, dropped: list[str]) -> list[Part]:
    note(dropped, "cachePoint")
    return []


def _refuse(kind: str):
    def read(value: Any, dropped: list[str]) -> list[Part]:
        raise neutral.Unsupported(f"{kind} content cannot be translated", kind)

    return read


_READERS = {
    "text": _read_text,
    "image": _read_image,
    "document": _read_document,
    "toolUse": _read_tool_use,
    "toolResult": _read_tool_result,
    "reasoningContent": _read_reasoning,
    "citationsContent": _read_citations,
    "guardContent": _read_guard,
    "cachePoint": _read_cache_point,
    "video": _refuse("video"),
    "audio": _refuse("audio"),
}


# ---------------------------------------------------------------- writing


@dataclass
class WriteContext:
    """What writing blocks needs beyond the part: the model (features differ by model family),
    the request's dropped list, and the document names used so far (they must be unique)."""

    model: str | None
    dropped: list[str]
    document_names: set[str] = field(default_factory=set)


def write_part(part: Part, ctx: WriteContext) -> dict[str, Any] | None:
    """One neutral part as a Converse block, or None when Converse has no place for it."""
    if isinstance(part, Text):
        return {"text": part.text} if part.text.strip() else None
    if isinstance(part, Media):
        return write_media(part, ctx)
    if isinstance(part, Thinking):
        return _write_thinking(part, ctx)
    if isinstance(part, ToolCall):
        use = {"toolUseId": safe_tool_id(part.id), "name": part.name, "input": part.arguments}
        return {"toolUse": use}
    return _write_tool_result(part, ctx)


def _write_thinking(part: Thinking, ctx: WriteContext) -> dict[str, Any] | None:
    """Signed reasoning goes back to Claude as it came. Reasoning without a signature (no model
    can check it), Gemini's attached signatures and any reasoning sent to other model families
    (the signature means nothing to them) are left out."""
    if not is_claude(ctx.model) or not part.signature:
        return None
    if part.redacted:
        return {"reasoningContent": {"redactedContent": part.signature}}
    if part.attached:
        return None
    text = part.text or "".join(part.summary or [])
    return {"reasoningContent": {"reasoningText": {"text": text, "signature": part.signature}}}


def _write_tool_result(part: ToolResult, ctx: WriteContext) -> dict[str, Any]:
    content = [block for item in part.content if (block := write_part(item, ctx)) is not None]
    result: dict[str, Any] = {
        "toolUseId": safe_tool_id(part.id),
        "content": content or [{"text": EMPTY_TOOL_RESULT}],
    }
    if part.is_error:
        if supports_tool_status(ctx.model):
            result["status"] = "error"
        else:
            note(ctx.dropped, "tool_result.is_error")
    return {"toolResult": result}


def write_media(media: Media, ctx: WriteContext) -> dict[str, Any]:
    """An image or document block; Converse takes inline bytes or S3 locations, never URLs."""
    media_type, data, url = media.media_type, media.data, media.url
    if url and url.startswith("data:"):
        media_type, data, url = *parse_data_url(url, "url"), None
    kind = _media_kind(media_type, data)
    if url and not url.startswith("s3://"):
        raise neutral.Unsupported(
            f"Bedrock Converse cannot fetch {kind} URLs (it takes inline base64 bytes or an "
            f"s3:// location); send the {kind} inline",
            f"{kind} url",
        )
    source = {"s3Location": {"uri": url}} if url else {"bytes": data or ""}
    if kind == "image":
        return {"image": {"format": _image_format(media_type, data), "source": source}}
    assert media_type is not None  # _media_kind says "document" only for a known type
    block = {"format": _DOCUMENT_BY_TYPE[media_type], "name": _document_name(media.name, ctx)}
    return {"document": block | {"source": source}}


def _media_kind(media_type: str | None, data: str | None) -> str:
    if media_type in _DOCUMENT_BY_TYPE:
        return "document"
    if media_type is None or media_type.startswith("image/"):
        return "image"
    kind = media_type.split("/")[0]
    if kind in ("video", "audio"):
        raise neutral.Unsupported(f"Bedrock Converse translation does not carry {kind}", kind)
    raise neutral.Unsupported(f"Bedrock Converse takes no {media_type} documents", "media_type")


def _image_format(media_type: str | None, data: str | None) -> str:
    if media_type in _IMAGE_BY_TYPE:
        return _IMAGE_BY_TYPE[media_type]
    if media_type is None:
        sniffed = sniff_media_type(data or "")
        if sniffed in _IMAGE_BY_TYPE:
            return _IMAGE_BY_TYPE[sniffed]
        raise TranslationError("an image without a media type", "media_type")
    raise neutral.Unsupported(f"Bedrock Converse takes no {media_type} images", "media_type")


def _document_name(name: str | None, ctx: WriteContext) -> str:
    """Converse names take letters, digits, single spaces, hyphens, parentheses and brackets,
    and must differ within a request: "report.pdf" becomes "report pdf", a repeat "... (2)"."""
    cleaned = re.sub(r"[^A-Za-z0-9\s\-()\[\]]", " ", name or "")
    base = re.sub(r"\s+", " ", cleaned).strip()[:180] or "document"
    candidate, n = base, 1
    while candidate in ctx.document_names:
        n += 1
        candidate = f"{base} ({n})"
    ctx.document_names.add(candidate)
    return candidate


def safe_tool_id(call_id: str) -> str:
    """A toolUseId Converse accepts ([a-zA-Z0-9_.:-], 1 to 64 characters). The same id always
    maps to the same result, so a call and its result still match."""
    cleaned = re.sub(r"[^a-zA-Z0-9_.:-]", "_", call_id) or "_"
    if len(cleaned) <= 64:
        return cleaned
    digest = hashlib.sha256(call_id.encode()).hexdigest()[:16]
    return f"{cleaned[:47]}_{digest}"
