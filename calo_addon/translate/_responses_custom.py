"""Custom (freeform) tools such as Codex's apply_patch, for upstreams that only know JSON
functions: the tool becomes a function with one string argument, `input`, whose description
carries the grammar when it is small; a call's raw input is `arguments["input"]`, and in
streams the JSON text of `{"input": "..."}` is converted to and from raw input deltas.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from . import neutral

SMALL_GRAMMAR = 4096  # grammar definitions up to this size are shown to non-OpenAI models


def read_custom_tool(tool: dict[str, Any], name: str) -> neutral.Tool:
    """A freeform tool becomes a function with one string argument, `input`."""
    fmt = tool.get("format") if isinstance(tool.get("format"), dict) else None
    return neutral.Tool(
        name=name,
        description=tool.get("description"),
        parameters={
            "type": "object",
            "properties": {"input": {"type": "string", "description": custom_input_help(fmt)}},
            "required": ["input"],
        },
        tool_kind="custom",
        format=fmt,
    )


def custom_input_help(fmt: dict[str, Any] | None) -> str:
    """What a model that only knows JSON functions must put in `input`."""
    plain = "The tool's raw input as plain text, passed to it verbatim (not JSON)."
    if not fmt or fmt.get("type") != "grammar":
        return plain
    syntax = fmt.get("syntax") or "grammar"
    definition = fmt.get("definition")
    if isinstance(definition, str) and len(definition.encode()) <= SMALL_GRAMMAR:
        return f"{plain} It must follow this {syntax} grammar:\n{definition}"
    return f"{plain} It must follow the tool's {syntax} grammar described in its description."


def custom_input(arguments: dict[str, Any] | str) -> str:
    """A custom tool call's raw input from neutral arguments (`{"input": ...}` by convention;
    a model that named the one string argument otherwise still gets its text through; text
    that was never JSON is the input itself)."""
    if isinstance(arguments, str):
        return arguments
    value = arguments.get("input")
    if isinstance(value, str):
        return value
    strings = [v for v in arguments.values() if isinstance(v, str)]
    if len(arguments) == 1 and strings:
        return strings[0]
    return json.dumps(arguments, ensure_ascii=False) if arguments else ""


_INPUT_OPENING = re.compile(r'\s*\{\s*"input"\s*:\s*"')
_STRING_BODY = re.compile(r'(?:[^"\\]|\\.)*', re.DOTALL)


def _decode_prefix(body: str) -> tuple[str, int]:
    """Decode the longest complete prefix of a JSON string body: (text, raw characters used).
    An escape cut short waits for the next fragment, and so does the first half of an escaped
    surrogate pair, so no delta carries half a character."""
    for cut in range(6):
        segment = body[: len(body) - cut]
        try:
            text = json.loads(f'"{segment}"')
        except ValueError:
            continue
        if text and "\ud800" <= text[-1] <= "\udbff":
            segment, text = segment[:-6], text[:-1]
        return text, len(segment)
    return "", 0


@dataclass
class CustomInputStream:
    """Neutral argument fragments (JSON text of `{"input": "..."}`) -> raw input deltas, each
    fragment decoded once."""

    raw: str = ""
    sent: str = ""
    _consumed: int | None = None  # where undecoded string text starts in `raw`

    def feed(self, fragment: str) -> str:
        self.raw += fragment
        if self._consumed is None:
            opening = _INPUT_OPENING.match(self.raw)
            if opening is None:
                return ""  # not (yet) {"input": "...: finish() sends the input whole
            self._consumed = opening.end()
        string_body = _STRING_BODY.match(self.raw, self._consumed)
        assert string_body is not None  # the pattern matches the empty string too
        body = string_body.group(0)
        text, used = _decode_prefix(body)
        self._consumed += used
        self.sent += text
        return text

    def finish(self) -> tuple[str, str]:
        """(the rest not sent yet, the whole input)."""
        try:
            value = json.loads(self.raw) if self.raw.strip() else {}
        except ValueError:
            value = {"input": self.raw}
        whole = custom_input(value) if isinstance(value, dict) else self.raw
        return (whole[len(self.sent) :] if whole.startswith(self.sent) else ""), whole


def input_fragment(raw: str) -> str:
    """Raw custom input text -> a fragment of the JSON string it sits in."""
    return json.dumps(raw, ensure_ascii=False)[1:-1]
