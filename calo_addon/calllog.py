"""One JSON line per API call, in the log file; and the addon's one logger.

Call lines always go to the log file: they are the audit record. `log.level` governs the
addon's diagnostic lines (also JSON, in the same file), and at DEBUG each call line also
carries redacted headers and bodies. Every line has `time` (ISO 8601, UTC, milliseconds) and
`kind` ("call" or "diagnostic"), so `jq 'select(.kind == "call")'` picks the calls.

Every module logs through `logger` ("calo_addon"), whose filter scrubs every configured secret
from each message and traceback before any handler sees it: the log file, mitmproxy's console
and mitmweb's event log alike.

Lines go to a buffered file from the event loop and are flushed a moment later: a write is a
memory copy, and the flush (one syscall for many lines) is batched. A writer thread was tried
and cost throughput: it contends with the event loop for the GIL on every line.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import traceback
from collections.abc import Callable
from typing import Any, TextIO

import orjson

from . import redact

logger = logging.getLogger("calo_addon")
FLUSH_AFTER = 0.2  # seconds


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
        self._file: TextIO | None = None
        self._flush_pending = False
        self._handler = _DiagnosticsHandler(self)
        self._handler.setLevel(self._level)

    def start(self) -> None:
        self._file = open(self.path, "a", encoding="utf-8", buffering=1 << 16)  # noqa: SIM115
        _filter.scrub = self.scrub
        # the logger passes INFO on to mitmproxy's console too; the file takes log.level
        logger.setLevel(logging.DEBUG if self.debug else logging.INFO)
        logger.addHandler(self._handler)

    def stop(self) -> None:
        logger.removeHandler(self._handler)
        if self._file is not None:
            self._file.close()
            self._file = None

    def write(self, record: dict[str, Any]) -> None:
        self.write_line(self.scrub(orjson.dumps(record, default=str).decode()))

    def write_line(self, line: str) -> None:
        if self._file is None:
            return
        self._file.write(line + "\n")
        if not self._flush_pending:
            self._flush_pending = True
            try:
                asyncio.get_running_loop().call_later(FLUSH_AFTER, self._flush)
            except RuntimeError:  # no event loop (startup, tests): flush now
                self._flush()

    def _flush(self) -> None:
        self._flush_pending = False
        if self._file is not None:
            self._file.flush()


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
