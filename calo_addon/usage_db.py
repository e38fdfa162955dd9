"""The SQLite file that keeps clients' usage across restarts (usage.py writes it in batches,
off the event loop). One row per client and period ("total", "day:YYYY-MM-DD",
"month:YYYY-MM"); every write adds to the row, so the file stays right whoever writes to it,
and it can be read with any SQLite tool: `SELECT * FROM usage`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class Counts:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    tokens: int = 0  # what token limits count: input + output as the upstream reported them

    def add(self, other: Counts) -> None:
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.tokens += other.tokens


class UsageFile:
    """The file, opened once: read back at start, added to per batch of changes."""

    SCHEMA = """CREATE TABLE IF NOT EXISTS usage (
        client TEXT NOT NULL, period TEXT NOT NULL,
        requests INTEGER NOT NULL DEFAULT 0, input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0, tokens INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (client, period))"""
    ADD = """INSERT INTO usage VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (client, period) DO UPDATE SET
        requests = requests + excluded.requests, input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens, tokens = tokens + excluded.tokens"""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()  # one writer at a time (batches are written in threads)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute(self.SCHEMA)

    def read(self, periods: Iterable[str]) -> dict[tuple[str, str], Counts]:
        wanted = tuple(periods)
        marks = ",".join("?" * len(wanted))
        query = (
            "SELECT client, period, requests, input_tokens, output_tokens, tokens FROM usage "
            f"WHERE period IN ({marks})"
        )
        with self._lock:
            rows = self._db.execute(query, wanted).fetchall()
        return {(client, period): Counts(*numbers) for client, period, *numbers in rows}

    def add(self, changes: dict[tuple[str, str], Counts]) -> None:
        """Add a batch of changes in one transaction."""
        rows = [
            (client, period, c.requests, c.input_tokens, c.output_tokens, c.tokens)
            for (client, period), c in changes.items()
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(self.ADD, rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
