"""Times as gridbus writes them in events and JSON: ISO 8601 in UTC with a `Z`."""
from __future__ import annotations

from datetime import datetime, timezone


def iso_utc(when: datetime | None) -> str | None:
    """`2026-11-24T22:58:01.123456Z`; None stays None (an optional time that is not set)."""
    if when is None:
        return None
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
