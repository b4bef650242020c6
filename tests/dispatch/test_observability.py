"""Observability on the real servers: one report's trace followed through every hop (gRPC, the
outbox and its relay, each event and each consumer, in three processes), and the metrics
endpoints of a gRPC server and a nameko worker."""
from __future__ import annotations

import json
import re
import secrets
import urllib.request
from pathlib import Path

from gridbus.incidents.v1 import incidents_pb2 as ipb
from tests.dispatch.test_dispatch import D1_GRID, incident_status, officer
from tests.incidents.conftest import report_request
from tests.support import EventTap, wait_for


def spans(environment, trace_id: str) -> list[dict]:
    path = Path(environment["GRIDBUS_TRACE_FILE"])
    if not path.exists():
        return []
    return [s for s in map(json.loads, path.read_text(encoding="utf-8").splitlines()) if s["trace_id"] == trace_id]


def metrics_port(environment, process: str) -> int:
    """The port a test process serves its metrics on (GRIDBUS_METRICS_PORT=0: a free one, logged)."""
    log = (Path(environment["LOG_DIR"]) / f"{process}.log").read_text(encoding="utf-8")
    return int(re.findall(rf"{process}: Prometheus metrics on port (\d+)", log)[-1])


def scrape(environment, process: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port(environment, process)}/metrics", timeout=5) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
        return r.read().decode()


def sample(text: str, name: str, **labels) -> float | None:
    """The value of one sample of the exposition text (labels in any order)."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            got = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
            if all(got.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def test_one_reports_trace_follows_it_through_every_hop(environment, stub, dispatch_stub, dispatch_nameko):
    trace_id = secrets.token_hex(16)
    caller_span = secrets.token_hex(8)
    tap = EventTap(environment["GRIDBUS_AMQP_URI"], "#")
    try:
        incident = stub.Report(report_request(D1_GRID, category="0102"),
                               metadata=[*officer(D1_GRID), ("traceparent", f"00-{trace_id}-{caller_span}-01")]).incident
        assert incident_status(stub, incident.id, ipb.STATUS_DISPATCHED)
        hops = ("publish incidents.incident.reported", "consume incidents.incident.reported",
                "publish dispatch.task.created", "consume dispatch.task.created",
                "publish incidents.incident.dispatched", "consume incidents.incident.dispatched")
        got = wait_for(lambda: (lambda s: s if {x["name"] for x in s} >= set(hops) else None)(spans(environment, trace_id)))
        events = tap.drain(lambda ev: {e["type"] for e in ev if e.get("data", {}).get("incident_id") == incident.id}
                           >= {"incidents.incident.reported", "dispatch.task.created", "incidents.incident.dispatched"})
    finally:
        tap.close()
    by_id = {s["span_id"]: s for s in got}
    server = next(s for s in got if s["name"] == "gridbus.incidents.v1.IncidentService/Report")
    assert server["parent_id"] == caller_span and server["kind"] == "SERVER" and server["process"] == "incidents-grpc"

    def one(name, handler=None):
        found = [s for s in got if s["name"] == name and (handler is None or s["attributes"].get("gridbus.handler") == handler)]
        assert found, (name, handler)
        return found[0]

    # Each hop is the child of the one before: the outbox row keeps its writer's context.
    reported = one("publish incidents.incident.reported")
    assert reported["parent_id"] == server["span_id"] and reported["process"] == "incidents-nameko"
    routed = one("consume incidents.incident.reported", "dispatch.on_incident_reported")
    assert routed["parent_id"] == reported["span_id"] and routed["process"] == "dispatch-nameko"
    created = one("publish dispatch.task.created")
    assert created["parent_id"] == routed["span_id"]
    applied = one("consume dispatch.task.created", "incidents.apply_dispatch_event")
    assert applied["parent_id"] == created["span_id"] and applied["process"] == "incidents-nameko"
    dispatched = one("publish incidents.incident.dispatched")
    assert dispatched["parent_id"] == applied["span_id"]
    followed = one("consume incidents.incident.dispatched", "dispatch.on_incident_changed")
    assert followed["parent_id"] == dispatched["span_id"]
    assert all(s["parent_id"] in by_id or s is server for s in got)  # one tree
    # Outside subscribers see the trace too: the CloudEvents distributed-tracing extension.
    mine = [e for e in events if e.get("data", {}).get("incident_id") == incident.id]
    assert mine and all(e["traceparent"].split("-")[1] == trace_id for e in mine)
    # And the logs: JSON lines, each with the trace and span of what it was said in.
    lines = [json.loads(line) for line in dispatch_nameko.log().splitlines() if line.startswith("{")]
    said = [x for x in lines if incident.id in x["message"] and x["logger"] == "services.dispatch.service"]
    assert said and {x["trace_id"] for x in said} == {trace_id}
    assert {x["span_id"] for x in said} <= {routed["span_id"], followed["span_id"]}


def test_metrics_endpoints_of_a_grpc_server_and_a_nameko_worker(environment, stub, dispatch_stub, dispatch_nameko):
    incident = stub.Report(report_request(D1_GRID, category="0102"), metadata=officer(D1_GRID)).incident
    assert incident_status(stub, incident.id, ipb.STATUS_DISPATCHED)
    grpc_text = scrape(environment, "incidents-grpc")
    method = "gridbus.incidents.v1.IncidentService/Report"
    assert sample(grpc_text, "gridbus_grpc_server_calls_total", method=method, code="OK") >= 1
    assert sample(grpc_text, "gridbus_grpc_server_call_seconds_count", method=method) >= 1
    assert sample(grpc_text, "gridbus_grpc_server_call_seconds_bucket", method=method, le="+Inf") >= 1
    assert sample(grpc_text, "gridbus_db_pool_size") is not None

    def worker():
        text = scrape(environment, "dispatch-nameko")
        consumed = sample(text, "gridbus_events_consumed_total", handler="dispatch.on_incident_changed", outcome="ok")
        return text if consumed else None
    text = wait_for(worker)  # the dispatched event reaches dispatch a moment after the incident moved
    assert sample(text, "gridbus_events_consumed_total", handler="dispatch.on_incident_reported", outcome="ok") >= 1
    assert sample(text, "gridbus_event_handler_seconds_count", handler="dispatch.on_incident_reported") >= 1
    assert sample(text, "gridbus_outbox_published_total", source="dispatch") >= 1
    assert sample(text, "gridbus_outbox_lag_seconds_count", source="dispatch") >= 1
    assert sample(text, "gridbus_outbox_backlog", source="dispatch") is not None
    assert sample(text, "gridbus_db_pool_checked_out") is not None
