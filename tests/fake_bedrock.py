"""A fake bedrock-runtime on loopback that records requests and checks their SigV4 signatures.

It also answers Gemini generateContent (as the rollup's summariser) with a short summary.

For every request signed with SigV4 it recomputes the signature with botocore from exactly
what it received and the secret it expects for the access-key id, and records whether it
matched. Streaming operations answer with real AWS event-stream frames, sent one by one.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

_AUTH = re.compile(
    r"Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, ?SignedHeaders=([^,]+), ?Signature=(\w+)"
)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool | None  # None when the request was not SigV4-signed
    access_key: str | None


def encode_event(payload: dict, event_type: str, message_type: str = "event") -> bytes:
    """One AWS event-stream frame (prelude, string headers, payload, CRCs)."""

    def header(name: str, value: str) -> bytes:
        n, v = name.encode(), value.encode()
        return struct.pack("B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v

    type_header = ":exception-type" if message_type == "exception" else ":event-type"
    headers = (
        header(":message-type", message_type)
        + header(type_header, event_type)
        + header(":content-type", "application/json")
    )
    body = json.dumps(payload).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    message = prelude + headers + body
    return message + struct.pack(">I", binascii.crc32(message))


def anthropic_stream_frames() -> list[bytes]:
    events = [
        {"type": "message_start", "message": {"usage": {"input_tokens": 11, "output_tokens": 1}}},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hel"}},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "lo"}},
        {
            "type": "message_stop",
            "amazon-bedrock-invocationMetrics": {"inputTokenCount": 11, "outputTokenCount": 4},
        },
    ]
    return [
        encode_event({"bytes": base64.b64encode(json.dumps(e).encode()).decode()}, "chunk")
        for e in events
    ]


def converse_stream_frames() -> list[bytes]:
    return [
        encode_event({"role": "assistant"}, "messageStart"),
        encode_event({"contentBlockIndex": 0, "delta": {"text": "hel"}}, "contentBlockDelta"),
        encode_event({"contentBlockIndex": 0, "delta": {"text": "lo"}}, "contentBlockDelta"),
        encode_event({"stopReason": "end_turn"}, "messageStop"),
        encode_event(
            {
                "usage": {"inputTokens": 9, "outputTokens": 2, "totalTokens": 11},
                "metrics": {"latencyMs": 5},
            },
            "metadata",
        ),
    ]


class FakeBedrock:
    def __init__(self, secrets: dict[str, str] | None = None, stream_gate: bool = False):
        self.secrets = dict(secrets or {})
        self.requests: list[Recorded] = []
        self.stream_gate = stream_gate
        self.release = threading.Event()
        self.last_frame_sent = threading.Event()
        self.stream_exception = False  # put an exception frame inside the 200 stream
        self.summaries = 0
        self.scripted: list[tuple[int, dict, dict]] = []  # (status, headers, body) for next calls
        # faults: seconds before answering, between stream frames, a stall after N frames,
        # a cut (connection closed) after N frames, and a body that claims gzip but is not
        self.delay_headers = 0.0
        self.frame_delay = 0.0
        self.stall_after: int | None = None
        self.cut_after: int | None = None
        self.bad_gzip = False
        self.summarizer_fails = False
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                fake._handle(self, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
        self.release.clear()
        self.last_frame_sent.clear()

    def _verify(self, handler, body: bytes) -> tuple[bool | None, str | None]:
        match = _AUTH.search(handler.headers.get("authorization", ""))
        if not match:
            return None, None
        key_id, _date, region, service, signed, signature = match.groups()
        secret = self.secrets.get(key_id)
        if secret is None:
            return False, key_id
        headers = {name: handler.headers.get(name, "") for name in signed.split(";")}
        request = AWSRequest(
            method="POST",
            url=f"http://{handler.headers['host']}{handler.path}",
            headers=headers,
            data=body,
        )
        request.context["timestamp"] = handler.headers.get("x-amz-date", "")
        auth = SigV4Auth(Credentials(key_id, secret), service, region)
        expected = auth.signature(
            auth.string_to_sign(request, auth.canonical_request(request)), request
        )
        return expected == signature, key_id

    def _handle(self, handler, body: bytes) -> None:
        ok, key_id = self._verify(handler, body)
        if self.delay_headers:
            time.sleep(self.delay_headers)
        with self._lock:
            self.requests.append(
                Recorded(
                    "POST",
                    handler.path,
                    {k.lower(): v for k, v in handler.headers.items()},
                    body,
                    ok,
                    key_id,
                )
            )
        if re.match(r"^/v1beta/models/[^/]+:generateContent$", handler.path):
            self.summaries += 1
            if self.summarizer_fails:
                return self._json(handler, 500, {"error": {"code": 500, "message": "boom"}})
            text = f"SUMMARY#{self.summaries} of {len(body)} bytes"
            return self._json(
                handler,
                200,
                {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}}]},
            )
        if self.scripted:
            status, headers, payload = self.scripted.pop(0)
            return self._json(handler, status, payload, headers=headers)
        match = re.match(r"^/model/([^/]+)/([a-z-]+)$", handler.path)
        if not match:
            return self._json(
                handler, 404, {"message": "no such route"}, "ResourceNotFoundException"
            )
        model, operation = unquote(match.group(1)), match.group(2)
        if operation == "invoke" and self.bad_gzip:
            handler.send_response(200)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-encoding", "gzip")
            handler.send_header("content-length", "9")
            handler.end_headers()
            handler.wfile.write(b"not-gzip!")
            return None
        if operation == "invoke":
            return self._json(
                handler,
                200,
                {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": "hello from fake bedrock"}],
                    "stop_reason": "end_turn",
                    "usage": {"input_tokens": 12, "output_tokens": 6},
                },
            )
        if operation == "converse":
            return self._json(
                handler,
                200,
                {
                    "output": {"message": {"role": "assistant", "content": [{"text": "hello"}]}},
                    "stopReason": "end_turn",
                    "usage": {"inputTokens": 8, "outputTokens": 3, "totalTokens": 11},
                    "metrics": {"latencyMs": 5},
                },
            )
        frames = (
            anthropic_stream_frames()
            if operation == "invoke-with-response-stream"
            else converse_stream_frames()
        )
        if self.stream_exception:
            frames.insert(
                2,
                encode_event(
                    {"message": "model is overloaded"}, "throttlingException", "exception"
                ),
            )
        self.sent_bytes = b"".join(frames)
        handler.send_response(200)
        handler.send_header("content-type", "application/vnd.amazon.eventstream")
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()
        for i, frame in enumerate(frames):
            if i == len(frames) - 1 and self.stream_gate:
                self.release.wait(10)
            if i == self.cut_after:
                handler.close_connection = True
                handler.connection.shutdown(2)
                return None
            if i == self.stall_after:
                time.sleep(5)
            time.sleep(self.frame_delay)
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            handler.wfile.flush()
        self.last_frame_sent.set()
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()

    @staticmethod
    def _json(
        handler, status: int, payload: dict, error_type: str | None = None, headers=None
    ) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        if error_type:
            handler.send_header("x-amzn-ErrorType", error_type)
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
