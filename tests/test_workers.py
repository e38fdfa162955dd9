"""The --workers launcher's checks, before any worker starts (workers.py, launcher.py)."""

from __future__ import annotations

import socket

import pytest

from calo_addon import launcher, workers


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], (1, [])),
        (["--workers", "3", "--set", "x=1"], (3, ["--set", "x=1"])),
        (["--workers=2", "--web"], (2, ["--web"])),
    ],
)
def test_workers_flag(argv, expected):
    assert launcher.take_workers(argv) == expected


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_bad_workers_flag_says_so_in_one_line(value, capsys):
    with pytest.raises(SystemExit) as stopped:
        launcher.take_workers(["--workers", value])
    assert stopped.value.code == 2
    assert (
        capsys.readouterr().err == f"gemini-calo: --workers expects a number >= 1, got {value!r}\n"
    )


def test_listen_address_from_mitmproxy_arguments():
    args = ["-s", "x.py", "--listen-host", "127.0.0.1", "--listen-port", "8000"]
    assert workers.listen_address(args) == ("127.0.0.1", 8000)
    assert workers.listen_address(["--listen-port=9000"]) == ("", 9000)
    assert workers.listen_address(["-p", "7000", "--listen-host=::1"]) == ("::1", 7000)


@pytest.mark.parametrize(
    "args", [["-p", "0"], [], ["--listen-port", "80", "--mode", "reverse:http://x@9000"]]
)
def test_workers_need_one_fixed_port(args):
    with pytest.raises(workers.Refused):
        workers.listen_address(args)


def test_workers_refuse_without_shared_state():
    with pytest.raises(workers.Refused, match="needs shared state: set GEMINI_CALO_REDIS_URL"):
        workers.serve(2, ["--listen-port", "8000"], None, None)


def test_web_with_workers_is_refused(capsys, monkeypatch):
    monkeypatch.setenv("GEMINI_CALO_API_KEYS", "k")
    with pytest.raises(SystemExit) as stopped:
        launcher.main(["--workers", "2", "--web"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err == (
        "gemini-calo: --workers runs mitmdump: mitmweb (--web) serves one process\n"
    )


def test_a_free_port_passes_the_check():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workers.check_port_free("127.0.0.1", port)


def test_worker_number_comes_from_the_launcher(monkeypatch):
    monkeypatch.delenv(workers.WORKER_ENV, raising=False)
    assert workers.worker_number() is None
    monkeypatch.setenv(workers.WORKER_ENV, "2")
    assert workers.worker_number() == 2
