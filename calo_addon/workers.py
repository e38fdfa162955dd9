"""`gemini-calo --workers N`: N mitmdump processes serving one port."""

from __future__ import annotations

import os

WORKER_ENV = "GEMINI_CALO_WORKER"  # set by the launcher in each worker: its number, from 1


def worker_number() -> int | None:
    """This process's number among the launcher's workers; None when it is not one."""
    value = os.environ.get(WORKER_ENV, "")
    return int(value) if value.isdigit() else None
