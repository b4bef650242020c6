"""Identifiers that arrive from callers."""
from __future__ import annotations

import uuid

from shared.errors import InvalidArgument


def parse_uuid(value, what: str) -> uuid.UUID:
    """The UUID a caller sent; InvalidArgument naming `what` when it is none."""
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise InvalidArgument(f"{what} {value!r} is not a UUID")
