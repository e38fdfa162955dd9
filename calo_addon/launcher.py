"""`gemini-calo` and `python -m calo_addon`: mitmdump (or mitmweb with --web) running the addon
in reverse mode on GEMINI_CALO_HTTP_PORT (default 8000), towards the configured base_url.
Extra arguments go to mitmproxy. `--workers N` runs N mitmdump processes on that one port
(workers.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import config as cfg
from .settings import Settings

SCRIPT = Path(__file__).resolve().parent / "__init__.py"


def mitmproxy_args(settings: Settings, extra: list[str]) -> list[str]:
    args = ["-s", str(SCRIPT), "--set", "connection_strategy=lazy"]
    if not any(a == "--mode" or a.startswith(("--mode=", "-m")) for a in extra):
        args += ["--mode", f"reverse:{settings.base_url}"]
    if not any(a in ("-p", "--listen-port") or a.startswith("--listen-port=") for a in extra):
        args += ["--listen-port", str(settings.http_port)]
    return args + extra


def take_workers(argv: list[str]) -> tuple[int, list[str]]:
    """(`--workers N`, the other arguments); N is 1 when not given."""
    rest, count, i = [], "1", 0
    while i < len(argv):
        if argv[i] == "--workers" and i + 1 < len(argv):
            count, i = argv[i + 1], i + 2
            continue
        if argv[i].startswith("--workers="):
            count = argv[i].partition("=")[2]
        else:
            rest.append(argv[i])
        i += 1
    if not count.isdigit() or int(count) < 1:
        print(f"gemini-calo: --workers expects a number >= 1, got {count!r}", file=sys.stderr)
        sys.exit(2)
    return int(count), rest


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    workers, argv = take_workers(argv)
    web = "--web" in argv
    extra = [a for a in argv if a != "--web"]
    config_path = next((a.split("=", 1)[1] for a in extra if a.startswith("calo_config=")), None)
    try:
        settings = cfg.load_settings(config_path, cfg.environment())
    except cfg.ConfigError as e:
        print(f"gemini-calo: {e}", file=sys.stderr)
        sys.exit(2)
    if workers > 1:
        sys.exit(_serve_workers(workers, web, settings, extra))
    from mitmproxy.tools import main as mitm

    from . import startup

    try:
        (mitm.mitmweb if web else mitm.mitmdump)(mitmproxy_args(settings, extra))
    except OSError as e:  # raised, not logged: mitmweb's own web server failing to listen
        sys.exit(f"gemini-calo: {startup.summary(str(e))}")


def _serve_workers(count: int, web: bool, settings: Settings, extra: list[str]) -> int:
    from . import workers

    try:
        if web:
            raise workers.Refused("--workers runs mitmdump: mitmweb (--web) serves one process")
        return workers.serve(
            count,
            mitmproxy_args(settings, extra),
            settings.state.redis_url,
            settings.metrics.listen,
        )
    except workers.Refused as refused:
        print(f"gemini-calo: {refused}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    main()
