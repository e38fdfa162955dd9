"""One JSON line per API call, in the log file; and the addon's one logger.

Call lines always go to the log file: they are the audit record. `log.level` governs the
addon's diagnostic lines (also JSON, in the same file), and at DEBUG each call line also
carries redacted headers and bodies. Every line has `time` (ISO 8601, UTC, milliseconds) and
`kind` ("call" or "diagnostic"), so `jq 'select(.kind == "call")'` picks the calls.

Every module logs through `logger` ("calo_addon"), whose filter scrubs every configured secret
from each message and traceback before any handler sees it: the log file, mitmproxy's console
and mitmweb's event log alike.

Lines are gathered in memory from the event loop and written a moment later: a line is a
memory copy, and the flush (one syscall for many lines) is batched. A writer thread was tried
and cost throughput: it contends with the event loop for the GIL on every line. Each flush is
one write() of whole lines to a file opened with O_APPEND, so processes that share the file
(`gemini-calo --workers N`) never cut each other's lines.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import traceback
from collections.abc import Callable
from typing import Any

import orjson

from . import redact

logger = logging.getLogger("calo_addon")
FLUSH_AFTER = 0.2  # seconds
FLUSH_BYTES = 1 << 16  # gathered bytes that are written at once, without waiting


def now_iso(when: float | None = None) -> str:
    moment = (
        datetime.datetime.fromtimestamp(when, datetime.UTC)
        if when is not None
        else datetime.datetime.now(datetime.UTC)
    )
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _ScrubFilter(logging.Filter):
    """Secrets out of every record the addon logs, before any handler formats it."""

    scrub: Callable[[str], str] = staticmethod(lambda text: text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.scrub(record.getMessage()), ()
        if record.exc_info and not record.exc_text:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            record.exc_text = self.scrub(text)
        return True


_filter = _ScrubFilter()
logger.addFilter(_filter)


class CallLog:
    def __init__(self, path: str, level: str, scrub: redact.Scrubber):
        self.path = path
        self.debug = level == "DEBUG"
        self.scrub = scrub
        self._level = getattr(logging, level)
        self._fd: int | None = None
        self._lines: list[str] = []
        self._gathered = 0
        self._flush_pending = False
        self._handler = _DiagnosticsHandler(self)
        self._handler.setLevel(self._level)

    def start(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _filter.scrub = self.scrub
        # the logger passes INFO on to mitmproxy's console too; the file takes log.level
        logger.setLevel(logging.DEBUG if self.debug else logging.INFO)
        logger.addHandler(self._handler)

    def stop(self) -> None:
        logger.removeHandler(self._handler)
        if self._fd is not None:
            self._flush()
            os.close(self._fd)
            self._fd = None

    def write(self, record: dict[str, Any]) -> None:
        self.write_line(self.scrub(orjson.dumps(record, default=str).decode()))

    def write_line(self, line: str) -> None:
        if self._fd is None:
            return
        self._lines.append(line + "\n")
        self._gathered += len(line) + 1
        if self._gathered >= FLUSH_BYTES:
            self._flush()
        elif not self._flush_pending:
            self._flush_pending = True
            try:
                asyncio.get_running_loop().call_later(FLUSH_AFTER, self._flush)
            except RuntimeError:  # no event loop (startup, tests): flush now
                self._flush()

    def _flush(self) -> None:
        self._flush_pending = False
        if self._fd is None or not self._lines:
            return
        data = "".join(self._lines).encode()
        self._lines, self._gathered = [], 0
        while data:  # a regular file takes it whole; a partial write goes on where it stopped
            data = data[os.write(self._fd, data) :]


class _DiagnosticsHandler(logging.Handler):
    def __init__(self, log: CallLog):
        super().__init__()
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        line = {
            "time": now_iso(record.created),
            "kind": "diagnostic",
            "level": record.levelname,
            "message": record.getMessage(),
        }
        if record.exc_text:
            line["traceback"] = record.exc_text
        self.log.write(line)
