"""Fixtures shared by every test directory."""

import pytest

pytest_plugins = ["tests.e2e.launch", "tests.redis_server"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "real_connect: keep the addon's connect-first check (calo_addon/connect.py)"
    )
    config.addinivalue_line(
        "markers",
        "agent_cli: runs the real Claude Code / Codex CLIs (deselect: -m 'not agent_cli')",
    )


@pytest.fixture(autouse=True)
def _upstreams_accept_connections(request, monkeypatch):
    """In-process tests point the addon at addresses where nothing listens (127.0.0.1:9) and
    never send there: the connect-first check says yes to them, unless a test asks for it.
    End-to-end tests run the proxy in its own process, where this has no effect."""
    if request.node.get_closest_marker("real_connect"):
        return

    async def accepted(host: str, port: int, timeout: float) -> None:
        return None

    monkeypatch.setattr("calo_addon.connect.try_connect", accepted)
