"""Filing and closing criteria per category and who may verify: the rules alone (no servers)
and through the real gRPC server (the sample catalogue's 0202, unlicensed outdoor advertising:
filed with a photo and a subject, closed with the department's result and a closing note,
verified independently)."""
from __future__ import annotations

import grpc
import pytest

from gridbus.incidents.v1 import incidents_pb2 as pb
from services.incidents import criteria, domain
from shared.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from tests.incidents.conftest import GRIDS, report_request
from tests.incidents.test_lifecycle import DEPARTMENT, DISPATCHER, GRID, OFFICER, act
from tests.incidents.test_report import call_error
from tests.support import metadata, token

STRICT = criteria.Criteria(("photo", "subject"), ("resolution", "note"), True)
PHOTO = pb.Attachment(sha256="b" * 64, size_bytes=2048, media_type="image/jpeg", uri="https://files.example/b.jpg")
SUBJECT = pb.Subject(type="enterprise", ref="91350100M000100Y43")
OTHER_OFFICER = token("officer", GRID, member_id="officer-8")


def test_the_catalogue_says_the_criteria_and_refuses_what_it_cannot_mean():
    item = {"code": "0202", "name": "x", "priority": 4, "deadline_hours": 72,
            "file_requires": ["photo", "subject"], "close_requires": ["note"], "independent_verification": True}
    assert criteria.parse(item, "category 0") == criteria.Criteria(("photo", "subject"), ("note",), True)
    assert criteria.parse({}, "category 0") == criteria.Criteria()
    for bad, message in (({"file_requires": ["fingerprint"]}, "fingerprint"), ({"file_requires": "photo"}, "list"),
                         ({"close_requires": ["photo"]}, "close_requires has photo"),
                         ({"independent_verification": "yes"}, "true or false")):
        with pytest.raises(InvalidArgument, match=message):
            criteria.parse(bad, "category 3")
    with pytest.raises(InvalidArgument, match="category 1: file_requires"):
        domain.parse_catalogue({"categories": [{"code": "01", "name": "a", "priority": 3, "deadline_hours": 4},
                                               {**item, "code": "0101", "file_requires": ["x"]}]})


def test_a_report_short_of_its_filing_criteria_is_refused_naming_what_it_lacks():
    criteria.check_filing("0202", STRICT, has_photo=True, has_subject=True, has_description=False)
    with pytest.raises(InvalidArgument, match=r"lacks a photo \(an image attachment\), a subject"):
        criteria.check_filing("0202", STRICT, has_photo=False, has_subject=False, has_description=True)


def test_closing_criteria_apply_to_handled_cases_only():
    criteria.check_closing("0202", STRICT, has_resolution=True, note="sign removed", was_case=True)
    criteria.check_closing("0202", STRICT, has_resolution=False, note=None, was_case=False)  # a rejected report
    with pytest.raises(FailedPrecondition, match="lacks a closing note"):
        criteria.check_closing("0202", STRICT, has_resolution=True, note=" ", was_case=True)
    with pytest.raises(FailedPrecondition, match="lacks the department's result"):
        criteria.check_closing("0202", STRICT, has_resolution=False, note="ok", was_case=True)


def test_nobody_verifies_their_own_result_and_independent_categories_not_the_reporter():
    criteria.check_verifier("o2", STRICT, resolver="CG-01", reporter="o1")
    criteria.check_verifier("o1", criteria.Criteria(), resolver="CG-01", reporter="o1")
    with pytest.raises(PermissionDenied, match="resolved"):
        criteria.check_verifier("o1", criteria.Criteria(), resolver="o1", reporter="o2")
    with pytest.raises(PermissionDenied, match="other than the one who reported"):
        criteria.check_verifier("o1", STRICT, resolver="CG-01", reporter="o1")


def test_the_sample_catalogue_filing_verification_and_closing_on_the_server(stub):
    cats = {c.code: c for c in stub.ListCategories(pb.ListCategoriesRequest(), metadata=metadata(OFFICER)).categories}
    assert (list(cats["0202"].file_requires), list(cats["0202"].close_requires),
            cats["0202"].independent_verification) == (["photo", "subject"], ["resolution", "note"], True)
    err = call_error(stub.Report, report_request(GRID, category="0202", subject=SUBJECT), metadata=metadata(OFFICER))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "lacks a photo" in err.details()
    err = call_error(stub.Report, report_request(GRID, category="0202", attachments=[PHOTO]), metadata=metadata(OFFICER))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "lacks a subject" in err.details()
    i = stub.Report(report_request(GRID, category="0202", attachments=[PHOTO], subject=SUBJECT),
                    metadata=metadata(OFFICER)).incident
    i = act(stub, DISPATCHER, i, pb.ACTION_DISPATCH, department_code="CG-01")
    i = act(stub, DEPARTMENT, i, pb.ACTION_ACCEPT)
    i = act(stub, DEPARTMENT, i, pb.ACTION_RESOLVE, note="the sign is down")
    # Independent verification: not the officer who reported it.
    err = call_error(stub.Transition, pb.TransitionRequest(incident_id=i.id, action=pb.ACTION_VERIFY,
                                                           expected_version=i.version), metadata=metadata(OFFICER))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "reported" in err.details()
    # A failed verification sends it back for rework, with the officer's reason.
    i = act(stub, OTHER_OFFICER, i, pb.ACTION_REOPEN, note="the frame is still on the wall")
    assert i.status == pb.STATUS_REOPENED
    i = act(stub, DEPARTMENT, i, pb.ACTION_ACCEPT)
    i = act(stub, DEPARTMENT, i, pb.ACTION_RESOLVE, note="frame removed")
    i = act(stub, OTHER_OFFICER, i, pb.ACTION_VERIFY)
    err = call_error(stub.Transition, pb.TransitionRequest(incident_id=i.id, action=pb.ACTION_CLOSE,
                                                           expected_version=i.version), metadata=metadata(DISPATCHER))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "closing note" in err.details()
    i = act(stub, DISPATCHER, i, pb.ACTION_CLOSE, note="sign and frame removed; fined", violation_confirmed=True)
    assert i.status == pb.STATUS_CLOSED
    history = stub.GetIncident(pb.GetIncidentRequest(incident_id=i.id), metadata=metadata(DISPATCHER)).history
    assert [(h.action, h.note) for h in history if h.action == "reopen"] == [("reopen", "the frame is still on the wall")]


def test_the_member_who_resolved_may_not_verify(stub):
    """A service relaying someone's work resolves and tries to verify it too."""
    service = token("service", member_id="handler-svc")
    i = stub.Report(report_request(GRIDS[3], category="0102"), metadata=metadata(token("officer", GRIDS[3]))).incident
    for action, kw in ((pb.ACTION_DISPATCH, {"department_code": "CG-01"}), (pb.ACTION_ACCEPT, {}),
                       (pb.ACTION_RESOLVE, {"note": "done"})):
        i = act(stub, service, i, action, **kw)
    err = call_error(stub.Transition, pb.TransitionRequest(incident_id=i.id, action=pb.ACTION_VERIFY,
                                                           expected_version=i.version), metadata=metadata(service))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "resolved" in err.details()
