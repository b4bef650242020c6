"""Emergency rules: which incidents are urgent, officers' availability, the stages an alert
widens through, and who may answer. Plain Python, no I/O.

An urgent incident (its priority, from its category or the report, is URGENT_PRIORITY) alerts the
on-duty, available officers near it whose position is fresh, nearest first. If nobody accepts in
time, the alert widens to the incident's district, then escalates to the district's dispatchers.
"""
from __future__ import annotations

from dataclasses import dataclass

from services.emergencies import access
from shared import access as shared_access
from shared.auth import Principal
from shared.errors import FailedPrecondition, InvalidArgument

URGENT_PRIORITY = 1

# Officers' availability, kept by what they do: on or off duty (grid), accepting an alert (busy
# on its case) and the case ending (available again).
AVAILABLE, BUSY, OFF_DUTY = "available", "busy", "off_duty"
# What takes an officer back from busy: the incident leaves the officer's hands.
FREES_OFFICER = ("incidents.incident.resolved", "incidents.incident.closed", "incidents.incident.rejected",
                 "incidents.incident.voided")

# An alert's stages: whom it reaches, and what follows when nobody accepts in time.
NEAR, DISTRICT, ESCALATED = "near", "district", "escalated"
STAGES = {NEAR: DISTRICT, DISTRICT: ESCALATED}
# An alert is open until someone accepts it, or withdrawn when its case ends first.
OPEN, ACCEPTED, WITHDRAWN = "open", "accepted", "withdrawn"
MAX_SUGGESTIONS = 20


@dataclass(frozen=True)
class Candidate:
    member_id: str
    name: str
    distance_m: float
    open_cases: int


def is_urgent(data: dict) -> bool:
    return int(data.get("priority") or 0) == URGENT_PRIORITY


def district_of(lineage: list[str]) -> str:
    """The county-level unit (the second in a lineage running city, district, street, ...)."""
    return lineage[1] if len(lineage) > 1 else lineage[0]


def availability(on_duty: bool, busy: bool) -> str:
    if not on_duty:
        return OFF_DUTY
    return BUSY if busy else AVAILABLE


def order(candidates: list[Candidate]) -> list[Candidate]:
    """Nearest first; at the same distance (to the metre) the one with fewer open cases."""
    return sorted(candidates, key=lambda c: (round(c.distance_m), c.open_cases, c.member_id))


def next_stage(stage: str) -> str:
    return STAGES[stage]


def may_answer(p: Principal, recipients: set[str], status: str, accepted_by: str | None) -> None:
    shared_access.require(access.ANSWER, p, owner=p.member_id if p.member_id in recipients else None,
                          what="this alert (it was not sent to you)")
    if status == ACCEPTED:
        raise FailedPrecondition(f"{accepted_by} accepted this alert already")
    if status == WITHDRAWN:
        raise FailedPrecondition("this alert was withdrawn: its case ended")


def may_suggest(p: Principal, lineage: list[str], rule=access.SUGGEST) -> None:
    shared_access.require(rule, p, units_=list(lineage[-1:]) or None, what="this incident")


def check_limit(limit: int) -> int:
    if limit < 0:
        raise InvalidArgument("limit must not be negative")
    return min(limit or 5, MAX_SUGGESTIONS)
