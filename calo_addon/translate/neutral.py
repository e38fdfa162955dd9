"""The neutral form of a conversation: what every protocol reader produces and every writer
consumes. Rich enough that a round trip through it loses nothing a protocol carries.

One reader and one writer per protocol (N+M): a request read from the client's protocol is
written in the upstream's; the upstream's answer (whole, or as stream events) is read back
into this form and written in the client's protocol.

Conventions every reader and writer keeps:
- Roles are "user" and "assistant" only. System text is `Request.system`; a protocol's
  system/developer turns inside its message list join it (in order) and the reader says so.
- Tool calls carry an id. Where a protocol has none (Gemini), the reader makes one
  (`new_call_id()`), unique per call, so parallel calls never collide.
- Tool call arguments are a JSON object (dict) in whole answers and requests; in streams they
  arrive as JSON text fragments (`PartDelta.arguments`) whose concatenation is that object.
  One exception: an upstream answer whose arguments text does not parse keeps that text (a str)
  for the client to see, as streamed fragments would have shown it.
- `Thinking.signature` is opaque: a writer puts it back exactly where its protocol keeps it.
  Gemini's `thoughtSignature` on a part becomes a `Thinking` part (text maybe empty) placed
  right before the part that carried it, with `Thinking.attached = True`; the Gemini writer
  puts such a signature back on the part that follows it.
- Usage: `input_tokens` is the whole prompt (cached part included, as Gemini's
  promptTokenCount and OpenAI's prompt_tokens count it); `output_tokens` includes reasoning.
  Writers for protocols that count differently (Anthropic: input excludes cache reads) convert.
- What a reader cannot carry and is advisory it drops, naming the field in `Request.dropped`.
  What would make the answer wrong if dropped raises `Unsupported(field)`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

# ---------------------------------------------------------------- errors


class TranslationError(ValueError):
    """A request or answer that cannot be read or written: 400 in the client's shape."""

    def __init__(self, message: str, field_name: str | None = None):
        super().__init__(message)
        self.field = field_name


class Unsupported(TranslationError):
    """The upstream cannot honour a feature the answer depends on (e.g. a JSON-schema output)."""


# ---------------------------------------------------------------- content parts


@dataclass
class Text:
    text: str
    kind: Literal["text"] = "text"


@dataclass
class Media:
    """An image or document: inline base64 `data`, or a `url` (http(s) or a provider file URI)."""

    media_type: str | None = None  # e.g. "image/png", "application/pdf"
    data: str | None = None  # base64, without any data: prefix
    url: str | None = None
    name: str | None = None  # a file name where the protocol carries one
    detail: str | None = None  # OpenAI image detail ("low" | "high" | "auto")
    kind: Literal["media"] = "media"


@dataclass
class Thinking:
    """Reasoning the model showed (or only signed). `redacted`: opaque data, no text."""

    text: str = ""
    signature: str | None = None
    redacted: bool = False  # Anthropic redacted_thinking; `signature` then holds its data
    attached: bool = False  # Gemini: the signature sat on the part that follows
    summary: list[str] | None = None  # OpenAI Responses reasoning summary texts
    kind: Literal["thinking"] = "thinking"


# "custom": a freeform tool (Codex apply_patch); its input is `arguments["input"]` (a str)
ToolKind = Literal["function", "custom"]


@dataclass
class ToolCall:
    id: str
    name: str
    # a str: an upstream answer's arguments text that is not JSON, kept as the model wrote it
    arguments: dict[str, Any] | str = field(default_factory=dict)
    tool_kind: ToolKind = "function"
    kind: Literal["tool_call"] = "tool_call"


@dataclass
class ToolResult:
    id: str  # the ToolCall.id it answers
    content: list[Text | Media] = field(default_factory=list)
    name: str | None = None  # the tool's name (Gemini needs it); readers fill it from history
    is_error: bool = False
    kind: Literal["tool_result"] = "tool_result"


Part = Text | Media | Thinking | ToolCall | ToolResult
Role = Literal["user", "assistant"]


@dataclass
class Message:
    role: Role
    parts: list[Part] = field(default_factory=list)


# ---------------------------------------------------------------- request settings


@dataclass
class Tool:
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None  # JSON Schema, passed whole (never sanitised)
    tool_kind: ToolKind = "function"
    strict: bool | None = None
    # custom (freeform) tools: the grammar or format the client declared, kept for the log
    format: dict[str, Any] | None = None


@dataclass
class HostedTool:
    """A tool the provider runs itself: "web_search" (Gemini googleSearch), "code_execution"."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)


ToolChoiceMode = Literal["auto", "none", "required", "tool"]


@dataclass
class ToolChoice:
    mode: ToolChoiceMode = "auto"
    name: str | None = None  # with mode "tool"
    parallel: bool | None = None  # False: at most one call per turn


Effort = Literal["minimal", "low", "medium", "high"]


@dataclass
class Reasoning:
    effort: Effort | None = None
    budget_tokens: int | None = None  # Anthropic/Gemini style budget; 0 disables thinking
    enabled: bool | None = None  # explicit on/off where the protocol says so
    include_thoughts: bool = True  # ask for thought text/summaries back


@dataclass
class OutputFormat:
    """Structured output: a JSON schema the answer must follow (or plain JSON when None)."""

    schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


@dataclass
class Request:
    model: str | None = None
    system: list[Text] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    hosted_tools: list[HostedTool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    reasoning: Reasoning | None = None
    output_format: OutputFormat | None = None
    stream: bool = False
    dropped: list[str] = field(default_factory=list)  # advisory fields a reader left out
    extra: dict[str, Any] = field(default_factory=dict)  # protocol-only details a writer may use


# ---------------------------------------------------------------- answers

StopReason = Literal["end_turn", "max_tokens", "tool_use", "stop_sequence", "refusal", "error"]


@dataclass
class Usage:
    input_tokens: int | None = None  # the whole prompt, cached part included
    output_tokens: int | None = None  # reasoning included
    cached_input_tokens: int | None = None  # part of input_tokens read from a cache
    cache_write_tokens: int | None = None  # part of input_tokens written to a cache (Anthropic)
    reasoning_tokens: int | None = None  # part of output_tokens

    def merged(self, later: Usage) -> Usage:
        """These counts updated by `later` ones where given (a stream reports usage in several
        events: its start knows the input, its end the output)."""
        return Usage(
            **{
                name: getattr(later, name) if getattr(later, name) is not None else value
                for name, value in vars(self).items()
            }
        )

    @property
    def total_tokens(self) -> int | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)


@dataclass
class Response:
    id: str
    model: str | None
    parts: list[Part] = field(default_factory=list)  # Text, Thinking, ToolCall, Media
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)


# ---------------------------------------------------------------- stream events
# A reader turns a protocol's stream events into these; a writer turns these into its
# protocol's events. Indexes number the parts of the answer from 0, in order; a part is
# started, gets deltas, and is stopped before the next one starts (readers serialise
# interleaved upstream parts).


@dataclass
class MessageStart:
    id: str
    model: str | None
    usage: Usage = field(default_factory=Usage)  # input tokens where known this early


@dataclass
class PartStart:
    index: int
    part: Text | Thinking | ToolCall  # empty text / arguments: content comes as deltas


@dataclass
class PartDelta:
    index: int
    text: str | None = None  # Text
    thinking: str | None = None  # Thinking text
    signature: str | None = None  # Thinking signature (whole, usually right before PartStop)
    arguments: str | None = None  # ToolCall: a JSON text fragment


@dataclass
class PartStop:
    index: int


@dataclass
class MessageStop:
    stop_reason: StopReason | None
    usage: Usage = field(default_factory=Usage)
    stop_sequence: str | None = None


@dataclass
class StreamError:
    status: int  # the HTTP status it would have had (429, 500, 529 ...)
    message: str
    kind: str | None = None  # the upstream's error type/code, if any


Event = MessageStart | PartStart | PartDelta | PartStop | MessageStop | StreamError


# ---------------------------------------------------------------- helpers


def new_call_id(prefix: str = "call_") -> str:
    """A fresh tool-call id for protocols whose calls have none (unique per call)."""
    return prefix + secrets.token_hex(12)


def new_message_id(prefix: str = "msg_") -> str:
    return prefix + secrets.token_hex(12)


def fill_tool_names(messages: list[Message]) -> None:
    """Give every ToolResult without a name the name of the ToolCall it answers."""
    names = {
        part.id: part.name
        for message in messages
        for part in message.parts
        if isinstance(part, ToolCall)
    }
    for message in messages:
        for part in message.parts:
            if isinstance(part, ToolResult) and part.name is None:
                part.name = names.get(part.id)


def text_of(parts: list[Part]) -> str:
    return "".join(p.text for p in parts if isinstance(p, Text))


# ---------------------------------------------------------------- reasoning effort <-> budget
# One table for every codec, so a round trip keeps the user's setting: a protocol that speaks in
# effort levels and one that speaks in token budgets meet here.

EFFORT_BUDGETS: dict[Effort, int] = {"minimal": 1024, "low": 4096, "medium": 12288, "high": 32768}


def effort_named(name: str) -> Effort | None:
    """`name` as one of the neutral effort levels, or None when it is none of them: where a
    reader takes a level from the wire, so a protocol's other words never pass as one."""
    for effort in EFFORT_BUDGETS:
        if effort == name:
            return effort
    return None


def budget_for(effort: str) -> int:
    """Thinking tokens for an effort level (unknown levels count as medium)."""
    known = effort_named(effort)
    return EFFORT_BUDGETS[known] if known is not None else EFFORT_BUDGETS["medium"]


def effort_for(budget: int) -> Effort:
    """The smallest effort level whose budget covers `budget` tokens."""
    for effort, tokens in EFFORT_BUDGETS.items():
        if budget <= tokens:
            return effort
    return "high"


def int_or_none(value: Any) -> int | None:
    """A JSON integer (a token count), or None: absent, null, a bool or anything else."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def expect_dict(value: Any, field: str) -> dict[str, Any]:
    """`value` when it is a JSON object, else a TranslationError naming `field`."""
    if not isinstance(value, dict):
        raise TranslationError(f"'{field}' must be an object", field)
    return value


def expect_list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise TranslationError(f"'{field}' must be an array", field)
    return value


def expect_str(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise TranslationError(f"'{field}' must be a string", field)
    return value
