"""Summarize (counts for command-centre figures) and ListIncidents by ids, through gRPC."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import grpc
import pytest

from gridbus.incidents.v1 import incidents_pb2 as pb
from services.incidents import domain
from tests.incidents.conftest import GRIDS
from tests.incidents.test_lifecycle import DEPARTMENT, DISPATCHER, FOREIGN_DISPATCHER, act, new_incident
from tests.incidents.test_report import call_error
from tests.support import metadata, token


@pytest.mark.parametrize("status, reached, stages", [
    ("reported", set(), ("reported", "filed")),
    ("rejected", set(), ("reported",)),
    ("closed", set(), ("reported",)),                                       # a rejected report, closed
    ("closed", {"dispatched"}, ("reported",)),                              # a merged duplicate
    ("in_progress", {"dispatched"}, ("reported", "filed", "dispatched")),
    ("reopened", {"dispatched", "resolved"}, ("reported", "filed", "dispatched", "handled")),
    ("closed", {"dispatched", "resolved", "verified"}, domain.FUNNEL),
])
def test_funnel_stages(status, reached, stages):
    assert domain.funnel_stages(status, reached) == stages


# Grids no other test reports in, one in each district, so the counts are these tests' own.
GRID, OTHER_GRID = GRIDS[14], GRIDS[30]
OFFICER = token("officer", GRID, member_id="officer-14")


def summarize(stub, who, group_by, since, **kw) -> pb.SummarizeResponse:
    req = pb.SummarizeRequest(group_by=group_by, **{"grid_code": GRID, **kw})
    req.reported_from.FromDatetime(since)
    if group_by == "day":
        req.reported_to.FromDatetime(since + timedelta(days=2))
    return stub.Summarize(req, metadata=metadata(who))


@pytest.fixture(scope="module")
def cases(stub):
    """Four reports from now on: one closed after the whole way, one rejected, one waiting
    (all in GRID's district) and one in another district."""
    since = datetime.now(timezone.utc)
    done = new_incident(stub, GRID, OFFICER, category="0601")
    done = act(stub, DISPATCHER, done, pb.ACTION_DISPATCH, department_code="CG-01")
    done = act(stub, DEPARTMENT, done, pb.ACTION_ACCEPT)
    done = act(stub, DEPARTMENT, done, pb.ACTION_RESOLVE, note="fixed")
    done = act(stub, OFFICER, done, pb.ACTION_VERIFY)
    done = act(stub, DISPATCHER, done, pb.ACTION_CLOSE)
    rejected = act(stub, DISPATCHER, new_incident(stub, GRID, OFFICER, category="0601"), pb.ACTION_REJECT,
                   note="not a case")
    waiting = new_incident(stub, GRID, OFFICER, category="0102")
    foreign = new_incident(stub, grid=OTHER_GRID, officer=token("officer", OTHER_GRID, member_id="officer-8"))
    return since, done, rejected, waiting, foreign


def test_the_funnel_counts_each_stage_reached(stub, cases):
    since = cases[0]
    reply = summarize(stub, DISPATCHER, "stage", since)
    assert [(r.key, r.count) for r in reply.rows] == [("reported", 3), ("filed", 2), ("dispatched", 1),
                                                      ("handled", 1), ("closed", 1)]
    assert reply.total == 3


def test_groupings_count_and_count_the_open_ones(stub, cases):
    since = cases[0]
    by_status = {r.key: (r.count, r.open) for r in summarize(stub, DISPATCHER, "status", since).rows}
    assert by_status == {"closed": (1, 0), "rejected": (1, 0), "reported": (1, 1)}
    top = summarize(stub, DISPATCHER, "category", since, limit=1)
    assert [(r.key, r.count) for r in top.rows] == [("0601", 2)] and top.total == 3
    assert [(r.key, r.count, r.open) for r in summarize(stub, DISPATCHER, "grid", since).rows] == [(GRID, 3, 1)]
    assert [(r.key, r.count) for r in summarize(stub, DISPATCHER, "district", since).rows] == [(GRID[:6], 3)]
    mine = summarize(stub, DISPATCHER, "district", since, grid_code="").rows  # the whole scope
    assert [r.key for r in mine] == [GRID[:6]]


def test_days_are_counted_in_the_asked_time_zone_and_empty_days_are_zero(stub, cases):
    since = cases[0]
    rows = summarize(stub, DISPATCHER, "day", since, time_zone="Asia/Shanghai").rows
    today = datetime.now(timezone(timedelta(hours=8))).date().isoformat()
    assert len(rows) in (2, 3) and [r.key for r in rows] == sorted(r.key for r in rows)
    assert {r.key: r.count for r in rows}[today] == 3 and sum(r.count for r in rows) == 3


def test_figures_stay_within_the_callers_scope(stub, cases):
    since = cases[0]
    assert summarize(stub, FOREIGN_DISPATCHER, "status", since, grid_code=OTHER_GRID).total == 1
    assert summarize(stub, FOREIGN_DISPATCHER, "status", since, grid_code="").total >= 1
    err = call_error(stub.Summarize, pb.SummarizeRequest(group_by="status", grid_code=GRID[:6]),
                     metadata=metadata(FOREIGN_DISPATCHER))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("request_, word", [
    (pb.SummarizeRequest(group_by="weekday"), "group_by"),
    (pb.SummarizeRequest(group_by="day"), "reported_from and reported_to"),
    (pb.SummarizeRequest(group_by="status", time_zone="Mars/Olympus"), "IANA"),
    (pb.SummarizeRequest(group_by="category", category_code="!"), "category"),
])
def test_bad_summaries_are_refused(stub, request_, word):
    err = call_error(stub.Summarize, request_, metadata=metadata(DISPATCHER))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and word in err.details()


def test_listing_by_ids_returns_those_the_caller_may_see(stub, cases):
    _, done, rejected, waiting, foreign = cases
    ids = [done.id, waiting.id, foreign.id]
    mine = stub.ListIncidents(pb.ListIncidentsRequest(incident_ids=ids), metadata=metadata(DISPATCHER))
    assert {i.id for i in mine.incidents} == {done.id, waiting.id}
    theirs = stub.ListIncidents(pb.ListIncidentsRequest(incident_ids=ids), metadata=metadata(FOREIGN_DISPATCHER))
    assert [i.id for i in theirs.incidents] == [foreign.id]
    err = call_error(stub.ListIncidents, pb.ListIncidentsRequest(incident_ids=["nope"]), metadata=metadata(DISPATCHER))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = call_error(stub.ListIncidents, pb.ListIncidentsRequest(incident_ids=[done.id] * 201), metadata=metadata(DISPATCHER))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "at most 200" in err.details()
