"""One JSON line per API call, written off the event loop.

Call lines always go to the log file: they are the audit record. `log.level` governs the
addon's diagnostic messages, and at DEBUG each call line also carries redacted headers and bodies.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
from typing import Any

from . import redact

logger = logging.getLogger("calo_addon")
calls = logging.getLogger("calo_addon.calls")


class _JsonDiagnostics(logging.Formatter):
    def __init__(self, scrub: redact.Scrubber):
        super().__init__()
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "message": record.getMessage(),
        }
        return self.scrub(json.dumps(line, ensure_ascii=False))


class CallLog:
    def __init__(self, path: str, level: str, scrub: redact.Scrubber):
        self.path = path
        self.debug = level == "DEBUG"
        self.scrub = scrub
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._file = logging.FileHandler(path, encoding="utf-8", delay=True)
        self._file.setFormatter(logging.Formatter("%(message)s"))
        self._listener = logging.handlers.QueueListener(self._queue, self._file)
        self._handler = logging.handlers.QueueHandler(self._queue)
        self._level = getattr(logging, level)

    def start(self) -> None:
        self._listener.start()
        calls.propagate = False
        calls.setLevel(logging.INFO)
        calls.addHandler(self._handler)
        # diagnostics go to the same file at the configured level
        # the logger passes INFO on to mitmproxy's console too; the file takes log.level
        logger.setLevel(logging.DEBUG if self.debug else logging.INFO)
        diagnostics = logging.handlers.QueueHandler(self._queue)
        diagnostics.setLevel(self._level)
        diagnostics.setFormatter(_JsonDiagnostics(self.scrub))
        self._diagnostics = diagnostics
        logger.addHandler(diagnostics)

    def stop(self) -> None:
        calls.removeHandler(self._handler)
        logger.removeHandler(self._diagnostics)
        self._listener.stop()
        self._file.close()

    def write(self, record: dict[str, Any]) -> None:
        calls.info(self.scrub(json.dumps(record, ensure_ascii=False, default=str)))
