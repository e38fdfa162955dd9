"""One JSON line per API call, in the log file.

Call lines always go to the log file: they are the audit record. `log.level` governs the
addon's diagnostic lines (also JSON, in the same file), and at DEBUG each call line also
carries redacted headers and bodies.

Lines go to a buffered file from the event loop and are flushed a moment later: a write is a
memory copy, and the flush (one syscall for many lines) is batched. A writer thread was tried
and cost throughput: it contends with the event loop for the GIL on every line.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import orjson

from . import redact

logger = logging.getLogger("calo_addon")
FLUSH_AFTER = 0.2  # seconds


class CallLog:
    def __init__(self, path: str, level: str, scrub: redact.Scrubber):
        self.path = path
        self.debug = level == "DEBUG"
        self.scrub = scrub
        self._level = getattr(logging, level)
        self._file = None
        self._flush_pending = False
        self._handler = _DiagnosticsHandler(self)
        self._handler.setLevel(self._level)

    def start(self) -> None:
        self._file = open(self.path, "a", encoding="utf-8", buffering=1 << 16)  # noqa: SIM115
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
        line = {"time": self.formatter_time(record), "level": record.levelname}
        line["message"] = record.getMessage()
        self.log.write_line(self.log.scrub(json.dumps(line, ensure_ascii=False)))

    @staticmethod
    def formatter_time(record: logging.LogRecord) -> str:
        return logging.Formatter().formatTime(record)
