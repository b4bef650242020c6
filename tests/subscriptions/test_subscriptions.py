"""Subscriptions and replay on the real broker and database, through the gRPC API."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import grpc
import pytest

from gridbus.incidents.v1 import incidents_pb2 as ipb
from gridbus.subscriptions.v1 import subscriptions_pb2 as pb
from gridbus.subscriptions.v1 import subscriptions_pb2_grpc
from services.subscriptions import domain
from tests.incidents.conftest import GRIDS, report_request
from tests.incidents.test_report import call_error
from tests.support import (QueueReader, metadata, outbox_published, queue_depth, service_process, token,
                           wait_for)

ADMIN = metadata(token("admin", "330100", member_id="ops-1"))
GRID = GRIDS[8]
OFFICER = metadata(token("officer", GRID, member_id="officer-subs"))


@pytest.fixture(scope="module")
def subs(environment):
    with service_process(environment, "subscriptions", "grpc") as proc:
        with grpc.insecure_channel(f"127.0.0.1:{proc.port}") as channel:
            yield subscriptions_pb2_grpc.SubscriptionServiceStub(channel)


def read_queue(uri: str, queue: str, until=None, timeout: float = 20.0) -> list[tuple[dict, dict]]:
    """(envelope, headers) of messages taken from a queue with plain kombu: until `until(taken)`
    holds or, without `until`, what the queue holds now."""
    with QueueReader(uri, queue) as reader:
        def taken():
            return [(envelope, m.headers or {}) for envelope, m in zip(reader.received, reader.raw)]
        reader.drain(None if until is None else lambda _: until(taken()), timeout)
        return taken()


def test_topic_patterns_match_like_the_broker():
    assert domain.matches("incidents.incident.*", "incidents.incident.reported")
    assert not domain.matches("incidents.incident.*", "incidents.incident")
    assert domain.matches("#", "credit.record.added")
    assert domain.matches("incidents.#", "incidents.incident.closed")
    assert domain.matches("*.*.closed", "incidents.incident.closed")
    assert not domain.matches("grid.#", "incidents.incident.closed")


def test_a_subscriber_joins_late_and_replays_what_it_missed_in_order(environment, subs, stub, incidents_nameko):
    uri = environment["GRIDBUS_AMQP_URI"]
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    missed = [stub.Report(report_request(GRID, title=f"before {n}"), metadata=OFFICER).incident for n in range(3)]
    wait_for(outbox_published("incidents"))  # before the subscription exists: they are only in the event store
    sub = subs.Subscribe(pb.SubscribeRequest(name="city-hall", patterns=["incidents.incident.reported"]),
                         metadata=ADMIN)
    assert (sub.queue, sub.dead_letter_queue) == ("gridbus.sub.city-hall", "gridbus.sub.city-hall.dlq")
    live = stub.Report(report_request(GRID, title="after"), metadata=OFFICER).incident
    got = read_queue(uri, sub.queue, lambda out: any(e["data"]["incident_id"] == live.id for e, _ in out))
    assert [e["data"]["incident_id"] for e, _ in got] == [live.id]  # only what happened since

    n = subs.Replay(pb.ReplayRequest(name="city-hall", since=_ts(start)), metadata=ADMIN).published
    assert n >= 4
    replayed = read_queue(uri, sub.queue, lambda out: len(out) >= n)
    mine = [e for e, h in replayed if e["data"]["incident_id"] in {i.id for i in [*missed, live]}]
    assert [e["data"]["incident_id"] for e in mine] == [i.id for i in [*missed, live]]  # in order
    assert all(h.get("x-gridbus-replay") == 1 for _, h in replayed)
    assert all(e["type"] == "incidents.incident.reported" for e, _ in replayed)

    # From a sequence number of one source: that event and everything after it.
    first_seq = int(mine[1]["sequence"])
    n = subs.Replay(pb.ReplayRequest(name="city-hall", source="incidents", from_sequence=first_seq),
                    metadata=ADMIN).published
    again = read_queue(uri, sub.queue, lambda out: len(out) >= n)
    seqs = [int(e["sequence"]) for e, _ in again]
    assert seqs == sorted(seqs) and seqs[0] == first_seq and len(again) == n
    assert {e["id"] for e, _ in again} <= {e["id"] for e, _ in replayed}  # same ids: subscribers dedupe


def test_updating_patterns_rebinds_the_queue(environment, subs, stub, incidents_nameko):
    uri = environment["GRIDBUS_AMQP_URI"]
    subs.Subscribe(pb.SubscribeRequest(name="env-bureau", patterns=["incidents.incident.reported"]), metadata=ADMIN)
    subs.Subscribe(pb.SubscribeRequest(name="env-bureau", patterns=["incidents.incident.rejected"]), metadata=ADMIN)
    incident = stub.Report(report_request(GRID), metadata=OFFICER).incident
    dispatcher = metadata(token("dispatcher", GRID[:6]))
    stub.Transition(ipb.TransitionRequest(incident_id=incident.id, action=ipb.ACTION_REJECT, expected_version=1,
                                          note="not ours"), metadata=dispatcher)
    got = read_queue(uri, "gridbus.sub.env-bureau", lambda out: len(out) >= 1)
    wait_for(outbox_published("incidents"))  # the reported event too: had it been routed, it would be there now
    got += read_queue(uri, "gridbus.sub.env-bureau")
    assert [e["type"] for e, _ in got] == ["incidents.incident.rejected"]
    listed = subs.ListSubscriptions(pb.ListSubscriptionsRequest(), metadata=ADMIN).subscriptions
    assert {s.name: list(s.patterns) for s in listed}["env-bureau"] == ["incidents.incident.rejected"]
    subs.Unsubscribe(pb.UnsubscribeRequest(name="env-bureau"), metadata=ADMIN)
    assert queue_depth(uri, "gridbus.sub.env-bureau") == 0


def test_refusals(subs):
    officer = metadata(token("officer", GRID))
    err = call_error(subs.Subscribe, pb.SubscribeRequest(name="x-system", patterns=["#"]), metadata=officer)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    for name, patterns, message in [("A!", ["#"], "subscription name"), ("ok-name", [], "at least one"),
                                    ("ok-name", ["incidents.**"], "pattern")]:
        err = call_error(subs.Subscribe, pb.SubscribeRequest(name=name, patterns=patterns), metadata=ADMIN)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and message in err.details()
    err = call_error(subs.Replay, pb.ReplayRequest(name="nobody", since=_ts(datetime.now(timezone.utc))), metadata=ADMIN)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = call_error(subs.Replay, pb.ReplayRequest(name="nobody", from_sequence=5), metadata=ADMIN)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "source" in err.details()
    # A service with no event store (no outbox) is no source either: refused, not an SQL error.
    for source in ("payroll", "console", "/gridbus/subscriptions"):
        err = call_error(subs.Replay, pb.ReplayRequest(name="nobody", source=source, from_sequence=5), metadata=ADMIN)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "unknown source" in err.details(), source


def _ts(when):
    from google.protobuf.timestamp_pb2 import Timestamp
    t = Timestamp()
    t.FromDatetime(when)
    return t
