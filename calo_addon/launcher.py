"""`gemini-calo` and `python -m calo_addon`: mitmdump (or mitmweb with --web) running the addon
in reverse mode on GEMINI_CALO_HTTP_PORT (default 8000), towards the configured base_url.
Extra arguments go to mitmproxy.
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


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    web = "--web" in argv
    extra = [a for a in argv if a != "--web"]
    config_path = next((a.split("=", 1)[1] for a in extra if a.startswith("calo_config=")), None)
    try:
        settings = cfg.load_settings(config_path, cfg.environment())
    except cfg.ConfigError as e:
        print(f"gemini-calo: {e}", file=sys.stderr)
        sys.exit(2)
    from mitmproxy.tools import main as mitm

    from . import startup

    try:
        (mitm.mitmweb if web else mitm.mitmdump)(mitmproxy_args(settings, extra))
    except OSError as e:  # raised, not logged: mitmweb's own web server failing to listen
        sys.exit(f"gemini-calo: {startup.summary(str(e))}")


if __name__ == "__main__":
    main()
