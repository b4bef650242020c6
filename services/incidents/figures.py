"""Incident figures: what Summarize groups by and the case funnel. Plain Python, no I/O.
services.incidents.domain re-exports these names."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.errors import InvalidArgument

REPORTED, DISPATCHED, RESOLVED, VERIFIED = "reported", "dispatched", "resolved", "verified"
CLOSED, REJECTED, VOIDED = "closed", "rejected", "voided"


# --- figures -------------------------------------------------------------------------------

# What Summarize may group by; a unit level is the incident's lineage at that depth.
SUMMARY_UNIT_DEPTH = {"district": 1, "street": 2, "community": 3, "grid": 4}
SUMMARY_GROUPINGS = ("status", "category", *SUMMARY_UNIT_DEPTH, "day", "stage")
MAX_SUMMARY_DAYS = 366
# The case funnel of digital urban management (上报 立案 派遣 处置 结案).
FUNNEL = ("reported", "filed", "dispatched", "handled", "closed")
# The statuses whose having been reached decides a funnel stage (from the audit trail).
FUNNEL_MILESTONES = (DISPATCHED, RESOLVED, VERIFIED)


def funnel_stages(status: str, reached: set[str]) -> tuple[str, ...]:
    """The funnel stages an incident counts in, from its status and the milestones it reached.

    Every report is reported. It is filed (a case) unless the dispatcher rejected it as none, it
    was voided as filed in error, or it was closed without ever being verified (a rejected report closed, a merged duplicate).
    A filed case is dispatched, handled and closed once it reached dispatched, resolved and
    closed, so every stage is a subset of the one before."""
    filed = status not in (REJECTED, VOIDED) and not (status == CLOSED and VERIFIED not in reached)
    if not filed:
        return FUNNEL[:1]
    stages = FUNNEL[:2]
    if DISPATCHED in reached:
        stages += ("dispatched",)
        if RESOLVED in reached:
            stages += ("handled",)
            if status == CLOSED:
                stages += ("closed",)
    return stages


def check_summary(group_by: str, reported_from: datetime | None, reported_to: datetime | None,
                  time_zone: str, limit: int) -> str:
    """Checks a Summarize request; returns the time zone to count days in."""
    if group_by not in SUMMARY_GROUPINGS:
        raise InvalidArgument(f"group_by must be one of {', '.join(SUMMARY_GROUPINGS)}")
    if limit < 0:
        raise InvalidArgument("limit must be 0 (all) or more")
    if reported_from and reported_to and reported_from >= reported_to:
        raise InvalidArgument("reported_from must be before reported_to")
    zone = time_zone or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"time_zone {zone!r} is not an IANA time zone (e.g. Asia/Shanghai)")
    if group_by == "day":
        if not (reported_from and reported_to):
            raise InvalidArgument("grouping by day needs reported_from and reported_to")
        if reported_to - reported_from > timedelta(days=MAX_SUMMARY_DAYS):
            raise InvalidArgument(f"grouping by day covers at most {MAX_SUMMARY_DAYS} days")
    return zone


def days_between(reported_from: datetime, reported_to: datetime, zone: str) -> list[str]:
    """The calendar days (YYYY-MM-DD, in the zone) that [from, to) touches."""
    tz = ZoneInfo(zone)
    day, last = reported_from.astimezone(tz).date(), (reported_to - timedelta(microseconds=1)).astimezone(tz).date()
    days = []
    while day <= last:
        days.append(day.isoformat())
        day += timedelta(days=1)
    return days
