"""`sequence` on the wire is the order of publication: strictly increasing per source and without
gaps, although many processes commit overlapping transactions in another order than they
inserted; and a subscriber that replays from the last sequence it saw gets every event after it."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sqlalchemy import text

from services.subscriptions import operations as subs
from services.subscriptions import organisations as orgs
from shared.db import session_scope
from shared.outbox import record_event
from tests.conftest import CITY
from tests.support import Process, QueueReader, python, service_process, wait_for

ORG = "order-test"
WRITERS = 4
TRANSACTIONS = 25  # per writer, two events each

# Each writer holds its transaction open a random moment between its two inserts, so the
# writers' transactions overlap and commit out of the order their rows were inserted in.
WRITER = textwrap.dedent("""
    import random, sys, time
    from shared.db import session_scope
    from shared.outbox import record_event
    writer = sys.argv[1]
    for n in range({transactions}):
        with session_scope() as s:
            record_event(s, "grid", "grid.member.updated", f"order-test/{{writer}}/{{n}}/a", {{"n": n}})
            time.sleep(random.random() * 0.02)
            record_event(s, "grid", "grid.member.updated", f"order-test/{{writer}}/{{n}}/b", {{"n": n}})
""").format(transactions=TRANSACTIONS)


@pytest.fixture
def relay(environment):
    from shared.broker_users import env_name
    # As grid's broker user, as a deployment runs it: the delivery takes grid's events from no other.
    as_grid = {**environment, "GRIDBUS_AMQP_URI": environment[env_name("grid")]}
    proc = Process(python("-m", "shared.outbox", "grid"), as_grid, "order-relay", Path(environment["LOG_DIR"]))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def subscription(environment):
    """A citywide organisation's subscription to grid's events, and the delivery that fills it."""
    orgs.operator_register("test", ORG, "", [CITY.city_code], [])
    with service_process(environment, "subscriptions", "nameko"):
        yield subs.operator_subscribe("test", ORG, "order-check", ["grid.#"])
        subs.operator_unsubscribe(ORG, "order-check")


def published(subject: str) -> bool:
    with session_scope() as s:
        return s.execute(text("SELECT published_at IS NOT NULL FROM grid.outbox WHERE subject = :s"),
                         {"s": subject}).scalar()


def stored(subject: str):
    with session_scope() as s:
        return s.execute(text("SELECT id, sequence FROM grid.outbox WHERE subject = :s"), {"s": subject}).one()


def check_in_order(events: list[dict]) -> None:
    """Strictly increasing by one per source: no event goes back, none is skipped."""
    last: dict[str, int] = {}
    for e in events:
        seq = int(e["sequence"])
        if e["source"] in last:
            assert seq == last[e["source"]] + 1, f"{e['source']}: {last[e['source']]} then {seq}"
        last[e["source"]] = seq


def test_concurrent_writers_commit_out_of_order_and_subscribers_see_sequence_in_order(environment, subscription,
                                                                                      relay):
    uri = environment["GRIDBUS_AMQP_URI"]
    sub = subscription
    # Inserted first, committed last: its row's id is lower, its sequence must be higher.
    with session_scope() as early:
        record_event(early, "grid", "grid.member.updated", "order-test/early", {"n": 0})
        with session_scope() as late:
            record_event(late, "grid", "grid.member.updated", "order-test/late", {"n": 1})
        assert wait_for(lambda: published("order-test/late"), process=relay)
    writers = [Process(python("-c", WRITER, str(w)), environment, f"order-writer-{w}", Path(environment["LOG_DIR"]))
               for w in range(WRITERS)]
    for w in writers:
        w.start()
    for w in writers:
        assert w.popen.wait(120) == 0, w.log()
    expected = {"order-test/early", "order-test/late"} | {
        f"order-test/{w}/{n}/{x}" for w in range(WRITERS) for n in range(TRANSACTIONS) for x in "ab"}

    with QueueReader(uri, sub.queue) as reader:
        live = reader.drain(lambda got: expected <= {e["subject"] for e in got}, timeout=60)
    check_in_order(live)
    assert len({e["id"] for e in live}) == len(live)
    (early_id, early_seq), (late_id, late_seq) = stored("order-test/early"), stored("order-test/late")
    assert early_id < late_id and early_seq > late_seq  # the commits did overtake the inserts
    with session_scope() as s:
        inversions = s.execute(text(
            "SELECT count(*) FROM grid.outbox a JOIN grid.outbox b ON a.id < b.id AND a.sequence > b.sequence "
            "WHERE a.subject LIKE 'order-test/%' AND b.subject LIKE 'order-test/%'")).scalar()
    assert inversions > 0

    # A subscriber that kept the sequence of an event halfway and replays from there gets that
    # event and every one after it, in the order it saw them live.
    halfway = live[len(live) // 2]
    n = subs.operator_replay("test", ORG, "order-check", source="grid", from_sequence=int(halfway["sequence"]))
    with QueueReader(uri, sub.queue) as reader:
        replayed = reader.drain(lambda got: len(got) >= n, timeout=60)
    check_in_order(replayed)
    seen_after = [e["id"] for e in live[len(live) // 2:]]
    assert [e["id"] for e in replayed][:len(seen_after)] == seen_after
