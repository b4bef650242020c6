"""The evaluation on a scripted month (March 2026) of tasks, through GetEvaluation on the real
server; every expected figure is worked out by hand below. The month's tasks are written as
the procedures leave them (due dates already moved by an extension or a pause, a voided and a
parked case, a return): what the evaluation reads."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from gridbus.dispatch.v1 import dispatch_pb2 as pb
from shared import units
from shared.db import session_scope
from tests.dispatch.test_dispatch import ADMIN, D1_GRID, D2_GRID

# Monday 2 March 2026, 09:00 in Shanghai: a working morning (09:00-12:00), then 13:30-18:00.
MON = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)


def scripted_task(department, grid, dispatched, *, ack_due=H, acked=0.5 * H, resolve_due=4 * H, resolved=None,
                  closed=None, status="closed", reopened=0, returned_by=(), paused_minutes=0, extended_minutes=0,
                  supervised=False):
    """Times are offsets from `dispatched`."""
    at = lambda offset: dispatched + offset if offset is not None else None  # noqa: E731
    parked = status == "parked"
    return {"id": uuid.uuid4(), "incident_id": uuid.uuid4(), "status": status, "department_code": department,
            "grid_code": grid, "lineage": units.lineage(grid), "dispatched_at": dispatched,
            "ack_due_at": at(ack_due), "acknowledged_at": at(acked), "resolve_due_at": at(resolve_due),
            "resolved_at": at(resolved), "closed_at": at(closed), "reopened": reopened,
            "returned": len(returned_by), "returned_by": list(returned_by), "paused_minutes": paused_minutes,
            "extended_minutes": extended_minutes, "supervised": supervised,
            "holds": ["case"] if parked else [], "paused_at": dispatched + H if parked else None}


MONTH = [
    # A: on time all the way; resolved at 12:00 (3 working hours)
    scripted_task("CG-SANITATION", D1_GRID, MON, resolved=3 * H, closed=4 * H),
    # B: acknowledged late, resolved late at 15:00 (3 + 1.5 = 4.5 working hours), reworked, closed
    scripted_task("CG-SANITATION", D1_GRID, MON, acked=2 * H, resolved=6 * H, closed=7 * H, reopened=1),
    # C: an extension of 120 working minutes moved its resolve due from +4 h to +6 h; resolved at 11:00
    #    (2 working hours); closed
    scripted_task("CG-SANITATION", D2_GRID, MON, resolve_due=6 * H, resolved=2 * H, closed=3 * H,
                  extended_minutes=120),
    # D: its clock stood still 90 working minutes; resolved at 11:30: 2.5 working hours, 1 of handling
    scripted_task("CG-SANITATION", D2_GRID, MON, resolve_due=5.5 * H, resolved=2.5 * H, closed=3 * H,
                  paused_minutes=90),
    # E: voided (filed in error): in no denominator
    scripted_task("CG-SANITATION", D1_GRID, MON, resolved=None, status="voided"),
    # F: parked, 300 working minutes paused so far; acknowledged on time, not resolved
    scripted_task("CG-SANITATION", D1_GRID, MON, resolved=None, status="parked", paused_minutes=300),
    # G: returned by CG-STREET, then SANITATION's: resolved at 10:00 (1 working hour), closed
    scripted_task("CG-SANITATION", D1_GRID, MON, resolved=1 * H, closed=2 * H, returned_by=["CG-STREET"]),
    # H: Tuesday: CG-STREET's, supervised, resolved late (2 working hours after a 1 h due), not closed
    scripted_task("CG-STREET", D2_GRID, MON + 24 * H, resolve_due=1 * H, resolved=2 * H, status="resolved",
                  supervised=True),
]


@pytest.fixture(scope="module")
def month(environment, dispatch_config):
    with session_scope() as s:
        for t in MONTH:
            s.execute(text(
                "INSERT INTO dispatch.tasks (id, incident_id, status, department_code, category, priority, grid_code, "
                "lineage, dispatched_at, ack_due_at, acknowledged_at, resolve_due_at, resolved_at, closed_at, "
                "reopened, returned, returned_by, paused_minutes, extended_minutes, supervised, holds, paused_at) "
                "VALUES (:id, :incident_id, :status, :department_code, '0102', 3, :grid_code, :lineage, "
                ":dispatched_at, :ack_due_at, :acknowledged_at, :resolve_due_at, :resolved_at, :closed_at, "
                ":reopened, :returned, :returned_by, :paused_minutes, :extended_minutes, :supervised, :holds, "
                ":paused_at)"), t)


def evaluation(dispatch_stub, group_by):
    req = pb.EvaluationRequest(group_by=group_by)
    getattr(req, "from").FromDatetime(datetime(2026, 3, 1, tzinfo=timezone.utc))
    req.to.FromDatetime(datetime(2026, 4, 1, tzinfo=timezone.utc))
    reply = dispatch_stub.GetEvaluation(req, metadata=ADMIN)
    return {r.key: r for r in reply.rows}, reply.formula


def index(on_time_closure, closure, rework, ack_on_time, returns):
    """The sample weights (services/dispatch/config/evaluation.yaml), by hand."""
    return 100 * (40 * on_time_closure + 20 * closure + 20 * (1 - rework) + 10 * ack_on_time + 10 * (1 - returns)) / 100


def test_a_scripted_month_per_department(dispatch_stub, month):
    rows, formula = evaluation(dispatch_stub, "department")
    s = rows["CG-SANITATION"]
    # A B C D F G count (E is voided); F is parked; A C D G resolved and closed on time; B late.
    assert (s.dispatched, s.voided, s.parked, s.returned, s.supervised, s.extended) == (6, 1, 1, 0, 0, 1)
    assert (s.acknowledged_on_time, s.resolved_on_time) == (5, 4)
    assert s.closure_rate == pytest.approx(5 / 6) and s.on_time_closure_rate == pytest.approx(4 / 6)
    assert s.rework_rate == pytest.approx(1 / 6) and s.return_rate == 0
    assert s.mean_hours_to_resolve == pytest.approx((3 + 4.5 + 2 + 1 + 1) / 5)  # D: 2.5 h less 1.5 h paused
    assert s.paused_hours == pytest.approx(1.5 + 5)
    assert s.index == pytest.approx(index(4 / 6, 5 / 6, 1 / 6, 5 / 6, 0))
    st = rows["CG-STREET"]
    # H, and G's return: 1 kept + 1 returned received.
    assert (st.dispatched, st.returned, st.supervised, st.resolved_on_time) == (1, 1, 1, 0)
    assert st.return_rate == pytest.approx(1 / 2) and st.closure_rate == 0
    assert st.index == pytest.approx(index(0, 0, 0, 1, 1 / 2))
    total = rows["all"]
    assert (total.dispatched, total.voided, total.returned) == (7, 1, 1)
    assert total.return_rate == pytest.approx(1 / 8)
    assert formula.startswith("index = 100 x (40 x on_time_closure_rate + 20 x closure_rate")


def test_a_scripted_month_per_district_and_day(dispatch_stub, month):
    rows, _ = evaluation(dispatch_stub, "district")
    assert (rows["330102"].dispatched, rows["330102"].voided, rows["330102"].parked, rows["330102"].returned) == \
        (4, 1, 1, 1)                                       # A B F G; E voided; G's return
    assert (rows["330103"].dispatched, rows["330103"].extended, rows["330103"].supervised) == (3, 1, 1)  # C D H
    assert rows["330103"].resolved_on_time == 2 and rows["330103"].on_time_closure_rate == pytest.approx(2 / 3)
    rows, _ = evaluation(dispatch_stub, "day")
    assert set(rows) == {"2026-03-02", "2026-03-03", "all"}   # days in the calendar's time zone
    assert (rows["2026-03-02"].dispatched, rows["2026-03-03"].dispatched) == (6, 1)
