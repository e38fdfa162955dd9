"""A fuzz of stored flows (issue 10): the request shapes the suite drives, for every API
(Gemini, OpenAI Chat, Anthropic, Responses, Bedrock), streamed and not, refused, cut off,
retried, translated, replayed and summarised, go through one mitmweb that also writes `-w` and
a HAR file. Then every stored field of every flow (mitmweb's /flows, each body, /flows/dump,
the /updates websocket, the -w file read back with FlowReader, the HAR file) and the console
and log file are searched for every configured secret and every client credential: no hit."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.e2e.launch import (
    Proxy,
    WebView,
    free_port,
    read_flows,
    secret_hits,
    stored_texts,
    wait_for,
    web_args,
)
from tests.fake_anthropic import FakeAnthropic
from tests.fake_bedrock import FakeBedrock
from tests.fake_llm import FakeLLM
from tests.fake_openai import FakeOpenAI
from tests.fake_server import Fail

PROXY_KEY = "proxy-key-fuzz-0001"
G1, G2 = "real-gemini-fuzz-aaaa", "real-gemini-fuzz-bbbb"
O1, O2 = "real-openai-fuzz-cccc", "real-openai-fuzz-dddd"
A1 = "real-anthropic-fuzz-eeee"
PROXY_AKID, PROXY_SECRET = "AKIDFUZZPROXY", "fuzz-proxy-aws-secret"
ROUTE_AKID, ROUTE_SECRET = "AKIDFUZZROUTE", "fuzz-route-aws-secret"
PASS_AKID, PASS_SECRET = "AKIDFUZZPASS", "fuzz-pass-aws-secret"
BEARER_TOKEN = "fuzz-client-bedrock-bearer-token"
SECRETS = (PROXY_KEY, G1, G2, O1, O2, A1, PROXY_SECRET, ROUTE_SECRET, PASS_SECRET, BEARER_TOKEN)
MAX_BODY = 65536
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
LONG = "Keep every fact of this long conversation in mind, please. " * 5


@pytest.fixture(scope="module")
def fakes():
    with (
        FakeLLM() as llm,
        FakeOpenAI(keys={O1, O2}) as openai,
        FakeAnthropic(keys={A1}) as anthropic,
        FakeBedrock({ROUTE_AKID: ROUTE_SECRET, PASS_AKID: PASS_SECRET}) as bedrock,
    ):
        yield llm, openai, anthropic, bedrock


def start(tmp, fakes, proxy_launcher) -> tuple[Proxy, WebView]:
    llm, openai, anthropic, bedrock = fakes
    (tmp / "calo.yaml").write_text(
        f"""
base_url: {llm.url}
api_keys: [{G1}, {G2}]
proxy_api_keys: [{PROXY_KEY}]
proxy_aws_credentials: {{{PROXY_AKID}: {PROXY_SECRET}}}
max_body_bytes: {MAX_BODY}
rollup: {{enabled: true, threshold: 200}}
model_routes:
  "gpt-*": {{url: "http://127.0.0.1:{openai.port}", api_keys: [{O1}, {O2}], auth: bearer}}
  "claude-*": {{url: "{anthropic.url}", api: anthropic, api_keys: [{A1}]}}
  "anthropic.*":
    url: {bedrock.url}
    auth: sigv4
    aws: {{access_key: {ROUTE_AKID}, secret_key: {ROUTE_SECRET}, region: us-east-1}}
  "amazon.*": {{url: "{bedrock.url}", auth: bedrock-passthrough}}
"""
    )
    web_port = free_port()
    args = ["-w", str(tmp / "flows.mitm"), "--set", f"hardump={tmp / 'flows.har'}"]
    modes = [f"reverse:{llm.url}@{free_port()}", f"regular@{free_port()}"]
    proxy = proxy_launcher(tmp, {}, modes, [*args, *web_args(web_port)], tool="mitmweb")
    return proxy, WebView(web_port)


class Shapes:
    """Every request shape, each returning the status the client saw (None: cut off)."""

    def __init__(self, proxy: Proxy, fakes):
        self.proxy = proxy
        self.llm, self.openai, self.anthropic, self.bedrock = fakes
        self.http = httpx.Client(base_url=proxy.url, timeout=20)

    def post(self, path: str, body=None, key: str | None = "bearer", **headers) -> int:
        if key == "bearer":
            headers["authorization"] = f"Bearer {PROXY_KEY}"
        elif key == "query":
            path += ("&" if "?" in path else "?") + f"key={PROXY_KEY}"
        elif key is not None:
            headers[key] = PROXY_KEY
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers.setdefault("content-type", "application/json")
        with self.http.stream("POST", path, content=content, headers=headers) as answer:
            try:
                answer.read()
            except httpx.HTTPError:  # an answer cut on the way: its status still counts
                pass
            return answer.status_code

    def get(self, path: str, **headers) -> int:
        return self.http.get(path, headers=headers).status_code

    # ------------------------------------------------------------ Gemini

    def gemini_calls(self) -> dict[str, int | None]:
        models = "/v1beta/models/gemini-2.5-flash"
        return {
            "gemini generate (x-goog-api-key)": self.post(
                f"{models}:generateContent", GEMINI, "x-goog-api-key"
            ),
            "gemini generate (?key=)": self.post(f"{models}:generateContent", GEMINI, "query"),
            "gemini v1 generate": self.post(
                "/v1/models/gemini-2.5-flash:generateContent", GEMINI, "x-goog-api-key"
            ),
            "gemini sse": self.post(f"{models}:streamGenerateContent?alt=sse", GEMINI, "query"),
            "gemini json stream": self.post(
                f"{models}:streamGenerateContent", GEMINI, "x-goog-api-key"
            ),
            "gemini countTokens": self.post(f"{models}:countTokens", GEMINI, "x-goog-api-key"),
            "gemini embed": self.post(
                "/v1beta/models/text-embedding-004:embedContent",
                {"content": {"parts": [{"text": "x"}]}},
                "x-goog-api-key",
            ),
            "gemini models": self.get(f"/v1beta/models?key={PROXY_KEY}"),
        }

    # ------------------------------------------------------------ OpenAI Chat

    def chat(self, model: str, stream: bool = False, key: str = "bearer", text: str = "hi"):
        body = {"model": model, "messages": [{"role": "user", "content": text}]}
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        return self.post("/v1/chat/completions", body, key)

    def openai_calls(self) -> dict[str, int | None]:
        return {
            "chat to base_url": self.chat("gemini-2.5-flash"),
            "chat stream to base_url": self.chat("gemini-2.5-flash", stream=True),
            "chat routed (x-api-key)": self.chat("gpt-4o", key="x-api-key"),
            "chat routed stream": self.chat("gpt-4o", stream=True),
            "chat long (summarised)": self.chat("gemini-2.5-flash", text=LONG),
            "embeddings": self.post(
                "/v1/embeddings", {"model": "gpt-embed", "input": "x"}, "bearer"
            ),
            "openai models": self.get("/v1/models", authorization=f"Bearer {PROXY_KEY}"),
        }

    # ------------------------------------------------------------ Anthropic and Responses

    def messages(self, model: str, stream: bool = False, path: str = "/v1/messages"):
        body = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
        if stream:
            body["stream"] = True
        if path.endswith("count_tokens"):
            del body["max_tokens"]
        return self.post(path, body, "x-api-key", **{"anthropic-version": "2023-06-01"})

    def responses(self, model: str, stream: bool = False):
        body = {"model": model, "input": "hi", "stream": stream}
        return self.post("/v1/responses", body, "bearer")

    def translated(self) -> dict[str, int | None]:
        return {
            "anthropic passthrough": self.messages("claude-sonnet-4"),
            "anthropic passthrough stream": self.messages("claude-sonnet-4", stream=True),
            "anthropic count_tokens": self.messages(
                "claude-sonnet-4", path="/v1/messages/count_tokens"
            ),
            "anthropic -> gemini": self.messages("gemini-2.5-flash"),
            "anthropic -> gemini stream": self.messages("gemini-2.5-flash", stream=True),
            "responses -> chat": self.responses("gpt-4o"),
            "responses -> gemini stream": self.responses("gemini-2.5-flash", stream=True),
        }

    # ------------------------------------------------------------ Bedrock

    def sigv4(self, path: str, body: dict, secret: str = PROXY_SECRET) -> int:
        data = json.dumps(body).encode()
        request = AWSRequest(
            "POST", f"{self.proxy.url}{path}", headers={"content-type": "application/json"}
        )
        request.data = data
        SigV4Auth(Credentials(PROXY_AKID, secret), "bedrock", "us-east-1").add_auth(request)
        return self.post(path, data, None, **dict(request.headers.items()))

    def bedrock_calls(self) -> dict[str, int | None]:
        converse = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
        invoke = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}],
        }
        passthrough = {"x-aws-access-key": PASS_AKID, "x-aws-secret-key": PASS_SECRET}
        return {
            "bedrock converse (sigv4)": self.sigv4("/model/anthropic.claude-x/converse", converse),
            "bedrock converse-stream (sigv4)": self.sigv4(
                "/model/anthropic.claude-x/converse-stream", converse
            ),
            "bedrock invoke (bearer)": self.post("/model/anthropic.claude-x/invoke", invoke),
            "bedrock invoke stream (bearer)": self.post(
                "/model/anthropic.claude-x/invoke-with-response-stream", invoke
            ),
            "bedrock passthrough keys": self.post(
                "/model/amazon.nova-x/converse", converse, **passthrough
            ),
            "bedrock passthrough bearer": self.post(
                "/model/amazon.nova-x/converse",
                converse,
                **{"x-aws-bearer-token": BEARER_TOKEN},
            ),
            "bedrock sigv4 wrong secret": self.sigv4(
                "/model/anthropic.claude-x/converse", converse, "not-the-secret"
            ),
        }

    # ------------------------------------------------------------ refused, failing, cut off

    def refused(self) -> dict[str, int | None]:
        chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        wrong = {"authorization": f"Bearer wrong-{PROXY_KEY}"}
        return {
            "wrong key": self.post("/v1/chat/completions", chat, None, **wrong),
            "missing key": self.post("/v1beta/models/g:generateContent", GEMINI, None),
            "unknown path": self.post("/v1/unknown", chat),
            "bad json": self.post("/v1/chat/completions", b"{not json", "x-goog-api-key"),
            "oversized": self.post(
                "/v1/chat/completions", b'{"pad": "' + b"x" * MAX_BODY + b'"}', "query"
            ),
        }

    def failing(self) -> dict[str, int | None]:
        """Retried, exhausted and echoing upstreams, and cuts on both sides."""
        echo = {"error": {"code": 400, "message": f"bad key {G1} {G2}", "status": "X"}}
        found = {}
        self.llm.scripted.append((400, json.dumps(echo).encode()))
        found["error echoing keys"] = self.post("/v1beta/models/g:generateContent", GEMINI, "query")
        self.llm.scripted.append((400, json.dumps(echo).encode()))
        found["error echoing keys, translated"] = self.messages("gemini-2.5-flash")
        self.llm.cut_after = 1
        found["upstream cut mid-stream"] = self.chat("gemini-2.5-flash", stream=True)
        self.llm.cut_after = None
        found["client cut mid-body"] = self.cut_mid_body()
        found["client cut mid-stream"] = self.cut_mid_stream()
        self.openai.scripted.append(Fail(500, "try again"))
        found["retried 500 then 200"] = self.chat("gpt-4o")
        self.openai.scripted += [Fail(429, "slow down", retry_after=30)] * 2
        found["429 on every key"] = self.chat("gpt-4o")  # last: the route's keys now rest
        return found

    def cut_mid_body(self) -> None:
        with socket.create_connection(("127.0.0.1", self.proxy.port)) as s:
            s.sendall(
                b"POST /v1beta/models/cut-body:generateContent?key=%s HTTP/1.1\r\n"
                % PROXY_KEY.encode()
                + b"host: x\r\nx-goog-api-key: %s\r\n" % PROXY_KEY.encode()
                + b"content-length: 1000\r\n\r\n{"
            )

    def cut_mid_stream(self) -> None:
        self.llm.hold_last_chunk = True
        self.llm.release.clear()
        body = json.dumps(
            {"model": "cut-stream", "stream": True, "messages": [{"role": "user", "content": "x"}]}
        ).encode()
        with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=20) as s:
            s.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                + b"authorization: Bearer %s\r\n" % PROXY_KEY.encode()
                + b"content-length: %d\r\n\r\n" % len(body)
                + body
            )
            seen = b""
            while b"data: " not in seen:  # the first event: then the client goes
                chunk = s.recv(65536)
                assert chunk, "the stream ended before its first event"
                seen += chunk
        self.llm.release.set()
        self.llm.hold_last_chunk = False

    def explicit(self) -> dict[str, int | None]:
        """A routed call through the explicit listener, by the route's host."""
        with httpx.Client(proxy=f"http://127.0.0.1:{self.proxy.ports[1]}", timeout=20) as c:
            answer = c.post(
                f"http://127.0.0.1:{self.openai.port}/v1/chat/completions",
                headers={"x-api-key": PROXY_KEY},
                json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            )
        return {"explicit mode": answer.status_code}


EXPECTED: dict[str, int | None] = {
    **dict.fromkeys(
        [
            "gemini generate (x-goog-api-key)",
            "gemini generate (?key=)",
            "gemini v1 generate",
            "gemini sse",
            "gemini json stream",
            "gemini countTokens",
            "gemini embed",
            "gemini models",
            "chat to base_url",
            "chat stream to base_url",
            "chat routed (x-api-key)",
            "chat routed stream",
            "chat long (summarised)",
            "embeddings",
            "openai models",
            "anthropic passthrough",
            "anthropic passthrough stream",
            "anthropic count_tokens",
            "anthropic -> gemini",
            "anthropic -> gemini stream",
            "responses -> chat",
            "responses -> gemini stream",
            "bedrock converse (sigv4)",
            "bedrock converse-stream (sigv4)",
            "bedrock invoke (bearer)",
            "bedrock invoke stream (bearer)",
            "bedrock passthrough keys",
            "bedrock passthrough bearer",
            "retried 500 then 200",
            "explicit mode",
        ],
        200,
    ),
    "bedrock sigv4 wrong secret": 403,
    "wrong key": 401,
    "missing key": 401,
    "unknown path": 404,
    "bad json": 400,
    "oversized": 413,
    "429 on every key": 429,
    "error echoing keys": 400,
    "error echoing keys, translated": 400,
    "upstream cut mid-stream": 200,  # the status line reached the client before the cut
    "client cut mid-body": None,
    "client cut mid-stream": None,
}


def test_no_secret_in_any_stored_field(tmp_path, fakes, proxy_launcher):
    """Every shape answers as expected (so each took the path it names), then no secret is
    found in what mitmweb shows or serves, in -w, in HAR, on the console or in the log."""
    proxy, view = start(tmp_path, fakes, proxy_launcher)
    with view.updates() as updates:
        shapes = Shapes(proxy, fakes)
        statuses: dict[str, int | None] = {}
        steps: list[Callable[[], dict]] = [
            shapes.gemini_calls,
            shapes.openai_calls,
            shapes.translated,
            shapes.bedrock_calls,
            shapes.refused,
            shapes.explicit,
            shapes.failing,
        ]
        for step in steps:
            statuses |= step()
        assert statuses == EXPECTED

        def summarised() -> bool:
            return any(f.get("comment", "").count("rollup.summary") for f in view.flows())

        assert wait_for(summarised), "the summariser's call is not among the flows"
        first = next(f for f in view.flows() if "gemini-2.5-flash:generateContent" in str(f))
        llm = shapes.llm
        sent = len(llm.requests)
        view.post(f"/flows/{first['id']}/replay")  # the operator replays a stored request
        assert wait_for(lambda: len(llm.requests) > sent)
        assert llm.last_call().headers["x-goog-api-key"] in (G1, G2)  # attached again

        def settled() -> bool:
            flows = view.flows()
            return len(flows) > len(EXPECTED) and all(
                f.get("response") or f.get("error") for f in flows
            )

        assert wait_for(settled)
        shown = view.texts() + updates.messages
    proxy.stop()

    written = read_flows(tmp_path / "flows.mitm")
    har = (tmp_path / "flows.har").read_text()
    assert len(written) >= len(EXPECTED) and len(json.loads(har)["log"]["entries"]) >= 40
    assert sum(1 for f in written if f.error) >= 3  # cut on both sides
    hits = secret_hits(
        SECRETS,
        [
            *shown,
            *(text for flow in written for text in stored_texts(flow)),
            har,
            "".join(proxy.output),
            proxy.log_path.read_text(),
        ],
    )
    assert hits == []
