"""The task's side procedures and the paused clock, alone: who may ask and decide, the one
waiting request, and the working-time arithmetic across a weekend. No servers."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.dispatch import domain, procedures
from services.dispatch.calendar import WorkCalendar
from services.dispatch.operations.case_procedures import superior_unit
from shared.auth import Principal
from shared.errors import FailedPrecondition, InvalidArgument, PermissionDenied

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()
LINEAGE = ("330100", "330102", "330102001", "330102001001", "330102001001001")
DEPT = Principal("CG-01", "department", ("330100",))
OTHER_DEPT = Principal("SW-02", "department", ("330100",))
DISPATCHER = Principal("d1", "dispatcher", ("330102",))
FAR_DISPATCHER = Principal("d3", "dispatcher", ("330103",))


def at(d, h, mi=0):
    return datetime(2026, 11, d, h, mi, tzinfo=SH)


def state(status=domain.ACKNOWLEDGED, pending=None, pending_by=None):
    return procedures.TaskState(status, "CG-01", LINEAGE, pending, pending_by)


def test_working_time_between_two_moments_skips_nights_lunch_and_the_weekend():
    # Friday 27th 16:00 to Monday 30th 10:00: two hours on Friday, one on Monday.
    assert CAL.between(at(27, 16), at(30, 10)) == timedelta(hours=3)
    assert CAL.between(at(24, 11, 30), at(24, 14)) == timedelta(hours=1)
    assert CAL.between(at(24, 20), at(25, 8)) == timedelta(0)
    assert CAL.between(at(25, 10), at(24, 10)) == timedelta(0)
    for start, hours in ((at(27, 16), 3), (at(24, 11, 30), 5)):  # between undoes add
        assert CAL.between(start, CAL.add(start, timedelta(hours=hours))) == timedelta(hours=hours)


def test_a_pause_over_the_weekend_moves_the_due_by_the_working_time_it_stood_still():
    due = at(30, 11)                      # Monday 11:00: four working hours after Friday 16:00
    paused_at, resumed = at(27, 16), at(30, 10)
    paused = CAL.between(paused_at, resumed)
    assert paused == timedelta(hours=3)
    # Three working hours later: Monday 15:30 (lunch is no work). The same as the four hours
    # that were left at the pause, counted from the resume on Monday 10:00.
    assert procedures.moved_due(due, paused_at, paused, CAL) == at(30, 15, 30)
    assert CAL.add(resumed, CAL.between(paused_at, due)) == at(30, 15, 30)
    # A deadline missed before the clock stopped stays missed; no pause moves nothing.
    assert procedures.moved_due(at(27, 15), paused_at, paused, CAL) == at(27, 15)
    assert procedures.moved_due(due, paused_at, timedelta(0), CAL) == due
    assert procedures.moved_due(None, paused_at, paused, CAL) is None


def test_an_extension_adds_working_time_to_the_resolve_deadline():
    assert procedures.extended_due(at(27, 17), timedelta(hours=2), CAL) == at(30, 10)


def test_only_the_tasks_department_asks_and_one_request_waits_at_a_time():
    assert procedures.plan_request(DEPT, state(), "extension", 60).name == "extension"
    assert procedures.plan_request(DEPT, state(domain.ASSIGNED), "return", 0).name == "return"
    with pytest.raises(PermissionDenied, match="SW-02"):
        procedures.plan_request(OTHER_DEPT, state(), "extension", 60)
    with pytest.raises(PermissionDenied):
        procedures.plan_request(DISPATCHER, state(), "extension", 60)
    with pytest.raises(FailedPrecondition, match="return request is waiting"):
        procedures.plan_request(DEPT, state(pending="return", pending_by="CG-01"), "extension", 60)
    with pytest.raises(FailedPrecondition, match="resolved"):
        procedures.plan_request(DEPT, state(domain.RESOLVED), "extension", 60)
    for minutes in (0, -5, procedures.MAX_EXTENSION_MINUTES + 1):
        with pytest.raises(InvalidArgument, match="minutes"):
            procedures.plan_request(DEPT, state(), "extension", minutes)
    with pytest.raises(InvalidArgument, match="takes no minutes"):
        procedures.plan_request(DEPT, state(), "return", 30)
    with pytest.raises(InvalidArgument, match="unknown procedure"):
        procedures.plan_request(DEPT, state(), "void", 0)  # the case's, in incidents


def test_a_dispatcher_in_scope_other_than_the_asker_decides():
    waiting = state(pending="extension", pending_by="CG-01")
    assert procedures.plan_decision(DISPATCHER, waiting, "extension", True, 0, 120)[1] == 120
    assert procedures.plan_decision(DISPATCHER, waiting, "extension", True, 30, 120)[1] == 30
    assert procedures.plan_decision(DISPATCHER, waiting, "extension", False, 0, 120)[1] == 0
    with pytest.raises(InvalidArgument):
        procedures.plan_decision(DISPATCHER, waiting, "extension", True, 121, 120)
    with pytest.raises(InvalidArgument, match="granted_minutes only"):
        procedures.plan_decision(DISPATCHER, waiting, "extension", False, 30, 120)
    with pytest.raises(PermissionDenied):
        procedures.plan_decision(DEPT, waiting, "extension", True, 0, 120)
    with pytest.raises(PermissionDenied, match="outside"):
        procedures.plan_decision(FAR_DISPATCHER, waiting, "extension", True, 0, 120)
    with pytest.raises(PermissionDenied, match="asked"):
        procedures.plan_decision(Principal("d1", "admin", ("330100",)), state(pending="return", pending_by="d1"),
                                 "return", True, 0, None)
    with pytest.raises(FailedPrecondition, match="no return request"):
        procedures.plan_decision(DISPATCHER, waiting, "return", True, 0, None)


def test_holds_are_a_set_of_reasons():
    assert procedures.with_hold([], "case") == ["case"]
    assert procedures.with_hold(["case"], "case") == ["case"]
    assert procedures.without_hold(["case", "extension"], "case") == ["extension"]
    assert procedures.describe(timedelta(minutes=185)) == "3h05m"


def test_a_supervised_case_is_told_to_its_district():
    assert superior_unit(list(LINEAGE)) == "330102"
    assert superior_unit(["330100"]) == "330100"


def test_the_procedures_events_are_the_tasks_and_distinct():
    assert len(set(procedures.EVENTS)) == len(procedures.EVENTS) == 6
    assert all(p.sources <= domain.OPEN for p in procedures.TASK_PROCEDURES.values())
