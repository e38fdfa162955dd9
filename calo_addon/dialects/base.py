"""What every API dialect provides, and the per-request facts recognition produces.

A dialect is one object that knows one wire format: which paths and hosts are its own, where
the model lives, whether a request streams, how its errors, usage and conversations look, and
which codec translates it. Features ask the dialect; they never branch on the API themselves.
Each API is one subclass of `Dialect`, with one instance (dialects/__init__.py lists them).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson
from mitmproxy import http

from ..translate.neutral import Usage

if TYPE_CHECKING:
    from ..translate.base import Codec


class Refusal(Exception):
    """The proxy answers this request itself, with an error in the caller's API shape."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code  # an API-specific error code, where the dialect's shape has one
        self.headers = headers or {}


Turn = tuple[str, str, tuple[str, ...]]  # (role, text, tool ids and digests): a turn's identity


@dataclass(frozen=True)
class Operation:
    """One recognised API call: which dialect, which operation, and the model if the path has it."""

    dialect: Dialect
    name: str
    path_model: str | None = None  # decoded model id from the path, None when it lives in the body
    needs_body: bool = False  # a JSON body the proxy must read (model, stream flag, rollup)
    path_streams: bool = False  # the path alone says the response streams
    conversation: bool = False  # carries messages: the rollup and translation work on it
    counts_tokens: bool = False  # a token-count call (translated to the upstream's own count)


# Every header that carries a credential in any API: where clients put keys (and Bedrock's
# session token), and where real credentials go upstream.
CREDENTIAL_HEADERS = ("authorization", "x-goog-api-key", "x-api-key", "x-amz-security-token")
# auth style -> the header its keys go in
KEY_HEADER_OF_STYLE = {
    "bearer": "authorization",
    "x-goog-api-key": "x-goog-api-key",
    "x-api-key": "x-api-key",
}
CLIENT_AWS_PREFIX = "x-aws-"  # Bedrock passthrough credentials a client hands the proxy


class Dialect:
    """One API's wire format. Defaults fit an API call without a conversation."""

    name: str = ""
    hosts: tuple[str, ...] = ()  # the API's public hosts (explicit proxy mode claims them)
    default_auth: str = "bearer"  # how keys are sent to this API's upstreams ("auto" auth)
    # other APIs this API's own hosts also serve as they are (Google serves OpenAI's): a call
    # in one of them passes through unless the route names its `api:`
    also_serves: tuple[str, ...] = ()
    own_auth: tuple[str, ...] = ()  # auth styles only this API uses: a route with one speaks it
    # keys of a turn that is only a role and a text, whose canonical form is (role, text, ()):
    # lets the rollup compare many such turns in C; None when the dialect has no such shape
    plain_turn: tuple[str, str] | None = None

    # ------------------------------------------------------------ recognition

    def recognise(self, method: str, path: str, key_source: str | None) -> Operation | None:
        return None

    def claims_path(self, path: str) -> bool:
        """Whether an unrecognised path looks like this API's (to pick the 404's shape)."""
        return False

    def owns_host(self, host: str) -> bool:
        return host in self.hosts

    # ------------------------------------------------------------ request

    def model(self, op: Operation, body: Any) -> str | None:
        return op.path_model

    def set_model(self, op: Operation, request: http.Request, body: Any, model: str) -> bool:
        """Rewrite the model where this API keeps it; True when the JSON body changed."""
        return False

    def streams(self, op: Operation, request: http.Request, body: Any) -> bool:
        return op.path_streams

    def ask_stream_usage(self, op: Operation, body: Any) -> bool:
        """Make a streamed request ask for its token usage where the API only reports it on
        request; True when the body changed."""
        return False

    def upstream_path(self, op: Operation, path: str, upstream: Dialect) -> str:
        """The path a passthrough call takes on an upstream speaking `upstream`'s layer."""
        return path

    def default_url(self, region: str) -> str | None:
        """Where an unrouted call goes; None for the configured base_url."""
        return None

    # ------------------------------------------------------------ answers

    def error(self, status: int, message: str, code: str | None = None) -> http.Response:
        raise NotImplementedError

    def usage(self, event_type: str | None, payload: Any) -> Usage | None:
        """Token usage in a whole answer or one stream event, where it carries some."""
        return None

    def finished(self, event_type: str | None, payload: Any) -> bool:
        """Whether this stream event is the protocol's last (the answer is complete)."""
        return False

    def error_message(self, payload: Any) -> str | None:
        """The human text of an error body in this API's shape (`{"error": {"message"}}`, as
        Gemini, OpenAI and Anthropic write it)."""
        error = payload.get("error") if isinstance(payload, dict) else None
        return str(error.get("message")) if isinstance(error, dict) else None

    # ------------------------------------------------------------ conversation (rollup)

    def turns(self, op: Operation, body: Any) -> list | None:
        """The conversation's turns (without system ones), or None: no rollup."""
        return None

    def canonical(self, message: Any) -> Turn:
        return ("?", repr(message), ())

    def is_boundary(self, message: Any) -> bool:
        """An assistant turn with no pending tool call: where a remembered conversation ends."""
        return False

    def inject(self, op: Operation, body: Any, remaining: list, context: str) -> None:
        """Replace the turns with `remaining` and put `context` in the system prompt."""
        raise NotImplementedError

    def reply(self, op: Operation, payload: Any) -> Any:
        """The assistant's turn in a whole answer, in this API's message shape."""
        return None

    # ------------------------------------------------------------ translation

    def codec(self, op: Operation | None = None, model: str | None = None) -> Codec | None:
        """The translation codec for conversations in this API (None: not translatable)."""
        return None

    def upstream_for(self, client: Dialect, model: str, streaming: bool) -> tuple[Codec, str]:
        """For a conversation translated from `client` to this API: the codec that writes the
        request and reads the answer, and the path (with query) it goes to."""
        codec = self.codec(None, model)
        if codec is None:
            raise Refusal(400, f"calls cannot be translated to {self.name}")
        return codec, self.translated_path(model, streaming)

    def translated_path(self, model: str, streaming: bool) -> str:
        raise NotImplementedError

    # whether this API's streams can be written for a translated call (SSE can; the AWS
    # event stream's framing has no writer in botocore)
    streams_translated: bool = True

    def count_request(self, request: Any, model: str) -> tuple[Codec, str, dict] | None:
        """A token count of `request` (neutral) in this API's own count call: (codec, path,
        body); None when the API has none."""
        return None

    def count_answer_tokens(self, payload: Any) -> int | None:
        """The tokens this API's count call answered."""
        return None

    def count_answer(self, tokens: int) -> dict[str, Any]:
        """A count answer in this API's shape, for its clients."""
        raise Refusal(400, f"{self.name} has no token count call")

    def translated_headers(self) -> dict[str, str]:
        """Headers this API requires that a request translated from another API lacks."""
        return {}


class ModelInBody(Dialect):
    """APIs whose model and stream flag live in the JSON body (OpenAI, Anthropic, Responses)."""

    def model(self, op: Operation, body: Any) -> str | None:
        if not op.needs_body:
            return None
        value = body_dict(body).get("model")
        if value is not None and not isinstance(value, str):
            raise Refusal(400, "'model' must be a string")
        return value

    def set_model(self, op: Operation, request: http.Request, body: Any, model: str) -> bool:
        body_dict(body)["model"] = model
        return True

    def streams(self, op: Operation, request: http.Request, body: Any) -> bool:
        return op.conversation and body_dict(body).get("stream") is True


def body_dict(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Refusal(400, "request body must be a JSON object")
    return body


def listed_turns(op: Operation, body: Any, key: str = "messages") -> list | None:
    """`body[key]` when it is a list and the operation is a conversation, else None."""
    turns = body.get(key) if isinstance(body, dict) else None
    return turns if isinstance(turns, list) and op.conversation else None


def block_boundary(message: Any, is_tool_call: Callable[[dict], bool]) -> bool:
    """An assistant message whose content blocks call no tool (Anthropic, Bedrock)."""
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return False
    content = message.get("content")
    blocks = content if isinstance(content, list) else []
    return not any(isinstance(b, dict) and is_tool_call(b) for b in blocks)


def block_turn(message: Any, tool_id: Any) -> Turn:
    """The identity of a message whose content is a string or a list of blocks: its text; its
    tool blocks by the id `tool_id(block)` gives (None: not a tool block); thinking skipped (it
    comes back as it was sent); any other block (an image, a file) by its digest."""
    if not isinstance(message, dict):
        return ("?", repr(message), ())
    role, content = message.get("role") or "", message.get("content")
    if isinstance(content, str):
        return (role, content, ())
    texts, tools = [], []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        ident = tool_id(block)
        if ident is not None:
            tools.append(str(ident))
        elif block.get("type") in ("thinking", "redacted_thinking") or "reasoningContent" in block:
            continue
        else:
            text, others = text_of([block])
            texts.append(text)
            tools += others
    return (role, "".join(texts), tuple(tools))


_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


def decode_model(segment: str, allow_slash: bool = False) -> str:
    """Percent-decode a model id from a path segment; refuse ids that try to leave the segment."""
    model = unquote(segment)
    bad = (
        not model
        or _CONTROL.search(model)
        or ".." in model
        or model == "."
        or (not allow_slash and "/" in model)
    )
    if bad:
        raise Refusal(400, f"invalid model name {model!r}")
    return model


def json_response(
    status: int, payload: Any, headers: dict[str, str] | None = None
) -> http.Response:
    return http.Response.make(
        status, orjson.dumps(payload), {"content-type": "application/json", **(headers or {})}
    )


def digest(value: Any) -> str:
    """A stable short fingerprint of a JSON value (an image, a file): turn identity beyond text,
    the same in every process (shared state) and never the content itself."""
    try:
        data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        data = repr(value).encode()
    return "#" + hashlib.blake2b(data, digest_size=8).hexdigest()


def text_of(content: Any, text_key: str = "text") -> tuple[str, list[str]]:
    """(the text of a content value, digests of its non-text parts): a string, or a list of
    parts where text parts carry `text_key`. Every non-text part counts for identity."""
    if isinstance(content, str):
        return content, []
    texts, others = [], []
    for part in content if isinstance(content, list) else []:
        if isinstance(part, dict) and isinstance(part.get(text_key), str) and len(part) <= 2:
            texts.append(part[text_key])
        elif isinstance(part, dict) and part.get("type") in ("text", "input_text", "output_text"):
            texts.append(str(part.get(text_key, "")))
        else:
            others.append(digest(part))
    return "".join(texts), others
