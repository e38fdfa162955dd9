"""Client keys with limits: configuration, who authenticated, and the one pipeline step that
applies a client's expiry, models and limits, driven through the addon on every API."""

from __future__ import annotations

import asyncio
import datetime
import json
import os

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from calo_addon import Calo
from calo_addon import config as cfg
from calo_addon.aws import sign
from calo_addon.clients import ClientConfig, ClientGate
from calo_addon.dialects import Operation, Refusal
from calo_addon.dialects.gemini import GEMINI
from calo_addon.inbound_auth import ProxyKeyCheck, take_client_credentials
from calo_addon.settings import AWSCredentials
from calo_addon.translate.neutral import Usage
from tests.test_addon import REVERSE

NOON = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=datetime.UTC).timestamp()
ALICE_KEY, BOB_KEY, TEAM_SECRET = "alice-secret-key", "bob-secret-key", "team-secret-value"
GENERATE = Operation(GEMINI, "generateContent", "m", needs_body=True)
LIST = Operation(GEMINI, "models.list")


@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("GEMINI_CALO_"):
            monkeypatch.delenv(name)


def load(tmp_path, text: str, **env: str):
    path = tmp_path / "calo.yaml"
    path.write_text("api_keys: [r1]\n" + text)
    return cfg.load_settings(str(path), env)


# ---------------------------------------------------------------- configuration


def test_the_spec_example_parses(tmp_path):
    settings = load(
        tmp_path,
        """
clients:
  alice: {key: "${ALICE_KEY}", models: ["gemini-*"], rpm: 60, tpm: 100000}
  ci-bot: {key: "${CI_KEY}", tokens_per_day: 2000000, expires: 2027-06-30}
  boto-team: {aws: {access_key: AKIDTEAM, secret_key: "${TEAM_SECRET}"}, tokens_per_month: 50000000}
""",
        ALICE_KEY=ALICE_KEY,
        CI_KEY=BOB_KEY,
        TEAM_SECRET=TEAM_SECRET,
    )
    clients = dict(settings.clients)
    assert clients["alice"] == ClientConfig(key=ALICE_KEY, models=("gemini-*",), rpm=60, tpm=100000)
    assert clients["ci-bot"].expires == datetime.date(2027, 6, 30)
    assert clients["boto-team"].aws.access_key == "AKIDTEAM"
    assert {ALICE_KEY, BOB_KEY, TEAM_SECRET} <= settings.secrets()  # redacted everywhere
    assert settings.state.usage_db == "calo-usage.db"
    assert ALICE_KEY not in repr(settings.clients) and TEAM_SECRET not in repr(settings.clients)


def test_python_api_takes_client_configs_or_mappings():
    addon = Calo(
        api_keys=["r"],
        clients={"alice": ClientConfig(key=ALICE_KEY, rpm=2), "bob": {"key": BOB_KEY, "tpm": 9}},
        usage_db="off",
    )
    settings = cfg.load_settings(None, {}, addon._overrides)
    assert dict(settings.clients)["bob"] == ClientConfig(key=BOB_KEY, tpm=9)
    assert settings.state.usage_db is None


def test_usage_db_from_the_environment(tmp_path):
    settings = load(tmp_path, "", GEMINI_CALO_USAGE_DB="/var/lib/calo/usage.db")
    assert settings.state.usage_db == "/var/lib/calo/usage.db"


TWO_WITH_ONE_AWS_ID = """alice: {aws: {access_key: AKID1, secret_key: S}}
  bob: {aws: {access_key: AKID1, secret_key: T}}"""


@pytest.mark.parametrize(
    ("clients", "message"),
    [
        ("alice: {key: 12345}", "clients.alice.key: expected a non-empty string"),
        ("alice: {rpm: 5}", "clients.alice: needs a key or aws credentials"),
        ("alice: {key: K, rpm: 0}", "clients.alice.rpm: expected a number >= 1"),
        ("alice: {key: K, tokens_per_day: lots}", "clients.alice.tokens_per_day: expected a num"),
        ("alice: {key: K, models: []}", "clients.alice.models: no glob given"),
        ("alice: {key: K, expires: soon}", "clients.alice.expires: expected a date"),
        ("alice: {key: K, budget: 5}", "clients.alice: unknown key 'budget'"),
        ("alice: {key: K, aws: {access_key: A}}", "clients.alice.aws: needs access_key and"),
        ('"al ice": {key: K}', "clients.al ice: a client name is"),
        ("alice: {key: K}\n  bob: {key: K}", "same key is given to client alice and client bob"),
        (
            TWO_WITH_ONE_AWS_ID,
            "same AWS access key id is given to client alice and client bob",
        ),
    ],
)
def test_config_errors_name_the_client_and_field_never_the_key(tmp_path, clients, message):
    with pytest.raises(cfg.ConfigError) as err:
        load(tmp_path, f"clients:\n  {clients}\n", K="the-key-value")
    assert message in str(err.value)
    assert "12345" not in str(err.value) and "the-key-value" not in str(err.value)


def test_a_client_key_that_is_also_a_proxy_key_is_refused(tmp_path):
    with pytest.raises(cfg.ConfigError) as err:
        load(
            tmp_path, f"proxy_api_keys: [pk, {ALICE_KEY}]\nclients: {{alice: {{key: {ALICE_KEY}}}}}"
        )
    assert "proxy_api_keys and client alice" in str(err.value)
    assert ALICE_KEY not in str(err.value)
    with pytest.raises(cfg.ConfigError, match="proxy_aws_credentials and client team"):
        load(
            tmp_path,
            "proxy_aws_credentials: {AKID1: S}\n"
            "clients: {team: {aws: {access_key: AKID1, secret_key: T}}}",
        )
    load(tmp_path, "proxy_api_keys: [pk, pk]\n")  # a proxy key listed twice stays harmless


# ---------------------------------------------------------------- models and expiry


@pytest.mark.parametrize(
    ("model", "allowed"),
    [
        ("gemini-2.5-flash", True),
        ("gemini-", True),
        ("text-embedding-004", True),
        ("Gemini-2.5-flash", False),  # globs are case-sensitive, like model routes
        ("gpt-4o", False),
        ("my-gemini-2", False),
        ("anthropic.claude-3-5-sonnet-20241022-v2:0", True),
        ("anthropic.titan", False),
        (None, False),  # a call with a body that names no model
    ],
)
def test_models_are_fnmatch_globs(model, allowed):
    client = ClientConfig(
        key="k", models=("gemini-*", "text-embedding-00[0-9]", "anthropic.claude-?-*")
    )
    assert client.allows(model, GENERATE) is allowed


def test_a_call_without_a_model_and_without_a_body_uses_no_model():
    assert ClientConfig(key="k", models=("gemini-*",)).allows(None, LIST)
    assert ClientConfig(key="k").allows("anything", GENERATE)


def test_expiry_a_date_ends_when_that_day_begins_utc():
    client = ClientConfig(key="k", expires=datetime.date(2026, 11, 27))
    assert client.expires_at == NOON + 12 * 3600
    moment = datetime.datetime(
        2026, 11, 26, 13, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=1))
    )
    assert ClientConfig(key="k", expires=moment).expires_at == NOON
    naive = ClientConfig(key="k", expires=datetime.datetime(2026, 11, 26, 12, 0))
    assert naive.expires_at == NOON  # read as UTC


# ---------------------------------------------------------------- who authenticated


def signed_request(key_id: str, secret: str):
    req = tutils.treq(
        method=b"POST",
        path=b"/model/m/converse",
        headers=[
            (b"host", b"bedrock-runtime.us-east-1.amazonaws.com"),
            (b"content-type", b"application/json"),
        ],
        content=b"{}",
    )
    req.headers.update(sign(req, AWSCredentials(key_id, secret, region="us-east-1")))
    return req


def key_request(key: str):
    return tutils.treq(
        path=b"/v1beta/models/m:generateContent", headers=[(b"x-goog-api-key", key.encode())]
    )


def test_the_check_says_who_authenticated():
    check = ProxyKeyCheck(
        ("pk",),
        (("AKIDPROXY", "proxy-secret"),),
        (("alice", ALICE_KEY), ("bob", BOB_KEY)),
        (("team", "AKIDTEAM", TEAM_SECRET),),
    )

    def who(req):
        return check.check(req, take_client_credentials(req))

    assert who(key_request(ALICE_KEY)) == "alice"
    assert who(key_request(BOB_KEY)) == "bob"
    assert who(key_request("pk")) is None  # unrestricted
    assert who(signed_request("AKIDTEAM", TEAM_SECRET)) == "team"
    assert who(signed_request("AKIDPROXY", "proxy-secret")) is None
    for bad in (key_request("alice-secret"), signed_request("AKIDTEAM", "wrong")):
        with pytest.raises(Refusal):
            who(bad)


def test_clients_alone_require_a_key():
    check = ProxyKeyCheck((), (), (("alice", ALICE_KEY),))
    req = key_request("")
    with pytest.raises(Refusal) as err:
        check.check(req, take_client_credentials(req))
    assert (err.value.status, err.value.message) == (401, "missing proxy API key")
    aws_only = ProxyKeyCheck((), (), (), (("team", "AKIDTEAM", TEAM_SECRET),))
    req = key_request("anything")
    with pytest.raises(Refusal):
        aws_only.check(req, take_client_credentials(req))


# ---------------------------------------------------------------- the gate


def gate(**limits) -> ClientGate:
    return ClientGate({"alice": ClientConfig(key="k", **limits)}, None)


def refusal(g: ClientGate, model="m", op=GENERATE, now=NOON, client="alice") -> Refusal | None:
    try:
        asyncio.run(g.admit(client, op, model, now))
    except Refusal as refused:
        return refused
    return None


def test_gate_refusals_and_their_order():
    expired = gate(expires=datetime.date(2026, 11, 26), models=("gemini-*",), rpm=1)
    r = refusal(expired, "gpt-4o")
    assert (r.status, r.message) == (401, "the proxy API key of client alice expired on 2026-11-26")
    r = refusal(gate(models=("gemini-*",)), "gpt-4o")
    assert r.status == 403
    assert r.message == "client alice may not use model 'gpt-4o' (allowed: gemini-*)"
    limited = gate(rpm=1)
    assert refusal(limited) is None
    r = refusal(limited, now=NOON + 15.2)
    assert (r.status, r.headers) == (429, {"Retry-After": "45"})
    assert r.message == "client alice is over its rpm limit (1); retry in 45s"


def test_unrestricted_keys_and_unknown_names_pass():
    g = gate(rpm=1, models=("x",))
    for _ in range(3):
        assert refusal(g, "y", client=None) is None


def test_charge_counts_what_the_upstream_reported():
    g = gate(tokens_per_day=10)
    g.charge("alice", Usage(input_tokens=4, output_tokens=7), NOON)
    g.charge("alice", None, NOON)  # nothing reported: nothing charged
    g.charge(None, Usage(input_tokens=99, output_tokens=1), NOON)  # a summary: nobody's
    assert refusal(g).status == 429
    report = g.report(NOON)
    assert "today 0 requests, 11/10 tokens (4 in, 7 out)" in report


def test_report_lists_usage_and_limits():
    g = ClientGate(
        {
            "alice": ClientConfig(key="k", models=("gemini-*",), rpm=60, tpm=1000),
            "ci": ClientConfig(key="c", expires=datetime.date(2027, 6, 30)),
        },
        None,
    )
    asyncio.run(g.admit("alice", GENERATE, "gemini-x", NOON))
    g.charge("alice", Usage(input_tokens=3, output_tokens=2), NOON)
    lines = g.report(NOON + 1).splitlines()
    assert lines[0] == (
        "client alice: last minute 1/60 requests, 5/1000 tokens; "
        "today 1 requests, 5 tokens (3 in, 2 out); this month 1 requests, 5 tokens; "
        "in all 1 requests, 5 tokens; models gemini-*"
    )
    assert (
        lines[1].startswith("client ci: last minute 0 requests")
        and "expires 2027-06-30" in lines[1]
    )
    assert "k" not in lines[0].split(": ", 1)[0]
    assert ClientGate({}, None).report() == "calo_addon: no clients configured"


# ---------------------------------------------------------------- through the addon


def addon(tmp_path, **clients) -> Calo:
    return Calo(
        api_keys=["r1"],
        proxy_api_keys=["pk"],
        base_url="http://127.0.0.1:9",
        log_file=str(tmp_path / "c.log"),
        usage_db=str(tmp_path / "usage.db"),
        clients=clients or {"alice": {"key": ALICE_KEY, "models": ["gemini-*"], "rpm": 2}},
    )


def api_flow(api: str, model: str, key: str = ALICE_KEY) -> http.HTTPFlow:
    """One call of `api` for `model`, with `key` where that API's SDK puts it."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    path, header = {
        "gemini": (f"/v1beta/models/{model}:generateContent", "x-goog-api-key"),
        "openai": ("/v1/chat/completions", "authorization"),
        "anthropic": ("/v1/messages", "x-api-key"),
        "responses": ("/v1/responses", "authorization"),
        "bedrock": (f"/model/{model}/converse", "authorization"),
    }[api]
    if api == "gemini":
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    elif api == "anthropic":
        body["max_tokens"] = 16
    elif api == "responses":
        body = {"model": model, "input": "hi"}
    elif api == "bedrock":
        body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    value = f"Bearer {key}" if header == "authorization" else key
    req = tutils.treq(
        method=b"POST",
        path=path.encode(),
        headers=[(header.encode(), value.encode()), (b"content-type", b"application/json")],
        content=json.dumps(body).encode(),
    )
    f = tflow.tflow(req=req)
    f.client_conn.proxy_mode = REVERSE
    return f


def kind(f: http.HTTPFlow) -> str:
    """The error's kind as each API's SDK reads it."""
    if "x-amzn-ErrorType" in f.response.headers:
        return f.response.headers["x-amzn-ErrorType"]
    body = json.loads(f.response.content)
    if body.get("type") == "error":
        return body["error"]["type"]
    return body["error"].get("status") or body["error"]["type"]


def drive(addon: Calo, flows, after=None):
    async def main():
        with taddons.context(addon) as tctx:
            try:
                tctx.configure(addon)
                for f in flows:
                    await addon.request(f)
                return await after(tctx) if after else None
            finally:
                addon.done()
                tctx.master._legacy_log_events.uninstall()

    return asyncio.run(main())


def log_lines(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "c.log").read_text().splitlines()]


async def finish(addon: Calo, *flows: http.HTTPFlow) -> None:
    for f in flows:
        addon.responseheaders(f)
        await addon.response(f)


APIS = ["gemini", "openai", "anthropic", "responses", "bedrock"]
REFUSALS = {
    403: {
        "gemini": "PERMISSION_DENIED",
        "openai": "permission_error",
        "anthropic": "permission_error",
        "responses": "permission_error",
        "bedrock": "AccessDeniedException",
    },
    429: {
        "gemini": "RESOURCE_EXHAUSTED",
        "openai": "rate_limit_error",
        "anthropic": "rate_limit_error",
        "responses": "rate_limit_error",
        "bedrock": "ThrottlingException",
    },
    401: {
        "gemini": "UNAUTHENTICATED",
        "openai": "invalid_request_error",
        "anthropic": "authentication_error",
        "responses": "invalid_request_error",
        "bedrock": "UnrecognizedClientException",
    },
}


@pytest.mark.parametrize("api", APIS)
def test_a_model_not_allowed_is_403_in_shape_never_forwarded_and_logged(tmp_path, api):
    model = "gpt-4o" if api != "bedrock" else "amazon.nova-lite-v1:0"
    f = api_flow(api, model)
    calo = addon(tmp_path)
    drive(calo, [f], lambda tctx: finish(calo, f))
    assert f.response.status_code == 403 and kind(f) == REFUSALS[403][api]
    assert f"may not use model '{model}'" in f.response.text
    assert f.request.host == "address"  # never pointed upstream, no real key on it
    assert "r1" not in bytes(f.request.headers).decode()
    (line,) = log_lines(tmp_path)
    assert (line["client"], line["status"]) == ("alice", 403)
    assert "client alice" in f.comment and ALICE_KEY not in f.comment + json.dumps(line)


@pytest.mark.parametrize("api", APIS)
def test_over_rpm_is_429_in_shape_with_retry_after(tmp_path, api):
    model = "gemini-2.5-flash"
    flows = [api_flow(api, model) for _ in range(3)]
    drive(addon(tmp_path), flows)
    assert [f.response for f in flows[:2]] == [None, None]  # forwarded
    over = flows[2]
    assert over.response.status_code == 429 and kind(over) == REFUSALS[429][api]
    assert 1 <= int(over.response.headers["retry-after"]) <= 60
    assert over.request.host == "address"


@pytest.mark.parametrize("api", APIS)
def test_an_expired_key_is_401_in_shape(tmp_path, api):
    yesterday = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)
    f = api_flow(api, "gemini-2.5-flash")
    drive(addon(tmp_path, alice={"key": ALICE_KEY, "expires": yesterday}), [f])
    assert f.response.status_code == 401 and kind(f) == REFUSALS[401][api]
    assert "expired" in f.response.text and f.request.host == "address"


def test_unrestricted_proxy_key_has_no_limits_and_no_client(tmp_path):
    flows = [api_flow("openai", "gpt-4o", key="pk") for _ in range(4)]
    calo = addon(tmp_path)
    drive(calo, flows, lambda tctx: finish(calo, *flows))
    assert all(f.request.host == "127.0.0.1" for f in flows)
    assert {line["client"] for line in log_lines(tmp_path)} == {None}


def test_the_effective_model_is_checked_after_model_override(tmp_path):
    calo = Calo(
        api_keys=["r1"],
        base_url="http://127.0.0.1:9",
        log_file=str(tmp_path / "c.log"),
        usage_db="off",
        model_override="gemini-2.5-flash",
        clients={"alice": {"key": ALICE_KEY, "models": ["gemini-*"]}},
    )
    f = api_flow("openai", "gpt-4o")
    drive(calo, [f])
    assert f.response is None and json.loads(f.request.content)["model"] == "gemini-2.5-flash"


def test_fifty_concurrent_requests_against_rpm_10_admit_exactly_10(tmp_path):
    calo = addon(tmp_path, alice={"key": ALICE_KEY, "rpm": 10})
    flows = [api_flow("gemini", "gemini-2.5-flash") for _ in range(50)]

    async def concurrently(tctx):
        await asyncio.gather(*(calo.request(f) for f in flows))

    drive(calo, [], concurrently)
    forwarded = [f for f in flows if f.response is None]
    refused = [f for f in flows if f.response is not None]
    assert len(forwarded) == 10 and all(f.request.host == "127.0.0.1" for f in forwarded)
    assert len(refused) == 40 and {f.response.status_code for f in refused} == {429}


def gemini_answer(f: http.HTTPFlow, tokens: tuple[int, int]) -> None:
    usage = {"promptTokenCount": tokens[0], "candidatesTokenCount": tokens[1]}
    f.response = http.Response.make(
        200, json.dumps({"usageMetadata": usage}).encode(), {"content-type": "application/json"}
    )


def test_reported_tokens_are_charged_and_spend_the_budget(tmp_path):
    calo = addon(tmp_path, alice={"key": ALICE_KEY, "tokens_per_day": 10})
    first, second = api_flow("gemini", "gemini-x"), api_flow("gemini", "gemini-x")

    async def after(tctx):
        gemini_answer(first, (4, 7))
        await finish(calo, first)
        await calo.request(second)
        return tctx.master.commands.call("calo.usage")

    report = drive(calo, [first], after)
    assert second.response.status_code == 429
    assert "tokens_per_day limit (10)" in second.response.text
    assert "today 1 requests, 11/10 tokens (4 in, 7 out)" in report
    assert ALICE_KEY not in report


def test_reload_keeps_usage_and_applies_a_changed_limit(tmp_path):
    config = tmp_path / "calo.yaml"

    def write(rpm: int) -> None:
        config.write_text(
            f"api_keys: [r1]\nbase_url: http://127.0.0.1:9\nlog: {{file: {tmp_path / 'c.log'}}}\n"
            f"state: {{usage_db: {tmp_path / 'usage.db'}}}\n"
            f"clients: {{alice: {{key: {ALICE_KEY}, rpm: {rpm}}}}}\n"
        )

    write(2)
    calo = Calo()
    flows = [api_flow("gemini", "gemini-x") for _ in range(5)]

    async def after(tctx):
        tctx.configure(calo, calo_config=str(config))
        store = calo.usage
        for f in flows[:3]:
            await calo.request(f)
        write(3)
        calo._load()  # what the addon does when it sees the file change
        for f in flows[3:]:
            await calo.request(f)
        return store

    store = drive(calo, [], after)
    assert store is not None and calo.pipeline.clients.store is store  # the same usage
    statuses = [f.response.status_code if f.response else 200 for f in flows]
    # rpm 2: two admitted, the third refused; rpm 3 after the reload: one more, then refused
    assert statuses == [200, 200, 429, 200, 429]


def test_with_clients_alone_every_call_needs_a_key(tmp_path):
    calo = Calo(
        api_keys=["r1"],
        base_url="http://127.0.0.1:9",
        log_file=str(tmp_path / "c.log"),
        usage_db="off",
        clients={"alice": {"key": ALICE_KEY}},
    )
    anonymous, alice = api_flow("gemini", "gemini-x", key=""), api_flow("gemini", "gemini-x")
    drive(calo, [anonymous, alice])
    assert anonymous.response.status_code == 401 and alice.response is None


def test_summariser_calls_are_logged_and_charged_to_nobody(tmp_path):
    calo = addon(tmp_path, alice={"key": ALICE_KEY, "tokens_per_day": 10})

    async def after(tctx):
        summary, _ = calo.pipeline.summarizer.flow("summarise this")
        summary.live = True  # as mitm.send sends it
        await calo.request(summary)
        gemini_answer(summary, (40, 60))
        await finish(calo, summary)
        return tctx.master.commands.call("calo.usage")

    report = drive(calo, [], after)
    (line,) = log_lines(tmp_path)
    assert line["operation"] == "rollup.summary" and line["client"] is None
    assert line["usage"]["total_tokens"] == 100
    assert "today 0 requests, 0/10 tokens" in report
