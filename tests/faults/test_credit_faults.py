"""kill -9 the credit registry's nameko process while closed incidents stream in (some events
delivered twice, as a broker may): every event becomes exactly one record, the chain stays
intact, and every record's event reaches a durable subscriber."""
from __future__ import annotations

import random
import sys
import threading
import time
import uuid
from pathlib import Path

import kombu
import pytest
from sqlalchemy import text

from services.credit import chain as credit_chain
from services.credit.domain import USCC_CHARS, uscc_check_char
from shared.db import session_scope
from shared.events import declare_subscription
from shared.health import check_nameko
from tests.conftest import SYSTEM
from tests.faults.test_faults import drain_envelopes
from tests.incidents.conftest import GRIDS
from tests.support import Process, publish_event, wait_healthy

pytestmark = pytest.mark.slow
EVENTS = 150


def closed_incident(code: str) -> dict:
    return {"incident_id": str(uuid.uuid4()), "category": "0302", "priority": 2, "grid_code": GRIDS[0],
            "violation_confirmed": True, "subject": {"type": "enterprise", "ref": code},
            "actor": {"id": "dispatcher-faults", "role": "dispatcher"}}


def fresh_uscc(rng: random.Random) -> str:
    body = "91330100" + "".join(rng.choice(USCC_CHARS) for _ in range(9))
    return body + uscc_check_char(body)


class Closures(threading.Thread):
    """Publishes closed-incident events at a steady pace; every tenth goes out twice."""

    def __init__(self, uri: str):
        super().__init__(daemon=True)
        rng = random.Random()
        self.uri = uri
        self.events = [(str(uuid.uuid4()), closed_incident(fresh_uscc(rng))) for _ in range(EVENTS)]

    def run(self) -> None:
        for i, (event_id, data) in enumerate(self.events):
            for _ in range(2 if i % 10 == 0 else 1):
                publish_event(self.uri, "incidents.incident.closed", data, event_id=event_id,
                              source="/gridbus/incidents", subject=f"incidents/{data['incident_id']}")
            time.sleep(0.02)


def records(sources: list[str]) -> dict[str, list[str]]:
    with session_scope() as s:
        rows = s.execute(text("SELECT source, id::text FROM credit.records WHERE source = ANY(:s)"),
                         {"s": sources}).all()
    out: dict[str, list[str]] = {}
    for source, record_id in rows:
        out.setdefault(source, []).append(record_id)
    return out


def test_kill_9_the_credit_process_while_closed_incidents_stream_in(environment):
    uri = environment["GRIDBUS_AMQP_URI"]
    queue = f"gridbus.sub.faults-credit-{uuid.uuid4().hex[:6]}"
    with kombu.Connection(uri) as conn:
        declare_subscription(conn, queue, ["credit.record.added"])
    credit = Process([str(Path(sys.executable).parent / "nameko"), "run", "services.credit.service", "--broker", uri],
                     environment, "faults-credit-nameko", Path(environment["LOG_DIR"])).start()
    try:
        wait_healthy(credit, lambda: check_nameko(uri, "credit", timeout=2), 60)
        closures = Closures(uri)
        sources = [f"event:{event_id}" for event_id, _ in closures.events]
        closures.start()
        time.sleep(1.0)
        credit.kill9()
        assert len(records(sources)) < EVENTS, "the fault did not hit the stream"
        time.sleep(1.5)
        credit.start()
        closures.join(120)

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(records(sources)) < EVENTS:
            time.sleep(0.5)
        written = records(sources)
    finally:
        credit.stop()
    assert set(written) == set(sources), f"{EVENTS - len(written)} closed incidents made no record"
    assert all(len(ids) == 1 for ids in written.values()), "an event made two records"
    verdict = credit_chain.verify(SYSTEM)
    assert verdict.broken is None and verdict.checked >= EVENTS

    record_ids = {ids[0] for ids in written.values()}
    envelopes = drain_envelopes(uri, queue, lambda got: record_ids <= {e["data"]["record_id"] for e in got})
    seen: dict[str, set[str]] = {}  # record id -> event ids it arrived under
    for envelope in envelopes:
        seen.setdefault(envelope["data"]["record_id"], set()).add(envelope["id"])
    assert record_ids <= set(seen), f"{len(record_ids - set(seen))} record events never arrived"
    assert all(len(seen[r]) == 1 for r in record_ids), "a record was announced under two event ids"
