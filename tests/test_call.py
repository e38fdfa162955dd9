"""call.py: one API flow's bookkeeping: usage and reply from the answer, key cooldown, the log
line and the mitmweb comment, and no key left in the stored flow."""

from __future__ import annotations

import json

import pytest
from mitmproxy import http
from mitmproxy.test import tflow, tutils

from calo_addon.call import Call, json_payload
from calo_addon.credentials import Sent
from calo_addon.dialects import recognise
from calo_addon.pipeline import Pipeline
from calo_addon.settings import Settings

OP = recognise("POST", "/v1/chat/completions", None)
ANSWER = {
    "choices": [{"message": {"role": "assistant", "content": "hi"}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}


class Log:
    debug = False

    def __init__(self):
        self.records = []

    def write(self, record):
        self.records.append(json.loads(json.dumps(record)))


def call() -> Call:
    settings = Settings(api_keys=("real-secret-1", "real-secret-2"), base_url="http://127.0.0.1:9")
    pipeline = Pipeline.build(settings, None)
    upstream = pipeline.router.select(OP, "gpt-4o")
    c = Call(OP, pipeline, requested_model="gpt-4o", effective_model="gpt-4o", upstream=upstream)
    key = upstream.keys.next()
    c.sent = Sent(key.label, key)
    return c


def answered(status: int, payload, headers=()) -> http.Response:
    return tutils.tresp(
        status_code=status,
        content=json.dumps(payload).encode(),
        headers=http.Headers([(b"content-type", b"application/json"), *headers]),
    )


def test_usage_is_read_from_a_json_answer_and_not_from_other_bodies():
    c = call()
    c.read_answer(ANSWER, 200)
    assert (c.usage.input_tokens, c.usage.output_tokens, c.usage.total_tokens) == (3, 2, 5)
    other = call()
    other.read_answer(json_payload(b"not json"), 200)
    other.read_answer(None, 502)
    assert other.usage is None


def test_a_refusing_upstream_cools_the_key_it_refused():
    c = call()
    c.cool_key_if_refused(answered(429, {"error": {}}, [(b"retry-after", b"7")]))
    assert c.cooled == "default#1 cooling 7s after 429"
    assert c.upstream.keys.next().label == "default#2"  # rotation skips the cooling key
    fine = call()
    fine.cool_key_if_refused(answered(500, {"error": {}}))
    assert fine.cooled is None


def test_finish_writes_one_line_a_comment_and_leaves_labels_not_keys():
    c = call()
    flow = tflow.tflow(resp=answered(200, ANSWER))
    flow.request.headers["authorization"] = "[calo: default#1]"
    c.read_answer(ANSWER, 200)
    c.retries.append("503 via default#2")
    log = Log()
    c.finish(flow, 200, None, log)
    (record,) = log.records
    assert record["status"] == 200 and record["key_label"] == "default#1"
    assert record["usage"]["total_tokens"] == 5 and record["retries"] == ["503 via default#2"]
    assert flow.request.headers["authorization"] == "[calo: default#1]"
    assert flow.comment.startswith("calo: openai chat.completions gpt-4o; route default via")
    assert "retried after 503 via default#2" in flow.comment and "tokens 3/2" in flow.comment
    assert "real-secret" not in json.dumps(record) + flow.comment
    assert not flow.marked


def test_a_failed_call_is_marked_in_mitmweb():
    c = call()
    flow = tflow.tflow()
    c.finish(flow, None, "upstream timed out after 1s", Log())
    assert flow.marked and "error: upstream timed out after 1s" in flow.comment


def test_routed_gives_the_upstream_and_its_protocol_and_refuses_before_routing():
    c = call()
    c.wire = OP.dialect
    assert c.routed() == (c.upstream, OP.dialect)
    c.wire = None
    with pytest.raises(RuntimeError, match="routing comes first"):
        c.routed()
