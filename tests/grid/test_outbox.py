"""The transactional outbox on the real broker: events leave once per commit, survive a dead
relay, and carry the documented CloudEvents envelope."""
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from services.grid import operations as ops
from shared.auth import ADMIN, Principal
from shared.config import settings
from shared.db import engine, session_scope
from shared.outbox import Relay, record_event
from tests.event_contract import assert_payloads_match_protos
from tests.support import EventTap, Process, python, wait_for

ADMIN_CALLER = Principal("outbox-test-admin", ADMIN, ("330100",))


def unpublished() -> int:
    with session_scope() as s:
        return s.execute(text("SELECT count(*) FROM grid.outbox WHERE published_at IS NULL")).scalar()


def published_at(event_subject: str):
    with session_scope() as s:
        return s.execute(text("SELECT published_at FROM grid.outbox WHERE subject = :s"), {"s": event_subject}).scalar()


@pytest.fixture
def relay(environment):
    proc = Process(python("-m", "shared.outbox", "grid"), environment, "relay", Path(environment["LOG_DIR"]))
    yield proc
    proc.stop()


@pytest.fixture
def tap(environment):
    t = EventTap(environment["GRIDBUS_AMQP_URI"], "grid.#")
    yield t
    t.close()


def drain_backlog(relay):
    relay.start()
    assert wait_for(lambda: unpublished() == 0, process=relay)
    relay.stop()


def test_an_event_committed_while_the_relay_is_down_arrives_once_it_is_back(relay, tap):
    drain_backlog(relay)
    backlog = len(tap.drain())  # what earlier tests committed while no relay ran: published and marked
    member = ops.create_member(ADMIN_CALLER, "Zhang San", "13900001111", "officer")
    # No relay runs, so nothing can publish later; what the commit published itself is there now.
    assert tap.drain()[backlog:] == []  # nothing leaves without a relay...
    assert unpublished() == 1            # ...but the event is safely stored with the change
    relay.start()
    events = tap.drain(until=lambda ev: any(e["subject"] == f"members/{member.id}" for e in ev))
    # Marked after the broker's confirm, so possibly a moment after the event arrived; once marked,
    # the relay never sends it again, so every copy it sent is in the tap by then.
    assert wait_for(lambda: published_at(f"members/{member.id}") is not None, process=relay)
    events = tap.drain()
    mine = [e for e in events if e["subject"] == f"members/{member.id}"]
    assert len(mine) == 1 and mine[0]["type"] == "grid.member.created"


def test_a_relay_killed_between_publish_and_mark_republishes_the_same_id(relay, tap):
    drain_backlog(relay)
    member = ops.create_member(ADMIN_CALLER, "Wang Wu", "13900002222", "officer")
    relay.start({"GRIDBUS_FAILPOINT": "relay.after_publish"})
    assert relay.popen.wait(20) == 137  # died right after the broker confirmed, before marking
    assert published_at(f"members/{member.id}") is None
    relay.start()
    assert wait_for(lambda: published_at(f"members/{member.id}") is not None, process=relay)
    events = tap.drain(until=lambda ev: sum(e["subject"] == f"members/{member.id}" for e in ev) >= 2)
    mine = [e for e in events if e["subject"] == f"members/{member.id}"]
    assert len(mine) == 2 and mine[0]["id"] == mine[1]["id"]  # at least once, with one id...
    assert len({e["id"] for e in mine}) == 1                  # ...so an idempotent consumer sees it once


def test_envelope_is_cloudevents_with_masked_personal_data(city, relay, tap):
    relay.start()
    member = ops.create_member(ADMIN_CALLER, "Zhao Liu", "13712345678", "officer")
    ops.assign_member(ADMIN_CALLER, member.id, "330102001001001", primary=True)
    events = tap.drain(until=lambda ev: sum(e["subject"] == f"members/{member.id}" for e in ev) >= 2)
    mine = [e for e in events if e["subject"] == f"members/{member.id}"]
    assert [e["type"] for e in mine] == ["grid.member.created", "grid.member.assigned"]
    messages = {m.properties["message_id"]: m for m in tap.raw}
    for event in mine:
        message = messages[event["id"]]
        assert set(event) >= {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data", "sequence"}
        assert event["specversion"] == "1.0" and event["source"] == "/gridbus/grid"
        assert event["time"].endswith("Z") and event["datacontenttype"] == "application/json"
        assert message.content_type == "application/cloudevents+json"
        assert message.delivery_info["routing_key"] == event["type"]
        assert message.properties["delivery_mode"] == 2  # persistent
    assert int(mine[0]["sequence"]) < int(mine[1]["sequence"])
    assert all(e["data"]["phone"] == "137****5678" for e in mine)
    assert "13712345678" not in str(mine)
    assert mine[1]["data"]["grid_code"] == "330102001001001" and mine[1]["data"]["primary"] is True
    assert_payloads_match_protos(mine)


def test_a_failed_operation_leaves_no_event(city, relay, tap):
    drain_backlog(relay)
    member = ops.create_member(ADMIN_CALLER, "Sun Qi", "13900003333", "officer")
    with pytest.raises(Exception):
        ops.assign_member(ADMIN_CALLER, member.id, "330102001001099", primary=True)  # unknown grid
    with session_scope() as s:
        types = s.execute(text("SELECT type FROM grid.outbox WHERE subject = :s"),
                          {"s": f"members/{member.id}"}).scalars().all()
    assert types == ["grid.member.created"]


class RelayPasses(Relay):
    """A relay that tells when it has made its first pass over the outbox."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.first_pass = threading.Event()

    def publish_batch(self) -> int:
        published = super().publish_batch()
        self.first_pass.set()
        return published


def test_a_commit_wakes_the_relay_without_polling(environment, relay, tap):
    """The outbox trigger NOTIFYs on commit; a relay that would otherwise look only once a
    minute publishes the event as soon as it is committed, and a rolled-back one never."""
    drain_backlog(relay)
    sleepy = RelayPasses(engine(settings().database_url), environment["GRIDBUS_AMQP_URI"], "grid", idle_poll=60.0)
    runner = threading.Thread(target=sleepy.run, daemon=True)
    runner.start()
    try:
        # It has made its first pass and LISTENs: from here on only a NOTIFY (or a minute) wakes it.
        assert sleepy.first_pass.wait(20), "the relay made no first pass"
        with pytest.raises(RuntimeError):
            with session_scope() as s:
                record_event(s, "grid", "grid.member.updated", "members/rolled-back", {"note": "never committed"})
                raise RuntimeError("roll back")
        member = ops.create_member(ADMIN_CALLER, "Li Si", "13900003333", "officer")
        events = tap.drain(until=lambda ev: any(e["subject"] == f"members/{member.id}" for e in ev), timeout=20)
    finally:
        sleepy.stop()
        runner.join(10)
    assert any(e["subject"] == f"members/{member.id}" for e in events), "the commit did not wake the relay"
    assert not any(e["subject"] == "members/rolled-back" for e in events)
    assert not runner.is_alive(), "stop() did not end the relay promptly"
