"""Emergencies end to end on the real servers: officers at known positions (grid's events), an
urgent report over gRPC, the nearest officers alerted on their open streams in order, one
accepts, and an alert nobody takes widens to the district, then escalates."""
from __future__ import annotations

import queue
import threading
import uuid
from datetime import datetime, timezone

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from gridbus.emergencies.v1 import emergencies_pb2 as pb
from gridbus.incidents.v1 import incidents_pb2 as ipb
from services.emergencies import operations as ops
from services.grid import operations as grid_ops
from shared.auth import Principal
from tests.support import metadata, token, wait_for

ADMIN = Principal("test-admin", "admin", ("330100",))
INCIDENT_AT = (120.03, 30.05)             # district 330102
M_PER_DEGREE_LON = 96_300                  # at 30.05 N


def east(metres: float) -> tuple[float, float]:
    return INCIDENT_AT[0] + metres / M_PER_DEGREE_LON, INCIDENT_AT[1]


def officer(name: str, where: tuple[float, float], *, on_duty: bool = True) -> str:
    """An officer assigned to the grid at `where`, on duty (or not), whose phone reported `where`."""
    member = grid_ops.create_member(ADMIN, name, f"139{uuid.uuid4().int % 10**8:08d}", "officer")
    grid = grid_ops.leaf_grids().current.locate(*where)
    grid_ops.assign_member(ADMIN, member.id, grid.code, True)
    phone = Principal(member.id, "officer", (grid.code,))
    if on_duty:
        grid_ops.update_member(phone, member.id, {"on_duty": True})
    grid_ops.report_position(phone, member.id, *where)
    return member.id


def as_officer(member_id: str, where=INCIDENT_AT):
    grid = grid_ops.leaf_grids().current.locate(*where)
    return metadata(token("officer", grid.code, member_id=member_id))


class Phone:
    """An officer's phone holding WatchAlerts open."""

    def __init__(self, stub, member_id: str):
        self.notices: queue.Queue = queue.Queue()
        self.call = stub.WatchAlerts(pb.WatchAlertsRequest(), metadata=as_officer(member_id))
        self.call.initial_metadata()       # the stream is bound: it sees every alert from now on
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for notice in self.call:
                self.notices.put(notice)
        except grpc.RpcError:
            pass

    def next(self, kind: str, alert_id: str | None = None, timeout: float = 20):
        return wait_for(lambda: (n := self.notices.get(timeout=0.2)) and n.type == kind
                        and (alert_id is None or n.alert_id == alert_id) and n, timeout)

    def close(self):
        self.call.cancel()


def report_urgent(stub, reporter: str) -> ipb.Incident:
    ts = Timestamp()
    ts.FromDatetime(datetime.now(timezone.utc))
    return stub.Report(ipb.ReportRequest(report_id=str(uuid.uuid4()), category_code="0401", title="Road collapse",
                                         location=ipb.Location(lon=INCIDENT_AT[0], lat=INCIDENT_AT[1], accuracy_m=5),
                                         occurred_at=ts), metadata=as_officer(reporter)).incident


def officers_known(worker, *members: str):
    """emergencies has applied grid's events: each officer on duty (or not) with a position."""
    from shared.db import session_scope
    from services.emergencies import store
    with session_scope() as session:
        rows = [store.officer(session, m) for m in members]
    return all(r is not None and r.position is not None and r.grids for r in rows)


@pytest.fixture(scope="module")
def crew(emergency_stack):
    stub, worker = emergency_stack
    people = {"near": officer("Near", east(200)), "mid": officer("Mid", east(500)),
              "far": officer("Far", east(3000)), "off": officer("Off duty", east(100), on_duty=False),
              "other": officer("Other district", (120.3, 30.2))}
    wait_for(lambda: officers_known(worker, *people.values()), 60)
    return people


def test_the_nearest_available_officers_are_alerted_in_order_and_the_first_to_accept_takes_it(
        emergency_stack, crew, stub):
    alerts, _ = emergency_stack
    near, mid = Phone(alerts, crew["near"]), Phone(alerts, crew["mid"])
    incident = report_urgent(stub, crew["near"])
    sent = near.next("emergencies.alert.sent")
    assert sent.incident_id == incident.id and sent.stage == "near" and 150 < sent.distance_m < 250
    assert 450 < mid.next("emergencies.alert.sent", sent.alert_id).distance_m < 550
    alert = alerts.GetAlert(pb.GetAlertRequest(alert_id=sent.alert_id), metadata=as_officer(crew["near"]))
    # Within 1 km, on duty, nearest first: not the officer 3 km away, not the one off duty nearby.
    assert [r.member_id for r in alert.recipients] == [crew["near"], crew["mid"]]

    taken = alerts.Accept(pb.AnswerRequest(alert_id=sent.alert_id), metadata=as_officer(crew["mid"]))
    assert taken.status == "accepted" and taken.accepted_by == crew["mid"] and taken.accepted_by_name == "Mid"
    with pytest.raises(grpc.RpcError) as late:
        alerts.Accept(pb.AnswerRequest(alert_id=sent.alert_id), metadata=as_officer(crew["near"]))
    assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION and crew["mid"] in late.value.details()
    told = near.next("emergencies.alert.accepted", sent.alert_id)
    assert (told.accepted_by, told.accepted_by_name) == (crew["mid"], "Mid")
    for phone in (near, mid):
        phone.close()


def test_an_alert_nobody_takes_widens_to_the_district_then_escalates(emergency_stack, crew, stub):
    alerts, _ = emergency_stack
    near, far = Phone(alerts, crew["near"]), Phone(alerts, crew["far"])
    report_urgent(stub, crew["near"])
    sent = near.next("emergencies.alert.sent")
    # "mid" is busy on the first case now: only "near" is within the radius. It declines.
    declined = alerts.Decline(pb.AnswerRequest(alert_id=sent.alert_id, reason="already on a call"),
                              metadata=as_officer(crew["near"]))
    assert [r.member_id for r in declined.recipients if r.stage == "near"] == [crew["near"]]
    widened = far.next("emergencies.alert.sent", sent.alert_id)        # at once: all it reached said no
    assert widened.stage == "district" and 2900 < widened.distance_m < 3100
    dispatcher = metadata(token("dispatcher", "330102"))
    escalated = wait_for(lambda: (a := alerts.GetAlert(pb.GetAlertRequest(alert_id=sent.alert_id),
                                                       metadata=dispatcher)).stage == "escalated" and a, 30)
    assert escalated.status == "open"
    assert crew["other"] not in {r.member_id for r in escalated.recipients}   # another district's never reached
    for phone in (near, far):
        phone.close()


def test_a_dispatcher_is_told_the_nearest_available_officers(emergency_stack, crew, stub):
    alerts, _ = emergency_stack
    incident = report_urgent(stub, crew["near"])
    dispatcher = metadata(token("dispatcher", "330102"))
    first = wait_for(lambda: alerts.Suggest(pb.SuggestRequest(incident_id=incident.id, limit=5),
                                            metadata=dispatcher).officers, 20)
    ids = [o.member_id for o in first]
    # "mid" is busy, "off" is off duty; the rest nearest first, the other district's last.
    assert ids[:2] == [crew["near"], crew["far"]] and crew["mid"] not in ids and crew["off"] not in ids
    with pytest.raises(grpc.RpcError) as denied:
        alerts.Suggest(pb.SuggestRequest(incident_id=incident.id), metadata=metadata(token("dispatcher", "330103")))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # The first case ends: its officer is available again.
    first_alert = next(a for a in _accepted_alerts() if a.accepted_by == crew["mid"])
    ops.on_incident_event({"id": str(uuid.uuid4()), "type": "incidents.incident.closed",
                           "data": {"incident_id": str(first_alert.incident_id)}})
    again = alerts.Suggest(pb.SuggestRequest(incident_id=incident.id, limit=5), metadata=dispatcher).officers
    assert [o.member_id for o in again][:2] == [crew["near"], crew["mid"]]


def _accepted_alerts():
    from sqlalchemy import text

    from shared.db import session_scope
    with session_scope() as session:
        return session.execute(text("SELECT incident_id, accepted_by FROM emergencies.alerts "
                                    "WHERE status = 'accepted'")).all()


def test_an_alert_whose_case_ends_before_anyone_accepts_is_withdrawn(emergency_stack, crew, stub):
    alerts, _ = emergency_stack
    near = Phone(alerts, crew["near"])
    incident = report_urgent(stub, crew["near"])
    sent = wait_for(lambda: (n := near.notices.get(timeout=0.2)) and n.incident_id == incident.id and n, 20)
    assert sent.type == "emergencies.alert.sent"
    ops.on_incident_event({"id": str(uuid.uuid4()), "type": "incidents.incident.voided",
                           "data": {"incident_id": incident.id}})
    withdrawn = near.next("emergencies.alert.withdrawn", sent.alert_id)
    assert withdrawn.reason == "the incident was voided"
    with pytest.raises(grpc.RpcError) as late:
        alerts.Accept(pb.AnswerRequest(alert_id=sent.alert_id), metadata=as_officer(crew["near"]))
    assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "withdrawn" in late.value.details()
    assert alerts.GetAlert(pb.GetAlertRequest(alert_id=sent.alert_id),
                           metadata=as_officer(crew["near"])).status == "withdrawn"
    near.close()


def test_bad_answers_get_typed_errors(emergency_stack, crew):
    alerts, _ = emergency_stack
    for request, md, code in [
        (pb.AnswerRequest(alert_id="nope"), as_officer(crew["near"]), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.AnswerRequest(alert_id=str(uuid.uuid4())), as_officer(crew["near"]), grpc.StatusCode.NOT_FOUND),
        (pb.AnswerRequest(alert_id=str(uuid.uuid4())), metadata(token("dispatcher", "330102")),
         grpc.StatusCode.PERMISSION_DENIED),  # refused for the role before anything is read
    ]:
        with pytest.raises(grpc.RpcError) as err:
            alerts.Accept(request, metadata=md)
        assert err.value.code() == code
    with pytest.raises(grpc.RpcError) as err:
        list(alerts.WatchAlerts(pb.WatchAlertsRequest(), metadata=metadata(token("dispatcher", "330102"))))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
