"""Subscriptions, the filtered live delivery and replay on the real broker and database, through
the gRPC API: organisations own their subscriptions, receive only events about their scope, and
personal fields only when granted."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import grpc
import pytest

from gridbus.incidents.v1 import incidents_pb2 as ipb
from gridbus.subscriptions.v1 import subscriptions_pb2 as pb
from services.subscriptions import organisations as orgs
from shared import privacy
from tests.incidents.conftest import DISTRICTS, GRIDS, report_request
from tests.incidents.test_report import call_error
from tests.support import QueueReader, metadata, outbox_published, queue_depth, token, wait_for

DISTRICT_A, DISTRICT_B = DISTRICTS[0], DISTRICTS[1]
GRID_A = next(g for g in GRIDS if g.startswith(DISTRICT_A))
GRID_B = next(g for g in GRIDS if g.startswith(DISTRICT_B))
CITY = DISTRICT_A[:4] + "00"
OFFICER_A = metadata(token("officer", GRID_A, member_id="officer-a"))
OFFICER_B = metadata(token("officer", GRID_B, member_id="officer-b"))
ADMIN_A = metadata(token("admin", DISTRICT_A, member_id="admin-a"))
ALL = list(privacy.GRANTS)
PERSONAL_INCIDENT_FIELDS = ("reporter_id", "note", "subject")


def subscriber(org_id: str, *scope: str):
    return metadata(token("subscriber", *scope, member_id=org_id))


@pytest.fixture(scope="module")
def organisations(environment):
    """district-a (district A, every grant), city-hall (the whole city, no grants), other-org."""
    orgs.operator_register("test", "district-a", "District A's bureau", [DISTRICT_A], ALL)
    orgs.operator_register("test", "city-hall", "City hall", [CITY], [])
    orgs.operator_register("test", "other-org", "Another organisation", [DISTRICT_A, DISTRICT_B], [])
    return {"district-a": subscriber("district-a", DISTRICT_A), "city-hall": subscriber("city-hall", CITY),
            "other-org": subscriber("other-org", DISTRICT_A, DISTRICT_B)}


def read_queue(uri: str, queue: str, until=None, timeout: float = 20.0) -> list[tuple[dict, dict]]:
    """(envelope, headers) of messages taken from a queue with plain kombu: until `until(taken)`
    holds or, without `until`, what the queue holds now."""
    with QueueReader(uri, queue) as reader:
        def taken():
            return [(envelope, m.headers or {}) for envelope, m in zip(reader.received, reader.raw)]
        reader.drain(None if until is None else lambda _: until(taken()), timeout)
        return taken()


def has_incident(incident_id: str):
    return lambda out: any(e["data"].get("incident_id") == incident_id for e, _ in out)


def test_a_district_subscriber_receives_its_districts_events_and_only_granted_fields(
        environment, subs, delivery, stub, incidents_nameko, organisations):
    uri = environment["GRIDBUS_AMQP_URI"]
    me = organisations["district-a"]
    plain = subs.Subscribe(pb.SubscribeRequest(name="cases", patterns=["incidents.#"]), metadata=me)
    full = subs.Subscribe(pb.SubscribeRequest(name="cases-full", patterns=["incidents.#"], grants=ALL), metadata=me)
    assert (plain.organisation, list(plain.scope), list(plain.grants)) == ("district-a", [DISTRICT_A], [])
    assert plain.queue == "gridbus.sub.district-a.cases" and plain.dead_letter_queue == plain.queue + ".dlq"
    assert list(full.grants) == sorted(ALL)

    # Both districts' officers report, and a dispatcher of each rejects with a note; district A's
    # last, so once it arrived every event before it has been through the (in-order) delivery.
    dispatched = []
    for officer, grid in ((OFFICER_B, GRID_B), (OFFICER_A, GRID_A), (OFFICER_B, GRID_B), (OFFICER_A, GRID_A)):
        incident = stub.Report(report_request(grid, title="bins"), metadata=officer).incident
        stub.Transition(ipb.TransitionRequest(incident_id=incident.id, action=ipb.ACTION_REJECT, expected_version=1,
                                              note="the owner, Mr Wang, moved them"),
                        metadata=metadata(token("dispatcher", grid[:6])))
        dispatched.append(incident)
    last_a = dispatched[-1].id
    def last_rejected(out):
        return any(e["data"].get("incident_id") == last_a and e["type"] == "incidents.incident.rejected"
                   for e, _ in out)

    got = read_queue(uri, plain.queue, last_rejected)
    got_full = read_queue(uri, full.queue, last_rejected)
    ids_a = {i.id for i in dispatched[1::2]}
    ids_b = {i.id for i in dispatched[0::2]}
    for events in (got, got_full):
        seen = {e["data"]["incident_id"] for e, _ in events}
        assert ids_a <= seen  # the positive control: its own district's arrive
        assert not seen & ids_b  # none of the other district's
        assert all(DISTRICT_A in e["data"]["lineage"] for e, _ in events)
        assert {e["type"] for e, _ in events if e["data"]["incident_id"] in ids_a} == {
            "incidents.incident.reported", "incidents.incident.rejected"}

    # Ungranted personal fields are gone from the payload, not blanked; granted ones are there.
    for envelope, _ in got:
        assert not set(PERSONAL_INCIDENT_FIELDS) & set(envelope["data"]), envelope["data"]
        assert "id" not in (envelope["data"]["actor"] or {})
    rejected_full = [e for e, _ in got_full if e["type"] == "incidents.incident.rejected"
                     and e["data"]["incident_id"] in ids_a]
    assert rejected_full and all(e["data"]["note"] == "the owner, Mr Wang, moved them" for e in rejected_full)
    assert all(e["data"]["reporter_id"] == "officer-a" for e, _ in got_full if e["data"]["incident_id"] in ids_a)
    assert all(e["data"]["actor"]["id"] for e in rejected_full)


def test_a_subscriber_joins_late_and_replays_what_it_missed_filtered_and_in_order(
        environment, subs, delivery, stub, incidents_nameko, organisations):
    uri = environment["GRIDBUS_AMQP_URI"]
    me = organisations["district-a"]
    # A citywide probe: once it has an event, the in-order delivery is past it for everyone.
    probe = subs.Subscribe(pb.SubscribeRequest(name="probe", patterns=["incidents.incident.reported"]),
                           metadata=organisations["city-hall"])
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    missed = [stub.Report(report_request(GRID_A, title=f"before {n}"), metadata=OFFICER_A).incident for n in range(3)]
    elsewhere = stub.Report(report_request(GRID_B, title="not theirs"), metadata=OFFICER_B).incident
    read_queue(uri, probe.queue, has_incident(elsewhere.id))  # before the subscription: only in the event store
    sub = subs.Subscribe(pb.SubscribeRequest(name="late", patterns=["incidents.incident.reported"]), metadata=me)
    live = stub.Report(report_request(GRID_A, title="after"), metadata=OFFICER_A).incident
    got = read_queue(uri, sub.queue, has_incident(live.id))
    assert [e["data"]["incident_id"] for e, _ in got] == [live.id]  # only what happened since

    n = subs.Replay(pb.ReplayRequest(name="late", since=_ts(start)), metadata=me).published
    assert n >= 4
    replayed = read_queue(uri, sub.queue, lambda out: len(out) >= n)
    assert len(replayed) == n
    ids = [e["data"]["incident_id"] for e, _ in replayed]
    assert [i for i in ids if i in {x.id for x in [*missed, live]}] == [x.id for x in [*missed, live]]  # in order
    assert elsewhere.id not in ids and all(DISTRICT_A in e["data"]["lineage"] for e, _ in replayed)
    assert all(not set(PERSONAL_INCIDENT_FIELDS) & set(e["data"]) for e, _ in replayed)  # filtered the same way
    assert all(h.get("x-gridbus-replay") == 1 for _, h in replayed)
    assert all(e["type"] == "incidents.incident.reported" for e, _ in replayed)

    # From a sequence number of one source: that event and everything after it.
    first_seq = int(replayed[-3][0]["sequence"])
    n = subs.Replay(pb.ReplayRequest(name="late", source="incidents", from_sequence=first_seq), metadata=me).published
    again = read_queue(uri, sub.queue, lambda out: len(out) >= n)
    seqs = [int(e["sequence"]) for e, _ in again]
    assert seqs == sorted(seqs) and seqs[0] == first_seq and len(again) == n
    assert {e["id"] for e, _ in again} <= {e["id"] for e, _ in replayed}  # same ids: subscribers dedupe

    subs.Unsubscribe(pb.UnsubscribeRequest(name="probe"), metadata=organisations["city-hall"])


def test_updating_patterns_changes_what_is_delivered(environment, subs, delivery, stub, incidents_nameko,
                                                     organisations):
    uri = environment["GRIDBUS_AMQP_URI"]
    me = organisations["city-hall"]
    subs.Subscribe(pb.SubscribeRequest(name="env-bureau", patterns=["incidents.incident.reported"]), metadata=me)
    subs.Subscribe(pb.SubscribeRequest(name="env-bureau", patterns=["incidents.incident.rejected"]), metadata=me)
    incident = stub.Report(report_request(GRID_A), metadata=OFFICER_A).incident
    stub.Transition(ipb.TransitionRequest(incident_id=incident.id, action=ipb.ACTION_REJECT, expected_version=1,
                                          note="not ours"), metadata=metadata(token("dispatcher", DISTRICT_A)))
    # The rejection comes after the report: once it arrived, the report would have too.
    got = read_queue(uri, "gridbus.sub.city-hall.env-bureau", has_incident(incident.id))
    wait_for(outbox_published("incidents"))
    got += read_queue(uri, "gridbus.sub.city-hall.env-bureau")
    assert [e["type"] for e, _ in got if e["data"]["incident_id"] == incident.id] == ["incidents.incident.rejected"]
    listed = subs.ListSubscriptions(pb.ListSubscriptionsRequest(), metadata=me).subscriptions
    assert {s.name: list(s.patterns) for s in listed}["env-bureau"] == ["incidents.incident.rejected"]
    subs.Unsubscribe(pb.UnsubscribeRequest(name="env-bureau"), metadata=me)
    assert queue_depth(uri, "gridbus.sub.city-hall.env-bureau") == 0


def test_an_organisation_manages_only_its_own_subscriptions(subs, organisations):
    mine, theirs = organisations["district-a"], organisations["other-org"]
    subs.Subscribe(pb.SubscribeRequest(name="private", patterns=["incidents.#"]), metadata=mine)
    listed = subs.ListSubscriptions(pb.ListSubscriptionsRequest(), metadata=theirs).subscriptions
    assert "private" not in {s.name for s in listed} and all(s.organisation == "other-org" for s in listed)
    since = _ts(datetime.now(timezone.utc) - timedelta(hours=1))
    for call, request in ((subs.Replay, pb.ReplayRequest(name="private", since=since)),
                          (subs.Unsubscribe, pb.UnsubscribeRequest(name="private"))):
        assert call_error(call, request, metadata=theirs).code() == grpc.StatusCode.NOT_FOUND
    # Its own of the same name is another queue.
    own = subs.Subscribe(pb.SubscribeRequest(name="private", patterns=["grid.#"]), metadata=theirs)
    assert own.queue == "gridbus.sub.other-org.private"
    listed = subs.ListSubscriptions(pb.ListSubscriptionsRequest(), metadata=mine).subscriptions
    assert {s.name: list(s.patterns) for s in listed}["private"] == ["incidents.#"]
    # Nobody but the organisation itself manages them through the API: not admins, not services.
    for caller in (ADMIN_A, metadata(token("service", member_id="some-service")),
                   metadata(token("officer", GRID_A)), metadata(token("dispatcher", DISTRICT_A))):
        for call, request in ((subs.ListSubscriptions, pb.ListSubscriptionsRequest()),
                              (subs.Subscribe, pb.SubscribeRequest(name="mine-now", patterns=["#"])),
                              (subs.Unsubscribe, pb.UnsubscribeRequest(name="private"))):
            assert call_error(call, request, metadata=caller).code() == grpc.StatusCode.PERMISSION_DENIED
    subs.Unsubscribe(pb.UnsubscribeRequest(name="private"), metadata=theirs)
    subs.Unsubscribe(pb.UnsubscribeRequest(name="private"), metadata=mine)


def test_no_subscription_wider_than_the_organisation_is_allowed(subs, organisations):
    me = organisations["district-a"]
    for scope, grants in (([CITY], []), ([DISTRICT_B], []), ([GRID_B], [])):
        err = call_error(subs.Subscribe, pb.SubscribeRequest(name="wide", patterns=["#"], scope=scope, grants=grants),
                         metadata=me)
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED, scope
    narrow = subs.Subscribe(pb.SubscribeRequest(name="street", patterns=["#"], scope=[GRID_A[:9]]), metadata=me)
    assert list(narrow.scope) == [GRID_A[:9]]
    subs.Unsubscribe(pb.UnsubscribeRequest(name="street"), metadata=me)
    err = call_error(subs.Subscribe, pb.SubscribeRequest(name="wide", patterns=["#"], grants=["phones"]),
                     metadata=organisations["city-hall"])
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "not granted" in err.details()
    # A token wider than the organisation's registration does not widen it.
    forged = subscriber("district-a", CITY)
    err = call_error(subs.Subscribe, pb.SubscribeRequest(name="wide", patterns=["#"], scope=[CITY]), metadata=forged)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    # Unknown or deactivated organisations are refused, whatever their token says.
    err = call_error(subs.ListSubscriptions, pb.ListSubscriptionsRequest(), metadata=subscriber("nobody", CITY))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    orgs.operator_register("test", "gone-org", "", [DISTRICT_A], [], active=False)
    gone = subscriber("gone-org", DISTRICT_A)
    for call, request in ((subs.ListSubscriptions, pb.ListSubscriptionsRequest()),
                          (subs.Subscribe, pb.SubscribeRequest(name="again", patterns=["#"])),
                          (subs.Unsubscribe, pb.UnsubscribeRequest(name="again"))):
        assert call_error(call, request, metadata=gone).code() == grpc.StatusCode.PERMISSION_DENIED


def test_an_admin_registers_organisations_only_within_their_district(subs, organisations):
    org = subs.RegisterOrganisation(pb.RegisterOrganisationRequest(
        id="water-a", name="Water works", scope=[GRID_A[:9]], grants=["notes"]), metadata=ADMIN_A)
    assert (list(org.scope), list(org.grants), org.active, org.registered_by) == (
        [GRID_A[:9]], ["notes"], True, "admin-a")
    for scope in ([CITY], [DISTRICT_B], [DISTRICT_A, GRID_B]):
        err = call_error(subs.RegisterOrganisation, pb.RegisterOrganisationRequest(id="water-a", scope=scope),
                         metadata=ADMIN_A)
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED, scope
    # other-org reaches into district B: another district's to change.
    err = call_error(subs.RegisterOrganisation, pb.RegisterOrganisationRequest(id="other-org", scope=[DISTRICT_A]),
                     metadata=ADMIN_A)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    listed = {o.id for o in subs.ListOrganisations(pb.ListOrganisationsRequest(), metadata=ADMIN_A).organisations}
    assert {"water-a", "district-a"} <= listed and not {"other-org", "city-hall"} & listed
    for caller in (organisations["district-a"], metadata(token("service", member_id="svc"))):
        err = call_error(subs.RegisterOrganisation, pb.RegisterOrganisationRequest(id="x-org", scope=[GRID_A]),
                         metadata=caller)
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = call_error(subs.RegisterOrganisation, pb.RegisterOrganisationRequest(id="x-org", scope=[GRID_A],
                                                                               grants=["salaries"]), metadata=ADMIN_A)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_refusals(subs, organisations):
    me = organisations["district-a"]
    for name, patterns, message in [("A!", ["#"], "subscription name"), ("ok-name", [], "at least one"),
                                    ("ok-name", ["incidents.**"], "pattern")]:
        err = call_error(subs.Subscribe, pb.SubscribeRequest(name=name, patterns=patterns), metadata=me)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and message in err.details()
    err = call_error(subs.Subscribe, pb.SubscribeRequest(name="ok-name", patterns=["#"], grants=["salaries"]),
                     metadata=me)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "unknown grant" in err.details()
    err = call_error(subs.Subscribe, pb.SubscribeRequest(name="ok-name", patterns=["#"], scope=["12"]), metadata=me)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = call_error(subs.Replay, pb.ReplayRequest(name="nobody", since=_ts(datetime.now(timezone.utc))), metadata=me)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = call_error(subs.Replay, pb.ReplayRequest(name="nobody", from_sequence=5), metadata=me)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "source" in err.details()
    # A service with no event store (no outbox) is no source either: refused, not an SQL error.
    for source in ("payroll", "console", "/gridbus/subscriptions"):
        err = call_error(subs.Replay, pb.ReplayRequest(name="nobody", source=source, from_sequence=5), metadata=me)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "unknown source" in err.details(), source


def _ts(when):
    from google.protobuf.timestamp_pb2 import Timestamp
    t = Timestamp()
    t.FromDatetime(when)
    return t


def test_subscriptions_from_before_owners_get_nothing_unfiltered(environment, subs, delivery):
    """What migration 0002 leaves of an old subscription: owned by `legacy` (empty scope), its
    queue still bound to the exchange directly, until the delivery unbinds it."""
    import kombu
    from sqlalchemy import text

    from services.subscriptions import operations as ops
    from shared.db import session_scope
    from shared.events import declare_subscription
    from tests.support import publish_event

    uri = environment["GRIDBUS_AMQP_URI"]
    with session_scope() as s:
        s.execute(text("INSERT INTO subscriptions.organisations (id, name, scope, registered_by) "
                       "VALUES ('legacy', 'before owners', '{}', 'migration 0002') ON CONFLICT DO NOTHING"))
        s.execute(text("INSERT INTO subscriptions.subscriptions (organisation, name, queue, patterns, created_by) "
                       "VALUES ('legacy', 'old-system', 'gridbus.sub.old-system', '{incidents.incident.reported}', "
                       "'ops')"))
        s.execute(text("INSERT INTO subscriptions.subscriptions (organisation, name, queue, patterns, created_by) "
                       "VALUES ('legacy', 'queue-gone', 'gridbus.sub.queue-gone', '{#}', 'ops')"))
    with kombu.Connection(uri) as conn:
        declare_subscription(conn, "gridbus.sub.old-system", ["incidents.incident.reported"])
    event = {"incident_id": "x", "lineage": [CITY, DISTRICT_A, GRID_A]}
    publish_event(uri, "incidents.incident.reported", event)  # confirmed: routed by now
    assert queue_depth(uri, "gridbus.sub.old-system") == 1  # the old binding, unfiltered
    assert ops.detach_direct_bindings() == 2
    publish_event(uri, "incidents.incident.reported", event)
    assert queue_depth(uri, "gridbus.sub.old-system") == 1
    assert ops.detach_direct_bindings() == 2  # idempotent, and a queue that is gone is no error
    ops.operator_unsubscribe("legacy", "old-system")
    ops.operator_unsubscribe("legacy", "queue-gone")
    assert queue_depth(uri, "gridbus.sub.old-system") == 0


def test_officers_positions_phones_and_names_only_when_granted(environment, subs, delivery, grid_stub,
                                                                 organisations):
    from gridbus.grid.v1 import grid_pb2 as gpb
    from tests.incidents.conftest import inside

    uri = environment["GRIDBUS_AMQP_URI"]
    me = organisations["district-a"]
    plain = subs.Subscribe(pb.SubscribeRequest(name="patrols", patterns=["grid.member.#"]), metadata=me)
    full = subs.Subscribe(pb.SubscribeRequest(name="patrols-full", patterns=["grid.member.#"],
                                              grants=["positions", "phones", "identity"]), metadata=me)
    admin = metadata(token("admin", CITY))
    officers = {}
    for grid in (GRID_A, GRID_B):
        m = grid_stub.CreateMember(gpb.CreateMemberRequest(name=f"Officer {grid[-3:]}", phone="13812345678",
                                                           role=gpb.ROLE_OFFICER), metadata=admin)
        grid_stub.AssignMember(gpb.AssignMemberRequest(member_id=m.id, grid_code=grid), metadata=admin)
        officers[grid] = m.id
    for grid, fx in ((GRID_B, 0.3), (GRID_A, 0.3), (GRID_B, 0.6), (GRID_A, 0.6)):  # district A's last
        lon, lat = inside(grid, fx, fx)
        grid_stub.ReportPosition(gpb.ReportPositionRequest(member_id=officers[grid], lon=lon, lat=lat),
                                 metadata=metadata(token("officer", grid, member_id=officers[grid])))

    def both_positions(out):
        return sum(e["type"] == "grid.member.position_reported" and e["data"]["member_id"] == officers[GRID_A]
                   for e, _ in out) == 2
    got, got_full = read_queue(uri, plain.queue, both_positions), read_queue(uri, full.queue, both_positions)
    for events in (got, got_full):
        about = {e["data"]["member_id"] for e, _ in events}
        assert officers[GRID_A] in about and officers[GRID_B] not in about
        assert {e["type"] for e, _ in events} == {"grid.member.assigned", "grid.member.position_reported"}
    for envelope, _ in got:
        assert not {"lon", "lat", "as_sent", "name", "phone"} & set(envelope["data"]), envelope["data"]
    positions = [e["data"] for e, _ in got_full if e["type"] == "grid.member.position_reported"]
    assert [p["lon"] for p in positions] == pytest.approx([inside(GRID_A, f, f)[0] for f in (0.3, 0.6)])
    assigned = [e["data"] for e, _ in got_full if e["type"] == "grid.member.assigned"]
    assert assigned and all(a["name"] == f"Officer {GRID_A[-3:]}" and a["phone"] == "138****5678" for a in assigned)


def test_a_poison_message_is_dead_lettered_and_the_delivery_goes_on(environment, subs, delivery, organisations):
    from tests.support import publish_event

    uri = environment["GRIDBUS_AMQP_URI"]
    me = organisations["city-hall"]
    sub = subs.Subscribe(pb.SubscribeRequest(name="poison-check", patterns=["incidents.incident.reported"]),
                         metadata=me)
    before = queue_depth(uri, "gridbus.subscriptions.deliver.dlq")
    publish_event(uri, "incidents.incident.reported", {}, body=b"not json at all")
    good = publish_event(uri, "incidents.incident.reported", {"incident_id": "after-poison", "lineage": [CITY]})
    got = read_queue(uri, sub.queue, lambda out: any(e["id"] == good for e, _ in out))
    assert [e["id"] for e, _ in got] == [good]
    assert wait_for(lambda: queue_depth(uri, "gridbus.subscriptions.deliver.dlq") == before + 1)
    subs.Unsubscribe(pb.UnsubscribeRequest(name="poison-check"), metadata=me)


def test_a_forged_event_is_dead_lettered_and_never_reaches_a_subscriber(environment, subs, delivery, stub,
                                                                         incidents_nameko, organisations):
    """The delivery passes on only events whose user_id is their owner's broker user."""
    import json
    import uuid

    import kombu

    from services.subscriptions.delivery import QUEUE
    from shared.outbox import CONTENT_TYPE, events_exchange
    uri = environment["GRIDBUS_AMQP_URI"]
    sub = subs.Subscribe(pb.SubscribeRequest(name="forgery-watch", patterns=["incidents.incident.*"]),
                         metadata=organisations["city-hall"])
    forged = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/gridbus/incidents",
              "type": "incidents.incident.closed", "subject": "incidents/x", "time": "2026-11-25T00:00:00Z",
              "data": {"incident_id": str(uuid.uuid4()), "lineage": [CITY, DISTRICT_A, GRID_A]}}
    with kombu.Connection(uri, transport_options={"confirm_publish": True}) as conn:  # no user_id
        conn.Producer().publish(json.dumps(forged).encode(), exchange=events_exchange(), routing_key=forged["type"],
                                content_type=CONTENT_TYPE, message_id=forged["id"], delivery_mode=2)
    from tests.support import holds_message
    assert wait_for(lambda: holds_message(uri, f"{QUEUE}.dlq", forged["id"]))
    # Dead-lettered, so dealt with; a real report after it reaches the subscriber, the forgery never.
    real = stub.Report(report_request(GRID_A, title="after the forgery"), metadata=OFFICER_A).incident
    got = read_queue(uri, sub.queue, has_incident(real.id))
    assert forged["id"] not in {e["id"] for e, _ in got}
    subs.Unsubscribe(pb.UnsubscribeRequest(name="forgery-watch"), metadata=organisations["city-hall"])
