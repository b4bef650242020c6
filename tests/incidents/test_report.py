"""Intake through the gRPC API on the real servers: pinned, idempotent, validated, authorized."""
from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from sqlalchemy import text

from gridbus.incidents.v1 import incidents_pb2 as pb
from shared.db import session_scope
from tests.incidents.conftest import DISTRICTS, GRIDS, inside, report_request
from tests.support import metadata, token

OFFICER = token("officer", GRIDS[0], GRIDS[1], member_id="officer-1")


def count(sql: str, **params) -> int:
    with session_scope() as s:
        return s.execute(text(sql), params).scalar()


def call_error(fn, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, **kwargs)
    return info.value


def test_a_report_is_pinned_to_its_grid_with_its_lineage(stub):
    req = report_request(GRIDS[1])
    out = stub.Report(req, metadata=metadata(OFFICER))
    i = out.incident
    assert not out.replayed
    assert i.grid_code == GRIDS[1]
    assert list(i.lineage) == ["330100", GRIDS[1][:6], GRIDS[1][:9], GRIDS[1][:12], GRIDS[1]]
    assert (i.status, i.version, i.reporter_id) == (pb.STATUS_REPORTED, 1, "officer-1")
    assert i.priority == 3  # the category's default
    assert math.isclose(i.location.lon, req.location.lon) and i.report_id == req.report_id


def test_a_retry_returns_the_first_result_and_writes_nothing_new(stub):
    req = report_request(GRIDS[0])
    first = stub.Report(req, metadata=metadata(OFFICER))
    again = stub.Report(req, metadata=metadata(OFFICER))
    assert again.replayed and again.incident.id == first.incident.id
    assert count("SELECT count(*) FROM incidents.incidents WHERE report_id = :r", r=req.report_id) == 1
    assert count("SELECT count(*) FROM incidents.outbox WHERE data->>'report_id' = :r", r=req.report_id) == 1


def test_the_same_report_id_with_other_content_is_already_exists(stub):
    req = report_request(GRIDS[0])
    stub.Report(req, metadata=metadata(OFFICER))
    req.title = "Something else entirely"
    err = call_error(stub.Report, req, metadata=metadata(OFFICER))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS and "new report_id" in err.details()


def test_a_point_outside_every_grid_is_not_found_and_nothing_is_stored(stub):
    before = count("SELECT count(*) FROM incidents.incidents")
    err = call_error(stub.Report, report_request(at=(121.5, 31.2)), metadata=metadata(OFFICER))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "(121.5, 31.2)" in err.details()
    assert count("SELECT count(*) FROM incidents.incidents") == before


def _future():
    return datetime.now(timezone.utc) + timedelta(hours=1)


BAD = {
    "nan lon": (dict(at=(float("nan"), 30.1)), "lon must be a finite"),
    "infinite lat": (dict(at=(120.1, float("inf"))), "lat must be a finite"),
    "lat out of range": (dict(at=(120.1, 95.0)), "outside -90..90"),
    "no fix": (dict(at=(0.0, 0.0)), "without a fix"),
    "negative accuracy": (dict(accuracy_m=-1.0), "accuracy_m"),
    "unknown category": (dict(category="9999"), "unknown category 9999"),
    "malformed category": (dict(category="x"), "category code"),
    "empty title": (dict(title="  "), "title is required"),
    "long title": (dict(title="x" * 121), "at most 120"),
    "long description": (dict(description="y" * 4001), "at most 4000"),
    "bad report id": (dict(report_id="phone-1"), "not a UUID"),
    "future": (dict(occurred_at=_future()), "in the future"),
    "stale": (dict(occurred_at=datetime.now(timezone.utc) - timedelta(days=31)), "older than 30 days"),
    "too many attachments": (dict(attachments=[pb.Attachment(sha256="a" * 64, size_bytes=1, media_type="image/jpeg",
                                                             uri=f"https://files/{i}") for i in range(10)]),
                             "at most 9"),
    "bad sha": (dict(attachments=[pb.Attachment(sha256="zz", size_bytes=1, media_type="image/jpeg",
                                                uri="https://f/1")]), "sha256"),
    "bad media type": (dict(attachments=[pb.Attachment(sha256="a" * 64, size_bytes=1, media_type="text/html",
                                                       uri="https://f/1")]), "media type"),
    "file uri": (dict(attachments=[pb.Attachment(sha256="a" * 64, size_bytes=1, media_type="image/png",
                                                 uri="file:///etc/passwd")]), "uri must start"),
    "bad enterprise code": (dict(subject=pb.Subject(type="enterprise", ref="123")), "unified social credit"),
    "person by id number": (dict(subject=pb.Subject(type="person", ref="11010519491231002X")), "not a UUID"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_is_invalid_argument_and_writes_nothing(stub, case):
    overrides, message = BAD[case]
    at = overrides.pop("at", None)
    req = report_request(GRIDS[0], at=at, **dict(overrides))
    before = count("SELECT count(*) FROM incidents.incidents")
    err = call_error(stub.Report, req, metadata=metadata(OFFICER))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert message in err.details()
    assert count("SELECT count(*) FROM incidents.incidents") == before


def test_a_missing_location_is_invalid_argument(stub):
    req = report_request(GRIDS[0])
    req.ClearField("location")
    err = call_error(stub.Report, req, metadata=metadata(OFFICER))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "location is required" in err.details()


def test_an_oversized_request_is_refused_by_the_server(stub):
    req = report_request(GRIDS[0], description="z" * 300_000)
    err = call_error(stub.Report, req, metadata=metadata(OFFICER))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_who_may_report_where(stub):
    other_district = next(g for g in GRIDS if g[:6] != GRIDS[0][:6])
    err = call_error(stub.Report, report_request(other_district), metadata=metadata(OFFICER))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "outside your grids" in err.details()
    dispatcher = token("dispatcher", DISTRICTS[0])
    err = call_error(stub.Report, report_request(GRIDS[0]), metadata=metadata(dispatcher))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = call_error(stub.Report, report_request(GRIDS[0]))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    err = call_error(stub.Report, report_request(GRIDS[0]), metadata=[("authorization", "Bearer forged.token.x")])
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_batch_answers_each_item_and_bad_items_fail_nothing_else(stub):
    good = [report_request(GRIDS[0], title=f"queued {i}") for i in range(3)]
    items = [good[0], report_request(at=(121.5, 31.2)), good[1], report_request(GRIDS[0], category="9999"),
             good[2], good[0]]
    out = stub.ReportBatch(iter(items), metadata=metadata(OFFICER))
    codes = [r.code for r in out.results]
    assert codes == [0, grpc.StatusCode.NOT_FOUND.value[0], 0, grpc.StatusCode.INVALID_ARGUMENT.value[0], 0, 0]
    assert [r.index for r in out.results] == list(range(6))
    assert out.results[5].replayed and out.results[5].incident.id == out.results[0].incident.id
    assert (out.accepted, out.refused) == (4, 2)
    assert "outside every grid" in out.results[1].message
    for g in good:
        assert count("SELECT count(*) FROM incidents.incidents WHERE report_id = :r", r=g.report_id) == 1


def test_likely_duplicates_are_linked_to_the_first_report(stub):
    grid = GRIDS[1]
    first = stub.Report(report_request(grid, at=inside(grid, 0.3, 0.3), category="0401"),
                        metadata=metadata(OFFICER)).incident
    near = stub.Report(report_request(grid, at=inside(grid, 0.3001, 0.3001), category="0401"),
                       metadata=metadata(OFFICER)).incident
    third = stub.Report(report_request(grid, at=inside(grid, 0.3002, 0.3), category="0401"),
                        metadata=metadata(OFFICER)).incident
    other_kind = stub.Report(report_request(grid, at=inside(grid, 0.3001, 0.3001), category="0402"),
                             metadata=metadata(OFFICER)).incident
    far = stub.Report(report_request(grid, at=inside(grid, 0.9, 0.9), category="0401"),
                      metadata=metadata(OFFICER)).incident
    assert first.duplicate_of == ""
    assert near.duplicate_of == first.id and third.duplicate_of == first.id
    assert other_kind.duplicate_of == "" and far.duplicate_of == ""
    dispatcher = token("dispatcher", grid[:6])
    seen = stub.GetIncident(pb.GetIncidentRequest(incident_id=near.id), metadata=metadata(dispatcher))
    assert seen.incident.duplicate_of == first.id


def test_categories_come_from_the_catalogue(stub):
    cats = stub.ListCategories(pb.ListCategoriesRequest(), metadata=metadata(OFFICER)).categories
    by_code = {c.code: c for c in cats}
    assert by_code["0102"].parent_code == "01" and by_code["0403"].priority == 1
    assert len(cats) >= 30


def test_a_subject_named_in_the_report_travels_with_it(stub):
    req = report_request(GRIDS[0], category="0107", subject=pb.Subject(type="enterprise", ref="91350100M000100Y43"))
    out = stub.Report(req, metadata=metadata(OFFICER)).incident
    assert (out.subject.type, out.subject.ref) == ("enterprise", "91350100M000100Y43")
    person = str(uuid.uuid4())
    req = report_request(GRIDS[0], category="0503", subject=pb.Subject(type="person", ref=person))
    assert stub.Report(req, metadata=metadata(OFFICER)).incident.subject.ref == person
