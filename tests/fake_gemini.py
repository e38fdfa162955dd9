"""A fake Gemini API on loopback that behaves like a Gemini 3 thinking model.

``FakeGemini(keys=None, signature_scope="current", text_signature=True, call_ids=False,
accept_dummy_signatures=False, gzip_json=False)``, a context manager. Under ``/v1beta`` and
``/v1``: ``models/{m}:generateContent``, ``:streamGenerateContent`` (``?alt=sse``, or without
it the JSON-array form), ``:countTokens`` (``{"totalTokens": N}``, N = ``token_count`` of the
text parts), ``:embedContent``, ``:batchEmbedContents``, GET ``models`` and ``models/{m}``.

- Auth: ``x-goog-api-key`` (or ``?key=``) required, else 403 PERMISSION_DENIED; if ``keys`` is a
  set, the key must be in it (else 400 API_KEY_INVALID).
- Validation (fake_gemini_check.py), 400 INVALID_ARGUMENT in Google's error shape: unknown
  fields (top level, generationConfig, thinkingConfig, parts, tools, declarations, and JSON
  Schema keywords inside the OpenAPI-subset ``parameters``), empty contents or parts, a role
  other than user/model, a part with two data fields, bad inline base64, a declaration with
  both ``parameters`` and ``parametersJsonSchema``, bad or duplicate function names, function
  responses that do not follow a function-call turn or differ from its calls in count or
  names, and thought signatures: the first functionCall part of each model step must carry
  exactly the signature this fake issued for that call ("Function call is missing a
  thought_signature ..." when absent, "Corrupted thought signature." when not ours).
  ``signature_scope`` "current" checks the steps since the last user text (as the real API),
  "all" every step, "off" none; ``accept_dummy_signatures`` lets Google's documented bypass
  values through.
- Answers: ``scripted`` ``Reply`` / ``Fail`` (tests/fake_server.py), else "echo: <last user
  text>", or "results: <json of each functionResponse.response>" after function responses,
  always with thoughts (counted in ``thoughtsTokenCount``, shown as ``{"text", "thought":
  true}`` parts only when ``thinkingConfig.includeThoughts``). A function-calling answer puts a
  fresh ``thoughtSignature`` on its first functionCall part (``call_ids`` adds ``id`` to each
  call); a text answer carries one on its last text part (``text_signature``; streamed, in a
  final chunk whose text part is empty). A scripted call to an undeclared function is refused
  (400 starting "fake:"). ``Fail(mid_stream=True)`` sends an ``{"error": ...}`` element after
  the first chunk.
- Streams: thoughts and text in several chunks, parallel calls together in one chunk, the last
  chunk with finishReason and the full usage; earlier chunks carry a partial usageMetadata
  (prompt only), as the real API does.
- Records: ``requests``; ``tool_schemas`` (one dict per generate call: function name -> JSON
  text of ``{"parametersJsonSchema": schema}`` or ``{"parameters": schema}``, whichever was
  sent, key order kept); ``issued_signatures`` (decoded signature bytes -> (name, args) of the
  call it was issued with).

``GeminiAPI`` is the protocol itself, a mixin also used by fake_llm.FakeLLM (lenient, with
its historical canned answers); ``gemini_setup`` takes the knobs above plus ``strict`` (False:
no key needed, no validation), ``thought_signatures`` (False: none issued, like Gemini 2.x
without thinking), ``usage_every_chunk`` and ``fixed_count`` (countTokens always answers it).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from tests.fake_gemini_check import Invalid, check_contents, check_request, check_signatures, pick
from tests.fake_server import (
    Fail,
    FakeServer,
    Recorded,
    Reply,
    Usage,
    Wire,
    default_usage,
    joined,
    new_id,
    new_signature,
    pieces,
    token_count,
)

GENERATE = re.compile(r"^/(v1beta|v1)/models/([^/:]+):(\w+)$")
MODELS = re.compile(r"^/(v1beta|v1)/models(/[^/:]+)?$")
CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
FINISH = {"max_tokens": "MAX_TOKENS"}


def error_body(status: int, message: str, code: str | None = None) -> dict:
    return {"error": {"code": status, "message": message, "status": code or CODES.get(status)}}


def gemini_usage(usage: Usage | dict) -> dict:
    if isinstance(usage, dict):
        return usage
    out = {
        "promptTokenCount": usage.prompt,
        "candidatesTokenCount": usage.output,
        "totalTokenCount": usage.prompt + usage.output + usage.thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": usage.prompt}],
    }
    if usage.thoughts:
        out["thoughtsTokenCount"] = usage.thoughts
    if usage.cached:
        out["cachedContentTokenCount"] = usage.cached
    return out


def prompt_text(body: dict) -> str:
    contents = [pick(body, "systemInstruction") or {}, *(pick(body, "contents") or [])]
    return "".join(
        p.get("text", "")
        for c in contents
        if isinstance(c, dict)
        for p in c.get("parts") or []
        if isinstance(p, dict) and not p.get("thought") and isinstance(p.get("text"), str)
    )


def default_reply(body: dict) -> Reply:
    last = body["contents"][-1]
    answered = [pick(p, "functionResponse") for p in last["parts"] if pick(p, "functionResponse")]
    if answered:
        text = "results: " + " | ".join(json.dumps(r["response"]) for r in answered)
    else:
        text = "echo: " + "".join(p.get("text", "") for p in last["parts"])[:200]
    return Reply(text=text, thinking="Let me think about this.")


class GeminiAPI:
    """The Gemini protocol as a mixin of a FakeServer; ``gemini_setup`` sets its knobs."""

    def gemini_setup(
        self,
        *,
        strict: bool = True,
        keys: set[str] | None = None,
        signature_scope: str = "current",
        text_signature: bool = True,
        usage_every_chunk: bool = True,
        call_ids: bool = False,
        accept_dummy_signatures: bool = False,
        fixed_count: int | None = None,
        thought_signatures: bool = True,
    ) -> None:
        self.strict, self.keys, self.signature_scope = strict, keys, signature_scope
        self.text_signature, self.usage_every_chunk = text_signature, usage_every_chunk
        self.call_ids, self.accept_dummy_signatures = call_ids, accept_dummy_signatures
        self.fixed_count, self.thought_signatures = fixed_count, thought_signatures
        self.tool_schemas: list[dict[str, str]] = []
        self.issued_signatures: dict[bytes, tuple[str, dict]] = {}

    def gemini_default_reply(self, body: dict, stream: bool) -> Reply:
        return default_reply(body)

    def gemini_error(self, wire: Wire, status: int, message: str, code=None, headers=None):
        wire.json(error_body(status, message, code), status, headers)

    def gemini_handle(self, request: Recorded, wire: Wire) -> bool:
        """Answer ``request`` if it is a Gemini call; False when the path is not Gemini's."""
        generate, models = GENERATE.match(request.path), MODELS.match(request.path)
        if not (generate or models):
            return False
        key = request.headers.get("x-goog-api-key") or (request.query.get("key") or [""])[0]
        if self.strict and not key:
            self.gemini_error(wire, 403, "Method doesn't allow unregistered callers.")
        elif self.keys is not None and key not in self.keys:
            self.gemini_error(wire, 400, "API key not valid. Please pass a valid API key.")
        elif models:
            model = {"name": "models/gemini-2.5-flash", "supportedGenerationMethods": []}
            wire.json(model if models.group(2) else {"models": [model]})
        else:
            self._gemini_method(request, wire, generate.group(2), generate.group(3))
        return True

    def _gemini_method(self, request: Recorded, wire: Wire, model: str, method: str) -> None:
        try:
            body = json.loads(request.body or b"{}")
        except json.JSONDecodeError:
            return self.gemini_error(wire, 400, "Invalid JSON payload received.")
        if method == "embedContent":
            return wire.json({"embedding": {"values": [0.1, 0.2, 0.3]}})
        if method == "batchEmbedContents":
            return wire.json({"embeddings": [{"values": [0.1, 0.2]}] * len(body["requests"])})
        if method == "countTokens":
            return self._gemini_count(body, wire)
        if method not in ("generateContent", "streamGenerateContent"):
            return self.gemini_error(wire, 404, f"Method {method} not found.")
        try:
            if self.strict:
                check_request(body)
                if self.signature_scope != "off":
                    check_signatures(
                        body["contents"],
                        self.issued_signatures,
                        self.signature_scope,
                        self.accept_dummy_signatures,
                    )
        except Invalid as invalid:
            return self.gemini_error(wire, invalid.status, invalid.message, invalid.code)
        self._gemini_answer(body, wire, model, method == "streamGenerateContent", request)

    def _gemini_count(self, body: dict, wire: Wire) -> None:
        if self.fixed_count is not None:
            return wire.json({"totalTokens": self.fixed_count})
        inner = pick(body, "generateContentRequest") or body
        try:
            check_contents(pick(inner, "contents"))
        except Invalid as invalid:
            return self.gemini_error(wire, invalid.status, invalid.message, invalid.code)
        count = token_count(prompt_text(inner))
        wire.json(
            {
                "totalTokens": count,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": count}],
            }
        )

    def _declared(self, body: dict) -> dict[str, str]:
        schemas = {}
        for tool in pick(body, "tools") or []:
            for declaration in pick(tool, "functionDeclarations") or []:
                for field in ("parametersJsonSchema", "parameters"):
                    if pick(declaration, field) is not None:
                        schemas[declaration["name"]] = json.dumps({field: pick(declaration, field)})
                schemas.setdefault(declaration.get("name"), "{}")
        return schemas

    def _gemini_answer(self, body, wire: Wire, model: str, stream: bool, request) -> None:
        declared = self._declared(body)
        self.tool_schemas.append(declared)
        script = self.next_script(Reply, Fail)
        if isinstance(script, Fail) and not (script.mid_stream and stream):
            headers = {"retry-after": script.retry_after} if script.retry_after else {}
            code = script.kind or CODES.get(script.status)
            return self.gemini_error(wire, script.status, script.message, code, headers)
        reply = script if isinstance(script, Reply) else self.gemini_default_reply(body, stream)
        missing = [name for name, _ in reply.tool_calls if name not in declared]
        if self.strict and missing:
            return self.gemini_error(
                wire, 400, f"fake: scripted call to '{missing[0]}', undeclared"
            )
        thinking = pick(pick(body, "generationConfig") or {}, "thinkingConfig") or {}
        answer = GeminiAnswer(self, reply, bool(pick(thinking, "includeThoughts")))
        usage = reply.usage or default_usage(reply, prompt_text(body))
        rid = new_id("", 22)
        if not stream:
            return wire.json(answer.response(model, rid, usage))
        chunks = answer.chunks(model, rid, usage, script if isinstance(script, Fail) else None)
        if request.query.get("alt") == ["sse"]:
            return wire.stream("text/event-stream", [b"data: %s\r\n\r\n" % c for c in chunks])
        framed = [(b"[" if i == 0 else b",\r\n") + c for i, c in enumerate(chunks)]
        wire.stream("application/json", [*framed[:-1], framed[-1] + b"]"])


class GeminiAnswer:
    """A reply as Gemini parts: whole, or as the chunks of a stream."""

    def __init__(self, api: GeminiAPI, reply: Reply, include_thoughts: bool):
        self.api, self.reply = api, reply
        self.thoughts = pieces(reply.thinking) if include_thoughts else []
        self.texts = pieces(reply.text)
        self.calls = [{"functionCall": self._call(n, a)} for n, a in reply.tool_calls]
        self.text_signature = None
        if self.calls and api.thought_signatures:
            self.calls[0]["thoughtSignature"] = self._sign(*reply.tool_calls[0])
        elif self.texts and api.text_signature and api.thought_signatures:
            self.text_signature = self._sign("", {})

    def _call(self, name: str, args: dict) -> dict:
        call = {"name": name, "args": args}
        return {"id": new_id("", 8), **call} if self.api.call_ids else call

    def _sign(self, name: str, args: dict) -> str:
        signature = new_signature()
        self.api.issued_signatures[base64.b64decode(signature)] = (name, args)
        return signature

    def _candidate(self, parts: list[dict], final: bool) -> dict:
        candidate = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if final:
            candidate["finishReason"] = FINISH.get(self.reply.stop_reason, "STOP")
        return candidate

    def response(self, model: str, rid: str, usage: Usage | dict) -> dict:
        parts = [{"text": joined(self.reply.thinking), "thought": True}] if self.thoughts else []
        if self.texts:
            parts.append({"text": "".join(self.texts)})
            if self.text_signature:
                parts[-1]["thoughtSignature"] = self.text_signature
        parts += self.calls
        return {
            "candidates": [self._candidate(parts or [{"text": ""}], True)],
            "usageMetadata": gemini_usage(usage),
            "modelVersion": model,
            "responseId": rid,
        }

    def chunks(self, model: str, rid: str, usage: Usage | dict, fail: Fail | None) -> list[bytes]:
        parts = [[{"text": t, "thought": True}] for t in self.thoughts]
        parts += [[{"text": t}] for t in self.texts]
        if self.calls:
            parts.append(self.calls)
        if self.text_signature:
            parts.append([{"text": "", "thoughtSignature": self.text_signature}])
        parts = parts or [[{"text": ""}]]
        full = gemini_usage(usage)
        partial = {k: full[k] for k in ("promptTokenCount",) if k in full}
        partial["totalTokenCount"] = partial.get("promptTokenCount", 0)
        out = []
        for i, chunk_parts in enumerate(parts):
            final = i == len(parts) - 1
            chunk: dict[str, Any] = {"candidates": [self._candidate(chunk_parts, final)]}
            if final or self.api.usage_every_chunk:
                chunk["usageMetadata"] = full if final else partial
            chunk.update(modelVersion=model, responseId=rid)
            out.append(json.dumps(chunk).encode())
            if fail:
                error = error_body(fail.status, fail.message, fail.kind)
                return [*out, json.dumps(error).encode()]
        return out


class FakeGemini(GeminiAPI, FakeServer):
    def __init__(
        self,
        keys: set[str] | None = None,
        signature_scope: str = "current",
        text_signature: bool = True,
        call_ids: bool = False,
        accept_dummy_signatures: bool = False,
        gzip_json: bool = False,
    ):
        FakeServer.__init__(self, gzip_json)
        self.gemini_setup(
            keys=keys,
            signature_scope=signature_scope,
            text_signature=text_signature,
            call_ids=call_ids,
            accept_dummy_signatures=accept_dummy_signatures,
        )

    def handle(self, request: Recorded, wire: Wire) -> None:
        if not self.gemini_handle(request, wire):
            self.gemini_error(wire, 404, f"{request.path} is not found")
