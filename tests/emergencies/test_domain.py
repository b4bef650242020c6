"""Emergency rules alone, and what an officer's phone is told: no database, no broker."""
import pytest

from services.emergencies import domain
from services.emergencies.grpc_server import notice_for
from shared.auth import Principal
from shared.errors import FailedPrecondition, InvalidArgument, PermissionDenied


def test_urgent_is_priority_one():
    assert domain.is_urgent({"priority": 1}) and not domain.is_urgent({"priority": 2})
    assert not domain.is_urgent({})


def test_nearest_first_then_the_least_loaded():
    c = domain.Candidate
    ordered = domain.order([c("b", "", 300.2, 0), c("a", "", 300.4, 2), c("z", "", 120.0, 5), c("y", "", 300.0, 1)])
    assert [x.member_id for x in ordered] == ["z", "b", "y", "a"]


def test_stages_widen_near_then_district_then_escalate():
    assert domain.next_stage(domain.NEAR) == domain.DISTRICT
    assert domain.next_stage(domain.DISTRICT) == domain.ESCALATED
    assert domain.district_of(["330100", "330102", "330102001"]) == "330102"


def test_availability_follows_duty_and_cases():
    assert domain.availability(False, True) == domain.OFF_DUTY
    assert domain.availability(True, True) == domain.BUSY
    assert domain.availability(True, False) == domain.AVAILABLE


def test_only_a_recipient_officer_answers_and_only_while_open():
    me = Principal("o-1", "officer", ("330102001001001",))
    domain.may_answer(me, {"o-1"}, domain.OPEN, None)
    with pytest.raises(PermissionDenied):
        domain.may_answer(me, {"o-2"}, domain.OPEN, None)
    with pytest.raises(PermissionDenied):
        domain.may_answer(Principal("o-1", "dispatcher", ("330102",)), {"o-1"}, domain.OPEN, None)
    with pytest.raises(FailedPrecondition, match="o-2 accepted"):
        domain.may_answer(me, {"o-1"}, domain.ACCEPTED, "o-2")
    with pytest.raises(FailedPrecondition, match="withdrawn"):
        domain.may_answer(me, {"o-1"}, domain.WITHDRAWN, None)
    with pytest.raises(InvalidArgument):
        domain.check_limit(-1)
    assert domain.check_limit(0) == 5 and domain.check_limit(500) == domain.MAX_SUGGESTIONS


def test_a_phone_is_told_only_of_alerts_that_reached_its_officer():
    sent = {"id": "e1", "type": "emergencies.alert.sent",
            "data": {"alert_id": "a1", "incident_id": "i1", "category": "0401", "title": "t", "stage": "near",
                     "location": {"lon": 120.0, "lat": 30.0},
                     "recipients": [{"member_id": "o-1", "distance_m": 210.5}]}}
    notice = notice_for("o-1", sent)
    assert notice.alert_id == "a1" and notice.distance_m == 210.5
    assert notice_for("o-2", sent) is None
    taken = {**sent, "type": "emergencies.alert.accepted", "data": {**sent["data"], "member_id": "o-1",
                                                                    "member_name": "王网格"}}
    assert (notice_for("o-1", taken).accepted_by, notice_for("o-1", taken).accepted_by_name) == ("o-1", "王网格")
    assert notice_for("o-9", taken) is None
    withdrawn = {**sent, "type": "emergencies.alert.withdrawn",
                 "data": {**sent["data"], "reason": "the incident was voided"}}
    assert notice_for("o-1", withdrawn).reason == "the incident was voided" and notice_for("o-9", withdrawn) is None
    assert notice_for("o-1", {**sent, "type": "emergencies.alert.declined"}) is None
