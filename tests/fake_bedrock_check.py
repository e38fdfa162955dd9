"""Refuses a Bedrock Converse body, or an Anthropic-on-Bedrock InvokeModel body, the way
Bedrock does (400 ValidationException), for FakeBedrock. Messages follow Bedrock's wording
where known."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from tests.fake_anthropic_check import MESSAGES_FIELDS, Refused, check_body
from tests.fake_server import words

CONVERSE_FIELDS = words(
    "messages system inferenceConfig toolConfig guardrailConfig additionalModelRequestFields "
    "promptVariables additionalModelResponseFieldPaths requestMetadata performanceConfig "
    "serviceTier outputConfig"
)
INFERENCE = words("maxTokens temperature topP stopSequences")
BLOCKS = words(
    "text image document video toolUse toolResult guardContent cachePoint reasoningContent "
    "citationsContent searchResult"
)
INVOKE_FIELDS = (MESSAGES_FIELDS - {"model", "stream", "container", "mcp_servers"}) | {
    "anthropic_version",
    "anthropic_beta",
}
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ALTERNATE = (
    "A conversation must alternate between user and assistant roles. Make sure the "
    "conversation alternates between user and assistant roles and try again."
)


def check_converse(body: Any, signatures: dict[str, str] | None) -> None:
    """Raise ``Refused`` (Bedrock's ValidationException) for what Converse refuses."""
    if not isinstance(body, dict):
        raise Refused("Malformed input request, please reformat your input and try again.")
    for name in body:
        if name not in CONVERSE_FIELDS:
            raise Refused(f"Malformed input request: extraneous key [{name}] is not permitted")
    for name in body.get("inferenceConfig") or {}:
        if name not in INFERENCE:
            raise Refused(f"Malformed input request: extraneous key [inferenceConfig.{name}]")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or messages[0].get("role") != "user":
        raise Refused(
            "A conversation must start with a user message. Try again with a conversation "
            "that starts with a user message."
        )
    for i, message in enumerate(messages):
        if message.get("role") not in ("user", "assistant"):
            raise Refused(f"Invalid role at messages.{i}: {message.get('role')}")
        if i and message["role"] == messages[i - 1]["role"]:
            raise Refused(ALTERNATE)
        _check_blocks(i, message)
    has_tools = any(blocks_of(m, "toolUse") or blocks_of(m, "toolResult") for m in messages)
    if has_tools and not (body.get("toolConfig") or {}).get("tools"):
        raise Refused(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        )
    _check_tool_pairs(messages)
    _check_tool_config(body.get("toolConfig"))
    _check_thinking(body)
    if signatures is not None:
        _check_signatures(messages, signatures)


def blocks_of(message: dict, kind: str) -> list[dict]:
    return [b[kind] for b in message.get("content") or [] if isinstance(b, dict) and kind in b]


def _check_blocks(i: int, message: dict) -> None:
    content = message.get("content")
    if not isinstance(content, list) or not content:
        raise Refused(f"The content field in the Message object at messages.{i} is empty.")
    for j, block in enumerate(content):
        kinds = [k for k in block if k in BLOCKS] if isinstance(block, dict) else []
        where = f"messages.{i}.content.{j}"
        if len(kinds) != 1 or len(block) != 1:
            raise Refused(f"The ContentBlock at {where} must set exactly one known member.")
        inner = block[kinds[0]]
        if kinds[0] == "text" and not (isinstance(inner, str) and inner.strip()):
            raise Refused(
                f"The text field in the ContentBlock object at {where} is blank. Add text to "
                "the text field, and try again."
            )
        if kinds[0] == "image":
            _check_image(where, inner)
        if kinds[0] == "toolUse" and not (
            NAME.match(str(inner.get("name")))
            and NAME.match(str(inner.get("toolUseId")))
            and "input" in inner
        ):
            raise Refused(f"The toolUse at {where} needs a valid toolUseId, name and input.")
        if kinds[0] == "toolResult" and inner.get("status") == "error" and not inner.get("content"):
            raise Refused(
                f"The content field at {where}.toolResult cannot be empty when status value "
                "is error."
            )


def _check_image(where: str, image: Any) -> None:
    if not isinstance(image, dict) or image.get("format") not in ("png", "jpeg", "gif", "webp"):
        raise Refused(f"The format of the image at {where} must be png, jpeg, gif or webp.")
    source = image.get("source") or {}
    if "bytes" in source:
        try:
            base64.b64decode(source["bytes"], validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise Refused(f"Invalid base64 image bytes at {where}.") from None
    elif "s3Location" not in source:
        raise Refused(f"The image at {where} needs a source.")


def _check_tool_pairs(messages: list[dict]) -> None:
    for i, message in enumerate(messages):
        results = [r.get("toolUseId") for r in blocks_of(message, "toolResult")]
        asked = [u.get("toolUseId") for u in blocks_of(messages[i - 1], "toolUse")] if i else []
        if len(results) > len(asked):
            raise Refused(
                f"The number of toolResult blocks at messages.{i}.content exceeds the number "
                "of toolUse blocks of previous turn."
            )
        if stray := [r for r in results if r not in asked]:
            raise Refused(
                f"The toolResult blocks at messages.{i}.content contain toolUseIds that match "
                f"no toolUse of the previous turn: {', '.join(map(str, stray))}"
            )
        if asked and (missing := [a for a in asked if a not in results]):
            raise Refused(
                f"Expected toolResult blocks at messages.{i}.content for the following Ids: "
                f"{', '.join(missing)}"
            )


def _check_tool_config(config: Any) -> None:
    if config is None:
        return
    names = []
    for k, tool in enumerate(config.get("tools") or []):
        spec = tool.get("toolSpec")
        if spec is None:
            continue
        if not NAME.match(str(spec.get("name"))):
            raise Refused(f"The value at toolConfig.tools.{k}.toolSpec.name is not valid.")
        schema = (spec.get("inputSchema") or {}).get("json")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise Refused(
                f"The value at toolConfig.tools.{k}.toolSpec.inputSchema.json.type must be "
                "one of the following: object."
            )
        names.append(spec["name"])
    choice = config.get("toolChoice")
    if choice and "tool" in choice and choice["tool"].get("name") not in names:
        raise Refused("The tool named in toolConfig.toolChoice is not in toolConfig.tools.")


def check_model_fields(model: str, body: dict) -> None:
    """Family rules of additionalModelRequestFields: Nova 2's `reasoningConfig` (an effort
    level; at "high", no maxTokens), which other models do not take."""
    config = (body.get("additionalModelRequestFields") or {}).get("reasoningConfig")
    if config is None:
        return
    if not re.search(r"nova-[2-9]-", model):
        raise Refused(
            "Malformed input request: #: extraneous key [reasoningConfig] is not permitted, "
            "please reformat your input and try again."
        )
    if config.get("type") != "enabled":
        return
    effort = config.get("maxReasoningEffort")
    if effort not in ("low", "medium", "high"):
        raise Refused(f"Invalid maxReasoningEffort: {effort!r}")
    if effort == "high" and "maxTokens" in (body.get("inferenceConfig") or {}):
        raise Refused(
            "The model returned the following errors: `maxTokens` must be unset when "
            "reasoningConfig type is 'enabled' and maxReasoningEffort is 'high'."
        )


def _check_thinking(body: dict) -> None:
    thinking = (body.get("additionalModelRequestFields") or {}).get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return
    budget = thinking.get("budget_tokens")
    limit = (body.get("inferenceConfig") or {}).get("maxTokens")
    if not isinstance(budget, int) or budget < 1024:
        raise Refused(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        )
    if limit is not None and budget >= limit:
        raise Refused("`max_tokens` must be greater than `thinking.budget_tokens`.")


def _check_signatures(messages: list[dict], issued: dict[str, str]) -> None:
    for i, message in enumerate(messages):
        for j, block in enumerate(message["content"]):
            text = (block.get("reasoningContent") or {}).get("reasoningText")
            if text is not None and issued.get(text.get("signature")) != text.get("text"):
                raise Refused(f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")


def check_invoke(body: Any, signatures: dict[str, str] | None) -> None:
    """The Anthropic-on-Bedrock body: Bedrock's own rules, then Anthropic's."""
    if not isinstance(body, dict):
        raise Refused("Malformed input request, please reformat your input and try again.")
    for name in body:
        if name not in INVOKE_FIELDS:
            raise Refused(
                f"Malformed input request: #: extraneous key [{name}] is not permitted, please "
                "reformat your input and try again."
            )
    for name in ("anthropic_version", "max_tokens"):
        if name not in body:
            raise Refused(
                f"Malformed input request: #: required key [{name}] not found, please reformat "
                "your input and try again."
            )
    if body["anthropic_version"] != "bedrock-2023-05-31":
        raise Refused("Invalid anthropic_version: only bedrock-2023-05-31 is supported.")
    check_body(body, INVOKE_FIELDS, required=("messages", "max_tokens"), signatures=signatures)
