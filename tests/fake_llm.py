"""A fake Gemini + OpenAI-compatible upstream on loopback that records what it receives.

Answers every path the proxy forwards for those two APIs (Gemini under /v1beta and /v1, OpenAI
under /v1 and /v1beta/openai), streams SSE and Gemini's JSON array chunk by chunk, and can hold
back a stream's last chunk until released, to prove the client got the first one before it.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


GEMINI = re.compile(r"^/(v1beta|v1)/models/([^/:]+):(\w+)$")
GEMINI_MODELS = re.compile(r"^/(v1beta|v1)/models(/[^/:]+)?$")
OPENAI = re.compile(r"^/(v1|v1beta/openai)/(chat/completions|embeddings|models)$")
USAGE_GEMINI = {"promptTokenCount": 7, "candidatesTokenCount": 5, "totalTokenCount": 12}
USAGE_OPENAI = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


def gemini_chunk(text: str, usage: bool = False) -> dict:
    chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}]}
    if usage:
        chunk["usageMetadata"] = USAGE_GEMINI
    return chunk


class FakeLLM:
    def __init__(self, chunks: int = 3, gzip_json: bool = False):
        self.chunks = chunks
        self.gzip_json = gzip_json
        self.requests: list[Recorded] = []
        self.hold_last_chunk = False
        self.release = threading.Event()
        self.last_chunk_sent = threading.Event()
        self.scripted: list[tuple[int, bytes]] = []  # (status, body) for the next requests
        self.connections = 0  # TCP connections accepted
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake._handle(self, b"")

            def do_POST(self):
                fake._handle(self, self.rfile.read(int(self.headers.get("content-length") or 0)))

        class Server(ThreadingHTTPServer):
            def process_request(self, request, client_address):
                fake.connections += 1
                super().process_request(request, client_address)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def clear(self) -> None:
        self.requests.clear()
        self.release.clear()
        self.last_chunk_sent.clear()

    # ------------------------------------------------------------ answers

    def _handle(self, handler, body: bytes) -> None:
        url = urlsplit(handler.path)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        self.requests.append(
            Recorded(handler.command, url.path, parse_qs(url.query), headers, body)
        )
        if self.scripted:
            status, payload = self.scripted.pop(0)
            return self._send(handler, status, payload, "application/json")
        if m := GEMINI.match(url.path):
            return self._gemini(handler, m.group(2), m.group(3), url.query, body)
        if m := GEMINI_MODELS.match(url.path):
            model = {
                "name": "models/gemini-2.5-flash",
                "supportedGenerationMethods": ["generateContent"],
            }
            return self._json(handler, model if m.group(2) else {"models": [model]})
        if m := OPENAI.match(url.path):
            return self._openai(handler, m.group(2), json.loads(body) if body else {})
        return self._json(handler, {"error": {"code": 404, "message": "not here"}}, 404)

    def _gemini(self, handler, model: str, method: str, query: str, body: bytes) -> None:
        if method == "generateContent":
            return self._json(
                handler, {**gemini_chunk("hello from fake", usage=True), "modelVersion": model}
            )
        if method == "streamGenerateContent":
            chunks = [
                gemini_chunk(f"chunk {i} ", usage=i == self.chunks - 1) for i in range(self.chunks)
            ]
            if "alt=sse" in query:
                pieces = [f"data: {json.dumps(c)}\r\n\r\n".encode() for c in chunks]
                return self._stream(handler, "text/event-stream", pieces)
            pieces = [
                ("[" if i == 0 else ",\r\n").encode() + json.dumps(c).encode()
                for i, c in enumerate(chunks)
            ]
            return self._stream(handler, "application/json", [*pieces[:-1], pieces[-1] + b"]"])
        if method == "embedContent":
            return self._json(handler, {"embedding": {"values": [0.1, 0.2, 0.3]}})
        if method == "batchEmbedContents":
            count = len(json.loads(body).get("requests", []))
            return self._json(handler, {"embeddings": [{"values": [0.1, 0.2]}] * count})
        if method == "countTokens":
            return self._json(handler, {"totalTokens": 42})
        return self._json(handler, {"error": {"code": 404, "message": method}}, 404)

    def _openai(self, handler, operation: str, body: dict) -> None:
        model = body.get("model", "gpt-4o")
        if operation == "models":
            return self._json(
                handler,
                {
                    "object": "list",
                    "data": [{"id": "gpt-4o", "object": "model", "created": 0, "owned_by": "fake"}],
                },
            )
        if operation == "embeddings":
            return self._json(
                handler,
                {
                    "object": "list",
                    "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                    "model": model,
                    "usage": {"prompt_tokens": 3, "total_tokens": 3},
                },
            )
        base = {"id": "chatcmpl-1", "created": 0, "model": model}
        if not body.get("stream"):
            message = {"role": "assistant", "content": "hello from fake"}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return self._json(
                handler,
                {**base, "object": "chat.completion", "choices": [choice], "usage": USAGE_OPENAI},
            )
        chunks = [
            {
                **base,
                "object": "chat.completion.chunk",
                "choices": [
                    {"index": 0, "delta": {"content": f"chunk {i} "}, "finish_reason": None}
                ],
            }
            for i in range(self.chunks)
        ]
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append(
                {**base, "object": "chat.completion.chunk", "choices": [], "usage": USAGE_OPENAI}
            )
        pieces = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]
        return self._stream(handler, "text/event-stream", pieces)

    # ------------------------------------------------------------ wire

    def _json(self, handler, payload, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        encoding = None
        if self.gzip_json and "gzip" in handler.headers.get("accept-encoding", ""):
            data, encoding = gzip.compress(data), "gzip"
        self._send(handler, status, data, "application/json", encoding)

    @staticmethod
    def _send(handler, status, data: bytes, content_type: str, encoding: str | None = None) -> None:
        handler.send_response(status)
        handler.send_header("content-type", content_type)
        if encoding:
            handler.send_header("content-encoding", encoding)
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _stream(self, handler, content_type: str, pieces: list[bytes]) -> None:
        handler.send_response(200)
        handler.send_header("content-type", content_type)
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()
        for i, piece in enumerate(pieces):
            if i == len(pieces) - 1:
                if self.hold_last_chunk:
                    self.release.wait(10)
                self.last_chunk_sent.set()
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            handler.wfile.flush()
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()
