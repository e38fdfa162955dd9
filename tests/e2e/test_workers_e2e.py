"""`gemini-calo --workers 2`: both workers serve one port (the log names the worker of each
call), /metrics sums them, a worker that dies is started again, Ctrl-C stops all, a Responses
conversation goes on whichever worker gets its next call; and a start that cannot work says why
in one line."""

from __future__ import annotations

import os
import signal
import socket

import httpx
import openai
import pytest

from tests.e2e.calo_process import CaloProcess
from tests.e2e.launch import wait_for
from tests.e2e.scrape import metric, scrape, wait_metric
from tests.fake_llm import FakeLLM

pytestmark = pytest.mark.timeout(240)

GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
WORKERS = ["--workers", "2"]


@pytest.fixture
def upstream():
    with FakeLLM() as fake:
        yield fake


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def serve(launcher: CaloProcess, count: int) -> None:
    """`count` calls, each on a connection of its own (the kernel spreads connections)."""
    for _ in range(count):
        answer = httpx.post(
            f"http://127.0.0.1:{launcher.port}{GENERATE}",
            json=BODY,
            headers={"connection": "close"},
        )
        assert answer.status_code == 200, answer.text


@pytest.fixture
def env(upstream, redis_server) -> dict[str, str]:
    """Two keys, the fake upstream, a real Redis."""
    return {
        "GEMINI_CALO_API_KEYS": "k1,k2",
        "GEMINI_CALO_BASE_URL": upstream.url,
        "GEMINI_CALO_REDIS_URL": redis_server.url,
    }


@pytest.fixture
def launcher(tmp_path, env):
    """`gemini-calo --workers 2` on Redis, both workers listening."""
    launcher = CaloProcess(tmp_path, env, WORKERS)
    try:
        assert wait_for(lambda: launcher.said("listening at") == 2, 60), launcher.output
        yield launcher
    finally:
        launcher.stop()


def test_two_workers_serve_one_port_and_metrics_are_summed(launcher):
    serve(launcher, 40)
    assert wait_for(lambda: len(launcher.records()) == 40)
    workers = {record["worker"] for record in launcher.records()}
    assert {w.split(":")[0] for w in workers} == {"1", "2"}, workers  # both served

    found = scrape(launcher.metrics)
    assert metric(found, "calo_requests_total", status_class="2xx") == 40
    assert metric(found, "gen_ai_server_request_duration_seconds_count") == 40
    input_tokens = sum(r["usage"]["input_tokens"] for r in launcher.records())
    assert metric(found, "gen_ai_client_token_usage_sum", gen_ai_token_type="input") == (
        input_tokens
    )
    wait_metric(launcher.metrics, "calo_shared_state_up", 1, backend="redis")

    # a worker that dies is started again; what it counted stays in the sum
    number, pid = next(iter(workers)).split(":")
    os.kill(int(pid), signal.SIGKILL)
    died = f"worker {number} (pid {pid}) exited with code -9; starting it again"
    assert wait_for(lambda: launcher.said(died) == 1), launcher.output
    assert wait_for(lambda: launcher.said("listening at") == 3, 60), launcher.output
    serve(launcher, 10)
    wait_metric(launcher.metrics, "calo_requests_total", 50, status_class="2xx")

    # Ctrl-C stops them all
    pids = {int(r["worker"].split(":")[1]) for r in launcher.records()} - {int(pid)}
    launcher.proc.send_signal(signal.SIGINT)
    assert launcher.proc.wait(30) == 0
    assert not any(pid_alive(p) for p in pids)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{launcher.port}/health")


def test_a_responses_conversation_goes_on_whichever_worker_gets_the_next_call(launcher, upstream):
    """`previous_response_id` chained over calls that each open a connection of their own, so
    the kernel spreads them over both workers: the chain holds (the upstream gets every earlier
    turn) and goes on until both workers served part of it, so one continued what the other
    answered."""
    previous, turns = None, []
    for turn in range(40):
        with httpx.Client(headers={"connection": "close"}) as http:
            client = openai.OpenAI(
                base_url=f"http://127.0.0.1:{launcher.port}/v1",
                api_key="unused",
                max_retries=0,
                http_client=http,
            )
            answer = client.responses.create(
                model="gemini-2.5-flash", input=f"turn {turn}", previous_response_id=previous
            )
        previous = answer.id
        turns.append(f"turn {turn}")
        sent = upstream.last_call().body.decode()
        assert all(t in sent for t in turns), sent  # the whole conversation went up
        assert wait_for(lambda n=turn + 1: len(launcher.records()) == n)
        if len({r["worker"] for r in launcher.records()}) == 2 and turn >= 2:
            break
    assert len({r["worker"] for r in launcher.records()}) == 2, "one worker served all"


def refused_to_start(tmp_path, env: dict, port: int = 0) -> list[str]:
    """What `gemini-calo --workers 2` printed before it exited with 2."""
    launcher = CaloProcess(tmp_path, env, WORKERS, port=port)
    try:
        assert launcher.proc.wait(30) == 2
    finally:
        launcher.stop()
    assert wait_for(lambda: launcher.output)
    return launcher.output


def test_workers_without_redis_refuse_to_start_in_one_line(tmp_path, upstream):
    env = {"GEMINI_CALO_API_KEYS": "k1", "GEMINI_CALO_BASE_URL": upstream.url}
    assert refused_to_start(tmp_path, env) == [
        (
            "gemini-calo: --workers 2 needs shared state: set GEMINI_CALO_REDIS_URL "
            "(state.redis_url) to a Redis or Valkey server, e.g. redis://127.0.0.1:6379/0\n"
        )
    ]


@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "another-launchers"])
def test_workers_on_a_port_in_use_refuse_to_start_in_one_line(tmp_path, env, reuse_port):
    """Also a port held by another launcher's workers (SO_REUSEPORT), which new workers would
    otherwise join without a word, taking half its connections."""
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, int(reuse_port))
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        output = refused_to_start(tmp_path, env, port)
    assert output == [
        (
            f"gemini-calo: cannot listen on 127.0.0.1:{port}: the port is in use; stop what holds "
            "it or choose another port (-p PORT; GEMINI_CALO_HTTP_PORT)\n"
        )
    ]


def test_workers_stop_when_the_launcher_is_killed_outright(launcher):
    with open(f"/proc/{launcher.proc.pid}/task/{launcher.proc.pid}/children") as f:
        workers = [int(pid) for pid in f.read().split()]
    assert len(workers) == 2
    launcher.proc.kill()  # SIGKILL: the launcher cannot stop them itself
    assert wait_for(lambda: not any(pid_alive(p) for p in workers), 30)
