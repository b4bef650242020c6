"""Times as gridbus writes them in events and JSON: ISO 8601 in UTC with a `Z`; and as HTTP
clients send them."""
from __future__ import annotations

from datetime import datetime, timezone

from shared.errors import InvalidArgument


def iso_utc(when: datetime | None) -> str | None:
    """`2026-11-24T22:58:01.123456Z`; None stays None (an optional time that is not set)."""
    if when is None:
        return None
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def parse_iso(value: str | None, what: str) -> datetime | None:
    """An ISO 8601 time with its zone (`Z` or an offset), as a query parameter sends it; empty:
    None. Anything else is InvalidArgument naming `what`."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(f"{what} must be an ISO 8601 time such as 2026-11-24T08:00:00Z, not {value!r}") from None
    if when.tzinfo is None:
        raise InvalidArgument(f"{what} must carry a time zone")
    return when
