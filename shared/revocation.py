"""Which members' tokens are refused: this process's list of member id -> revoked before (epoch
seconds). A token issued before its member's time is refused by shared/auth.py on every call.

Grid writes the times (services/grid/signin.py `revoke_sessions`) and announces them; every
process keeps the list fresh from the announcement and from a periodic read of grid's table
(shared/revocation_feed.py), so a revocation is in force everywhere within seconds."""
from __future__ import annotations

import math
import threading

_revoked_before: dict[str, float] = {}
_lock = threading.Lock()


def stamp(when: float) -> float:
    """A token's issue time, and a revocation's: epoch seconds rounded up to the millisecond, so a
    token issued before a revocation is never stamped after it."""
    return math.ceil(when * 1000) / 1000


def revoked(member_id: str, issued_at: float) -> bool:
    """Issued at or before its member's revocation (both stamped): refused. A token issued in the
    very millisecond after it is refused too; no sign-in is that quick."""
    before = _revoked_before.get(member_id)
    return before is not None and issued_at <= before


def note(member_id: str, before: float) -> None:
    """Tokens of this member issued before `before` are refused from now on (a later time wins)."""
    with _lock:
        if before > _revoked_before.get(member_id, 0.0):
            _revoked_before[member_id] = before


def note_all(times: dict[str, float]) -> None:
    for member_id, before in times.items():
        note(member_id, before)


def clear() -> None:
    """Forgets every revocation (tests of pure code)."""
    with _lock:
        _revoked_before.clear()
