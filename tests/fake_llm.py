"""A fake Gemini + OpenAI-compatible upstream on loopback that records what it receives.

``FakeLLM(chunks=3, gzip_json=False)`` answers every path the proxy forwards for those two APIs
(Gemini under /v1beta and /v1, OpenAI under /v1 and /v1beta/openai) with the same protocol code
as FakeGemini (tests/fake_gemini.py) and FakeOpenAI (tests/fake_openai.py), but lenient: no key
needed, no validation, no thought signatures, and its historical canned answers:
generateContent "hello from fake", streams of ``chunks`` chunks "chunk 0 ", "chunk 1 ", ...
(usage on the last only), countTokens 42, chat "hello from fake" (usage 9 + 3).

Knobs: ``scripted`` takes raw ``(status, body_bytes)`` tuples (answered verbatim whatever the
path) as well as ``Reply`` / ``Fail``; ``hold_last_chunk`` / ``release`` / ``last_chunk_sent``;
``gzip_json``; ``connections``; and the faults of tests/fake_server.py.
"""

from __future__ import annotations

from tests.fake_gemini import GeminiAPI
from tests.fake_openai import ChatAPI
from tests.fake_server import FakeServer, Recorded, Reply, Wire

__all__ = ["USAGE_GEMINI", "USAGE_OPENAI", "FakeLLM", "Recorded", "gemini_chunk"]

USAGE_GEMINI = {"promptTokenCount": 7, "candidatesTokenCount": 5, "totalTokenCount": 12}
USAGE_OPENAI = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


def gemini_chunk(text: str, usage: bool = False) -> dict:
    chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}]}
    if usage:
        chunk["usageMetadata"] = USAGE_GEMINI
    return chunk


class FakeLLM(GeminiAPI, ChatAPI, FakeServer):
    def __init__(self, chunks: int = 3, gzip_json: bool = False):
        FakeServer.__init__(self, gzip_json)
        self.chunks = chunks
        self.gemini_setup(
            strict=False, thought_signatures=False, usage_every_chunk=False, fixed_count=42
        )
        self.chat_setup(strict=False, reasoning_field=None)

    def _canned(self, stream: bool, usage: dict) -> Reply:
        text = [f"chunk {i} " for i in range(self.chunks)] if stream else "hello from fake"
        return Reply(text=text, usage=usage)

    def gemini_default_reply(self, body: dict, stream: bool) -> Reply:
        return self._canned(stream, USAGE_GEMINI)

    def chat_default_reply(self, body: dict, stream: bool) -> Reply:
        return self._canned(stream, USAGE_OPENAI)

    def handle(self, request: Recorded, wire: Wire) -> None:
        if raw := self.next_script(tuple):
            status, payload = raw
            return wire.send(status, payload, "application/json")
        if not (self.gemini_handle(request, wire) or self.chat_handle(request, wire)):
            wire.json({"error": {"code": 404, "message": "not here"}}, 404)
