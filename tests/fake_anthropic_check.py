"""Refuses an Anthropic Messages body the way the real API does (400 invalid_request_error),
for FakeAnthropic and for FakeBedrock's InvokeModel on anthropic.* models.

The fakes are the oracle of the translation tests: a translated request that the real API
would refuse must be refused here too. Messages follow the real API's wording where known.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from tests.fake_server import words

MESSAGES_FIELDS = words(
    "model messages max_tokens system metadata stop_sequences stream temperature top_p top_k "
    "tools tool_choice thinking service_tier container mcp_servers context_management "
    "output_config output_format inference_geo cache_control compaction diagnostics speed "
    "billing_policy fallbacks fallback_credit_token thread"
)
COUNT_FIELDS = words(
    "model messages system tools tool_choice thinking mcp_servers context_management "
    "output_config output_format cache_control compaction speed billing_policy"
)
THINKING_TYPES = ("enabled", "disabled", "adaptive", "between_tools")
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
USER_BLOCKS = frozenset(
    {"text", "image", "document", "tool_result", "search_result", "container_upload"}
)
ASSISTANT_BLOCKS = frozenset(
    {
        "text",
        "thinking",
        "redacted_thinking",
        "tool_use",
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
    }
)
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
SERVER_TOOL = re.compile(r"^[a-z_]+_\d{8}$")
THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"


class Refused(Exception):
    """The request is refused: ``status`` and Anthropic error ``kind`` with ``message``."""

    def __init__(self, message: str, kind: str = "invalid_request_error", status: int = 400):
        super().__init__(message)
        self.message, self.kind, self.status = message, kind, status


def check_body(
    body: Any,
    allowed: frozenset[str] = MESSAGES_FIELDS,
    *,
    required: tuple[str, ...] = ("model", "messages", "max_tokens"),
    signatures: dict[str, str] | None = None,
    strict_alternation: bool = True,
) -> None:
    """Raise ``Refused`` for what the real API refuses. ``signatures`` (signature -> thinking
    text it was issued for), when given, must vouch for every thinking block in the history."""
    if not isinstance(body, dict):
        raise Refused("Request body must be a JSON object")
    for name in body:
        if name not in allowed:
            raise Refused(f"{name}: Extra inputs are not permitted")
    for name in required:
        if name not in body:
            raise Refused(f"{name}: Field required")
    if "max_tokens" in body and not _positive_int(body["max_tokens"]):
        raise Refused("max_tokens: Input should be greater than or equal to 1")
    _check_sampling(body)
    _check_system(body.get("system"))
    messages = body.get("messages")
    _check_messages(messages, strict_alternation)
    _check_tools(body.get("tools"), body.get("tool_choice"))
    _check_thinking(body)
    if signatures is not None:
        _check_signatures(_turns(messages), signatures)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_sampling(body: dict) -> None:
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and not (isinstance(value, int | float) and 0 <= value <= 1):
            raise Refused(f"{name}: Input should be less than or equal to 1")
    stops = body.get("stop_sequences")
    if stops is not None and not (
        isinstance(stops, list) and all(isinstance(s, str) and s.strip() for s in stops)
    ):
        raise Refused("stop_sequences: each stop sequence must contain non-whitespace")


def _check_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise Refused("system: Input should be a valid list")
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise Refused(f"system.{i}.type: Input should be 'text'")
        if not block.get("text"):
            raise Refused("system: text content blocks must be non-empty")


def _check_messages(messages: Any, strict_alternation: bool) -> None:
    """``system`` messages (text only) may sit among the others; the rules on turns apply
    to the user and assistant messages around them."""
    if not isinstance(messages, list):
        raise Refused("messages: Input should be a valid list")
    if not messages:
        raise Refused("messages: at least one message is required")
    turns, previous = [], None
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "system":
            _check_system_message(i, message.get("content"))
            continue
        if role not in ("user", "assistant"):
            raise Refused(f"messages.{i}.role: Input should be 'user', 'assistant' or 'system'")
        if previous is None and role != "user":
            raise Refused('messages: first message must use the "user" role')
        if strict_alternation and role == previous:
            raise Refused(
                f'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{role}" roles in a row'
            )
        last = i == len(messages) - 1
        _check_content(i, role, message.get("content"), final_assistant=last)
        turns.append(message)
        previous = role
    if not turns:
        raise Refused("messages: at least one user message is required")
    _check_tool_pairs(turns)


def _check_system_message(i: int, content: Any) -> None:
    blocks = _blocks(content)
    if not blocks or any(
        not isinstance(b, dict) or b.get("type") != "text" or not b.get("text") for b in blocks
    ):
        raise Refused(f"messages.{i}: a system message holds non-empty text blocks only")


def _turns(messages: Any) -> list[dict]:
    """The user and assistant messages, without the system ones between them."""
    return [m for m in messages or [] if m.get("role") != "system"]


def _blocks(content: Any) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return content if isinstance(content, list) else []


def _check_content(i: int, role: str, content: Any, final_assistant: bool) -> None:
    if not isinstance(content, str | list):
        raise Refused(f"messages.{i}.content: Input should be a valid list")
    if not content and not (final_assistant and role == "assistant"):
        raise Refused(
            f"messages.{i}: all messages must have non-empty content except for the "
            "optional final assistant message"
        )
    allowed = USER_BLOCKS if role == "user" else ASSISTANT_BLOCKS
    seen_other = False
    for j, block in enumerate(_blocks(content)):
        kind = block.get("type") if isinstance(block, dict) else None
        where = f"messages.{i}.content.{j}"
        if kind not in allowed:
            raise Refused(f"{where}.type: '{kind}' blocks are not allowed in {role} messages")
        if kind == "text" and not (isinstance(block.get("text"), str) and block["text"]):
            raise Refused("messages: text content blocks must be non-empty")
        if kind == "image":
            _check_image(where, block.get("source"))
        if kind == "tool_use":
            _check_tool_use(where, block)
        if kind == "tool_result":
            if seen_other:
                raise Refused(
                    f"{where}: tool_result blocks must come first in the content of a user "
                    "message; any text must come after all tool results"
                )
            _check_tool_result(where, block)
        else:
            seen_other = True
        if kind == "thinking" and not (
            isinstance(block.get("thinking"), str) and isinstance(block.get("signature"), str)
        ):
            raise Refused(f"{where}.thinking.signature: Field required")


def _check_image(where: str, source: Any) -> None:
    if not isinstance(source, dict):
        raise Refused(f"{where}.image.source: Field required")
    if source.get("type") == "url":
        if not isinstance(source.get("url"), str):
            raise Refused(f"{where}.image.source.url.url: Field required")
        return
    if source.get("type") != "base64":
        raise Refused(f"{where}.image.source: Input tag '{source.get('type')}' is not expected")
    if source.get("media_type") not in IMAGE_TYPES:
        raise Refused(
            f"{where}.image.source.base64.media_type: Input should be 'image/jpeg', "
            "'image/png', 'image/gif' or 'image/webp'"
        )
    try:
        base64.b64decode(source.get("data") or "", validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise Refused(f"{where}.image.source.base64.data: Invalid base64 data") from None


def _check_tool_use(where: str, block: dict) -> None:
    if not (isinstance(block.get("id"), str) and TOOL_ID.match(block["id"])):
        raise Refused(f"{where}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
    if not isinstance(block.get("name"), str) or not block["name"]:
        raise Refused(f"{where}.tool_use.name: Field required")
    if not isinstance(block.get("input"), dict):
        raise Refused(f"{where}.tool_use.input: Input should be a valid dictionary")


def _check_tool_result(where: str, block: dict) -> None:
    if not isinstance(block.get("tool_use_id"), str):
        raise Refused(f"{where}.tool_result.tool_use_id: Field required")
    content = block.get("content")
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise Refused(f"{where}.tool_result.content: Input should be a valid list")
    for k, inner in enumerate(content):
        kind = inner.get("type") if isinstance(inner, dict) else None
        if kind not in ("text", "image", "document", "search_result"):
            raise Refused(f"{where}.tool_result.content.{k}.type: '{kind}' is not allowed")
        if kind == "text" and not inner.get("text"):
            raise Refused("messages: text content blocks must be non-empty")
        if kind == "image":
            _check_image(f"{where}.tool_result.content.{k}", inner.get("source"))


def _ids(message: dict, kind: str, key: str) -> list[str]:
    return [b.get(key) for b in _blocks(message.get("content")) if b.get("type") == kind]


def _check_tool_pairs(messages: list[dict]) -> None:
    """Each tool_result answers a tool_use of the message just before; each tool_use is
    answered in the message just after; tool_use ids are unique."""
    for i, message in enumerate(messages):
        previous = _ids(messages[i - 1], "tool_use", "id") if i else []
        for j, block in enumerate(_blocks(message.get("content"))):
            if block.get("type") == "tool_result" and block.get("tool_use_id") not in previous:
                raise Refused(
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                    f"`tool_result` blocks: {block.get('tool_use_id')}. Each `tool_result` "
                    "block must have a corresponding `tool_use` block in the previous message."
                )
    seen: set[str] = set()
    for i, message in enumerate(messages):
        uses = _ids(message, "tool_use", "id")
        if seen & set(uses) or len(set(uses)) != len(uses):
            raise Refused(f"messages.{i}: `tool_use` ids must be unique")
        seen.update(uses)
        if uses and i + 1 < len(messages):
            answered = set(_ids(messages[i + 1], "tool_result", "tool_use_id"))
            missing = [u for u in uses if u not in answered]
            if missing:
                raise Refused(
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing)}. Each `tool_use` block must have "
                    "a corresponding `tool_result` block in the next message."
                )


def _check_tools(tools: Any, tool_choice: Any) -> None:
    names = []
    for k, tool in enumerate(tools or []):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind and kind != "custom" and SERVER_TOOL.match(kind):
            names.append(tool.get("name"))
            continue
        name = tool.get("name") if isinstance(tool, dict) else None
        if not (isinstance(name, str) and TOOL_NAME.match(name)):
            raise Refused(
                f"tools.{k}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
            )
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise Refused(f"tools.{k}.custom.input_schema.type: Input should be 'object'")
        names.append(name)
    if len(set(names)) != len(names):
        raise Refused("tools: Tool names must be unique.")
    if tool_choice is None:
        return
    kind = tool_choice.get("type") if isinstance(tool_choice, dict) else None
    if kind not in ("auto", "any", "tool", "none"):
        raise Refused(f"tool_choice: Input tag '{kind}' is not expected")
    if kind == "tool" and tool_choice.get("name") not in names:
        raise Refused(f"tool_choice: tool '{tool_choice.get('name')}' not found in tools")


def _check_thinking(body: dict) -> None:
    thinking = body.get("thinking")
    if thinking is None:
        return
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in THINKING_TYPES:
        raise Refused(f"thinking: Input tag '{kind}' is not expected")
    if kind in ("disabled", "between_tools"):
        return
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            raise Refused(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            )
        if "max_tokens" in body and budget >= body["max_tokens"]:
            raise Refused(
                "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult "
                f"our documentation at {THINKING_DOCS}#max-tokens-and-context-window-size"
            )
        _check_final_assistant_thinks(_turns(body.get("messages")))
    if body.get("temperature") not in (None, 1):
        raise Refused("`temperature` may only be set to 1 when thinking is enabled.")
    if body.get("top_k") is not None:
        raise Refused("`top_k` is not supported when thinking is enabled.")
    if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        raise Refused("Thinking may not be enabled when tool_choice forces tool use.")


def _check_final_assistant_thinks(messages: list[dict]) -> None:
    """With thinking enabled, the assistant turn whose tool calls the conversation is
    answering must start with its thinking block, as the real API demands."""
    if len(messages) < 2 or not _ids(messages[-1], "tool_result", "tool_use_id"):
        return
    i = len(messages) - 2
    first = (_blocks(messages[i].get("content")) or [{}])[0]
    if first.get("type") not in ("thinking", "redacted_thinking"):
        raise Refused(
            f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but "
            f"found `{first.get('type')}`. When `thinking` is enabled, a final `assistant` "
            "message must start with a thinking block (preceeding the lastmost set of "
            "`tool_use` and `tool_result` blocks). We recommend you include thinking blocks "
            "from previous turns. To avoid this requirement, disable `thinking`. Please "
            f"consult our documentation at {THINKING_DOCS}"
        )


def _check_signatures(messages: list[dict], issued: dict[str, str]) -> None:
    for i, message in enumerate(messages):
        for j, block in enumerate(_blocks(message.get("content"))):
            if block.get("type") != "thinking":
                continue
            signature = block.get("signature")
            if signature not in issued or issued[signature] != block.get("thinking"):
                raise Refused(f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
