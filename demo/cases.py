"""The demo's cases, through the public APIs as phones and consoles would use them: officers
report (one by one, an offline batch with a retry, a point outside the city), dispatch routes
them, departments acknowledge and resolve (a few late, a few reworked), officers verify,
dispatchers close, and closures with a confirmed violation reach the credit registry. A live
view prints incidents per state, escalations and events per second while it runs."""
from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter

import grpc
from sqlalchemy import text

from demo import credit_sharing, procedures
from gridbus.credit.v1 import credit_pb2 as cpb
from gridbus.credit.v1 import credit_pb2_grpc
from gridbus.dispatch.v1 import dispatch_pb2 as dpb
from gridbus.dispatch.v1 import dispatch_pb2_grpc
from gridbus.incidents.v1 import incidents_pb2 as ipb
from gridbus.incidents.v1 import incidents_pb2_grpc
from services import registry
from services.credit.domain import USCC_CHARS, uscc_check_char
from services.incidents.domain import STATUSES
from shared import tls
from shared.auth import mint_token
from shared.db import session_scope
from shared.health import check_grpc, wait_until

CATEGORIES = ["0102", "0104", "0201", "0302", "0401", "0501", "0503", "0505", "0601", "0107"]
NAMES_A_SUBJECT = {"0107", "0503", "0302"}  # fumes, road occupation, construction: an enterprise is named


def md(subject: str, role: str, *scope: str):
    return [("authorization", f"Bearer {mint_token(subject, role, scope)}")]


class LiveView(threading.Thread):
    """Every few seconds: incidents per state, escalations, events per second."""

    def __init__(self, printer, interval: float = 3.0):
        super().__init__(daemon=True)
        self.printer, self.interval = printer, interval
        self.stop = threading.Event()
        self.started = time.monotonic()

    def snapshot(self) -> str:
        with session_scope() as s:
            states = dict(s.execute(text("SELECT status, count(*) FROM incidents.incidents GROUP BY status")).all())
            escalated = s.execute(text("SELECT count(*) FROM dispatch.tasks WHERE escalation_level > 0")).scalar()
            queued = s.execute(text("SELECT count(*) FROM dispatch.tasks WHERE status = 'queued'")).scalar()
            records = s.execute(text("SELECT count(*) FROM credit.records")).scalar()
        total = sum(self.printer.counts.values())
        rate = total / max(time.monotonic() - self.started, 1e-9)
        cells = " ".join(f"{k}:{states.get(k, 0)}" for k in STATUSES)
        return (f"  [live {time.monotonic() - self.started:5.0f}s] {cells} | manual queue {queued}, "
                f"escalated {escalated} | credit records {records} | events {total} ({rate:.1f}/s)")

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                print(self.snapshot(), flush=True)
            except Exception as exc:  # the view must never stop the demo
                print(f"  [live] {exc}")


def _uscc(rng) -> str:
    body = "91330100" + "".join(rng.choice(USCC_CHARS) for _ in range(9))
    return body + uscc_check_char(body)


def _report(cell, rng, category, subject=None, **kw) -> ipb.ReportRequest:
    w, s, e, n = cell
    req = ipb.ReportRequest(report_id=str(uuid.uuid4()), category_code=category, title=kw.get("title", "seen on patrol"),
                            description="reported from the demo patrol",
                            location=ipb.Location(lon=kw.get("lon", rng.uniform(w, e)), lat=kw.get("lat", rng.uniform(s, n)),
                                                  accuracy_m=rng.uniform(3, 25)),
                            subject=ipb.Subject(type="enterprise", ref=subject) if subject else None)
    req.occurred_at.GetCurrentTime()
    return req


def _wait(fn, timeout=30.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(interval)
    return fn()


def run_cases(officers, districts, city_code: str, reports_each: int = 3) -> None:
    ports = {name: registry.port(name) for name in ("incidents", "dispatch", "credit")}
    for port in ports.values():
        wait_until(lambda port=port: check_grpc(f"127.0.0.1:{port}", timeout=1))
    incidents = incidents_pb2_grpc.IncidentServiceStub(tls.channel(f"127.0.0.1:{ports['incidents']}"))
    dispatch = dispatch_pb2_grpc.DispatchServiceStub(tls.channel(f"127.0.0.1:{ports['dispatch']}"))
    credit = credit_pb2_grpc.CreditServiceStub(tls.channel(f"127.0.0.1:{ports['credit']}"))
    rng = random.Random(11)
    admin = md("demo-admin", "admin", city_code)
    dispatchers = {d: md(f"dispatcher-{d}", "dispatcher", d) for d in districts}

    enterprises = []
    for name in ("Riverside Kitchen Co.", "Harbour Construction Ltd.", "Old Town Market Stalls"):
        s = credit.RegisterSubject(cpb.RegisterSubjectRequest(type="enterprise", code=_uscc(rng), name=name,
                                                              registered_grid=officers[0][1]), metadata=admin)
        enterprises.append(s)
    print(f"== credit registry: {len(enterprises)} enterprises registered "
          f"({', '.join(e.code for e in enterprises)})")

    print(f"== officers report incidents from their phones ({reports_each} each)")
    made = []
    for n, (o, code, cell, me) in enumerate(officers):
        for k in range(reports_each):
            category = "0201" if (n, k) == (1, 0) else rng.choice(CATEGORIES)  # one for the manual queue
            subject = rng.choice(enterprises).code if category in NAMES_A_SUBJECT else None
            out = incidents.Report(_report(cell, rng, category, subject), metadata=me)
            made.append((out.incident, me, code))
    o, code, cell, me = officers[0]
    queued = [_report(cell, rng, rng.choice(CATEGORIES)) for _ in range(3)]
    queued.append(queued[0])  # the phone never heard the answer and sends it again
    queued.append(_report(cell, rng, "0102", lon=0.5, lat=0.5, title="GPS glitch"))
    batch = incidents.ReportBatch(iter(queued), metadata=me)
    print(f"   {o.name} comes back online with {len(queued)} queued reports: {batch.accepted} accepted "
          f"({sum(r.replayed for r in batch.results)} a retry), {batch.refused} refused: "
          + "; ".join(r.message for r in batch.results if r.code))
    made += [(r.incident, me, code) for r in batch.results if r.code == 0 and not r.replayed]
    try:
        incidents.Report(_report(cell, rng, "0102", lon=121.9, lat=31.9), metadata=me)
    except grpc.RpcError as exc:
        print(f"   a report outside every grid: {exc.code().name}: {exc.details()}")
    print(f"   {len(made)} incidents stored; dispatch routes them by its rules")

    tasks = {}
    for incident, _, _ in made:
        task = _wait(lambda i=incident: _task(dispatch, admin, i.id))
        if task:
            tasks[incident.id] = task
    routed = Counter(t.department_code or "(manual queue)" for t in tasks.values())
    print("   routed: " + ", ".join(f"{d} {n}" for d, n in sorted(routed.items())))

    print("== departments acknowledge and resolve; the manual queue escalates until a dispatcher assigns")
    time.sleep(8)  # long enough for the demo's short manual-queue deadlines to escalate
    for incident, officer_md, grid in made:
        t = _task(dispatch, admin, incident.id)
        if t.status == "queued":
            # The queued task keeps escalating (every few seconds here): read again if it moved on.
            t = _fresh(lambda iid=incident.id, who=dispatchers[grid[:6]]: (lambda t: dispatch.Assign(
                dpb.AssignRequest(task_id=t.id, department_code="CG-ADVERTISING", expected_version=t.version),
                metadata=who))(_task(dispatch, admin, iid)))
            print(f"   dispatcher of {grid[:6]} assigns a queued task (escalated to level {t.escalation_level}) "
                  f"to {t.department_code}")
    outcomes, resolved = Counter(), set()
    for incident, officer_md, grid in made:
        t = _task(dispatch, admin, incident.id)
        dept = md(t.department_code, "department", city_code)
        if rng.random() < 0.1:
            outcomes["left unacknowledged (will escalate)"] += 1
            continue
        t = dispatch.Acknowledge(dpb.AcknowledgeRequest(task_id=t.id, expected_version=t.version), metadata=dept)
        if rng.random() < 0.1:
            dispatch.ReportProgress(dpb.ProgressRequest(task_id=t.id, note="waiting for parts"), metadata=dept)
            outcomes["in progress"] += 1
            continue
        dispatch.Resolve(dpb.ResolveRequest(task_id=t.id, resolution="done", expected_version=t.version),
                         metadata=dept)
        outcomes["resolved"] += 1
        resolved.add(incident.id)
    print("   " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))

    print("== officers verify on site (some send it back); dispatchers close")
    closed = Counter()
    for incident, officer_md, grid in made:
        if incident.id not in resolved:
            continue
        i = _wait(lambda iid=incident.id: _incident(incidents, admin, iid, ipb.STATUS_RESOLVED), timeout=20)
        if not i:
            continue
        if rng.random() < 0.2:
            i = incidents.Transition(ipb.TransitionRequest(incident_id=i.id, action=ipb.ACTION_REOPEN,
                                                           expected_version=i.version, note="still there"),
                                     metadata=officer_md)
            t = _wait(lambda iid=i.id: (lambda t: t if t.status == "assigned" else None)(_task(dispatch, admin, iid)))
            dept = md(t.department_code, "department", city_code)
            t = dispatch.Acknowledge(dpb.AcknowledgeRequest(task_id=t.id, expected_version=t.version), metadata=dept)
            dispatch.Resolve(dpb.ResolveRequest(task_id=t.id, resolution="done again", expected_version=t.version),
                             metadata=dept)
            i = _wait(lambda iid=i.id: _incident(incidents, admin, iid, ipb.STATUS_RESOLVED), timeout=10)
            closed["reworked"] += 1
        i = incidents.Transition(ipb.TransitionRequest(incident_id=i.id, action=ipb.ACTION_VERIFY,
                                                       expected_version=i.version), metadata=officer_md)
        violation = bool(i.subject.ref)
        incidents.Transition(ipb.TransitionRequest(incident_id=i.id, action=ipb.ACTION_CLOSE, expected_version=i.version,
                                                   violation_confirmed=violation), metadata=dispatchers[grid[:6]])
        closed["closed with a violation" if violation else "closed"] += 1
    print("   " + ", ".join(f"{k} {v}" for k, v in sorted(closed.items())))

    procedures.run(incidents, dispatch, officers[0], city_code, lambda cell, category: _report(cell, rng, category))

    time.sleep(2)
    print("== credit registry after the closures")
    for e in enterprises:
        st = credit.GetStanding(cpb.GetStandingRequest(subject_id=e.id), metadata=admin)
        n = len(credit.ListRecords(cpb.ListRecordsRequest(subject_id=e.id), metadata=admin).records)
        print(f"   {e.code} {e.name:<28} score {st.score:>3}  lists {', '.join(st.lists) or '-':<6} {n} records")
    credit_sharing.run(credit, admin, enterprises)
    chain = credit.VerifyChain(cpb.VerifyChainRequest(), metadata=admin)
    print(f"   hash chain: {'intact' if chain.intact else 'BROKEN'}, {chain.records_checked} records checked")


def _fresh(act, tries: int = 5):
    """`act()` reads what it changes and changes it; again when another change came first."""
    for attempt in range(tries):
        try:
            return act()
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.ABORTED or attempt == tries - 1:
                raise


def _task(dispatch, admin, incident_id):
    try:
        return dispatch.GetTask(dpb.GetTaskRequest(incident_id=incident_id), metadata=admin)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


def _incident(incidents, admin, incident_id, status):
    i = incidents.GetIncident(ipb.GetIncidentRequest(incident_id=incident_id), metadata=admin).incident
    return i if i.status == status else None
