"""Property: whatever arrives, the addon never raises, and a real key only ever goes with a
request it recognised, to the configured upstream."""

from __future__ import annotations

import asyncio
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons, tflow, tutils

from calo_addon import Calo
from calo_addon.dialects import Refusal, recognise

REAL = "real-key-property"
PROXY = "proxy-key-property"

segments = st.one_of(
    st.sampled_from(
        [
            "v1",
            "v1beta",
            "openai",
            "models",
            "model",
            "chat",
            "completions",
            "embeddings",
            "gemini-2.5-flash:generateContent",
            "m:streamGenerateContent",
            "x:countTokens",
            "anthropic.claude%3A0",
            "invoke",
            "converse-stream",
            "..",
            "%2e%2e",
            "%2F",
            "health",
        ]
    ),
    st.text(alphabet=string.ascii_letters + string.digits + ":%.-_~!$&'()*+,;=@", max_size=12),
)
paths = st.lists(segments, min_size=0, max_size=6).map(lambda parts: "/" + "/".join(parts))
queries = st.one_of(
    st.just(""), st.sampled_from(["?alt=sse", f"?key={PROXY}", "?key=", "?a=b&key=x"])
)
bodies = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"{}",
            b'{"model": "gpt-4o", "messages": []}',
            b'{"model": 5}',
            b"[]",
            b"null",
            b'{"contents": [{"parts": [{"text": "hi"}]}]}',
            b'{"messages": "x"}',
        ]
    ),
)
keys = st.sampled_from(
    [
        None,
        ("authorization", f"Bearer {PROXY}"),
        ("x-goog-api-key", PROXY),
        ("authorization", "Bearer wrong"),
        ("x-api-key", PROXY),
    ]
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=paths,
    query=queries,
    body=bodies,
    key=keys,
)
def test_never_raises_and_never_keys_an_unrecognised_request(
    tmp_path, method, path, query, body, key
):
    asyncio.run(_check(tmp_path, method, path, query, body, key))


async def _check(tmp_path, method, path, query, body, key):
    addon = Calo(
        api_keys=[REAL],
        proxy_api_keys=[PROXY],
        base_url="http://127.0.0.1:9",
        log_file=str(tmp_path / "calo.log"),
        rollup_enabled=True,
    )
    with taddons.context(addon) as tctx:
        tctx.configure(addon)
        headers = [(key[0].encode(), key[1].encode())] if key else []
        request = tutils.treq(
            method=method.encode(), path=(path + query).encode(), headers=headers, content=body
        )
        flow = tflow.tflow(req=request)
        flow.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9")
        await addon.request(flow)
        if REAL in str(flow.request.headers) and flow.response is None:  # it was forwarded, keyed
            try:
                op = recognise(method, path, None) or recognise(method, path, "query")
            except Refusal:
                op = None
            assert op is not None, f"real key attached to unrecognised {method} {path}"
            assert (flow.request.host, flow.request.port) == ("127.0.0.1", 9)
        assert PROXY not in str(flow.request.headers) and f"key={PROXY}" not in flow.request.path
        addon.done()
        tctx.master._legacy_log_events.uninstall()  # taddons leaves it bound to this loop
