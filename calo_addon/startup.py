"""A failed start ends with one clear line and a non-zero exit, before any "listening at" line.

Order of a mitmproxy start (mitmproxy/master.py `Master.run`): options are set, which creates a
task per `-s` script; the proxy listeners are then bound (`setup_servers`, run eagerly) and the
script is loaded and configured while "listening at" is still to be logged; after that the
errorcheck addon (mitmproxy/addons/errorcheck.py) exits if anything logged an error, printing
"Error logged during startup, exiting...", which names nothing. So a bad configuration logged
from `configure` is followed by "listening at", and a port in use is logged before this addon
even loads. While mitmproxy is starting, this module turns the first error into one line on
stderr that says what failed, and exits at once: the exception leaves the event loop before the
pending "listening at" line is written.
"""

from __future__ import annotations

import errno
import logging
import re
import sys
import threading
from typing import NoReturn

from mitmproxy import ctx

_LISTEN_FAILED = re.compile(r"failed to listen on (\S+) with \[Errno (\d+)\]")
_ERRNO_PREFIX = re.compile(r"^\[Errno \d+\] ")
_OTHER_PORT = "-p PORT; GEMINI_CALO_HTTP_PORT for gemini-calo and scripts/start"
_watch: StartupWatch | None = None


def starting() -> bool:
    """True while mitmproxy is starting: its errorcheck addon still watches the log."""
    try:
        checker = ctx.master.addons.get("errorcheck")
    except AttributeError:  # no master (a unit test without mitmproxy's tools)
        return False
    handler = getattr(checker, "logger", None)
    return handler is not None and handler in logging.getLogger().handlers


def stop(line: str, code: int = 1) -> NoReturn:
    """Print `line` as the last word of a start that failed, and exit with `code`."""
    print(line, file=sys.stderr, flush=True)
    raise SystemExit(code)


def summary(message: str) -> str:
    """One line for an error mitmproxy logged while starting; a port in use says what to do."""
    first = _ERRNO_PREFIX.sub("", (message or "unknown error").splitlines()[0])
    failed = _LISTEN_FAILED.search(first)
    if failed and int(failed.group(2)) == errno.EADDRINUSE:
        how = "--set web_port=PORT" if first.startswith("Web server") else _OTHER_PORT
        return (
            f"cannot listen on {failed.group(1)}: the port is in use; stop what holds it or "
            f"choose another port ({how})"
        )
    return f"mitmproxy could not start: {first}"


class StartupWatch(logging.Handler):
    """Stops the process on the first error logged while mitmproxy is starting."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)

    def emit(self, record: logging.LogRecord) -> None:
        if threading.current_thread() is not threading.main_thread() or not starting():
            return  # SystemExit only ends the event loop from its own thread
        stop(f"calo_addon: {summary(record.getMessage())}")


def watch() -> None:
    """Called from the addon's first `configure`: stop now if mitmproxy already logged an error
    while starting (a listener that failed before this script loaded), else on the next one.
    Does nothing outside a starting mitmproxy (a hot reload, a unit test)."""
    global _watch
    if _watch is not None or not starting():
        return
    earlier = getattr(
        getattr(ctx.master.addons.get("errorcheck"), "logger", None), "has_errored", []
    )
    if earlier:
        stop(f"calo_addon: {summary(earlier[0].getMessage())}")
    _watch = StartupWatch()
    logging.getLogger().addHandler(_watch)


def unwatch() -> None:
    """Called once mitmproxy runs: later errors are the running proxy's own business."""
    global _watch
    if _watch is not None:
        logging.getLogger().removeHandler(_watch)
        _watch = None
