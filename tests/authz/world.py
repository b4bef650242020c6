"""The objects the authorization matrix aims at, made once per module through the operations
(in the test process, on the real database): members, departments, rules and tasks in
district A. Made lazily, one per name, so that a request that changes its object (an assign
that succeeds in scope) leaves every other entry point's object as it was."""
from __future__ import annotations

import uuid

from demo.city import build
from services.dispatch import operations as dispatch_ops
from services.dispatch import store as dispatch_store
from services.grid import operations as grid_ops
from shared.auth import Principal
from shared.db import session_scope
from tests.authz.matrix import CITY, DISTRICT_A, GRID_A
from tests.conftest import CITY as PLAN, SYSTEM

CITY_ADMIN = Principal("authz-city-admin", "admin", (CITY,))
DEPARTMENT = "AUTHZ-A"   # serves district A only


class World:
    def __init__(self):
        self._members: dict[str, str] = {}
        self._tasks: dict[str, tuple[str, str]] = {}
        self._rules: dict[str, int] = {}

    # --- grid -----------------------------------------------------------------------------

    def member(self, name: str, *grids: str, role: str = "officer") -> str:
        """A member assigned to `grids` (default: grid A), made on first use."""
        if name not in self._members:
            phone = f"139{uuid.uuid4().int % 10**8:08d}"
            m = grid_ops.create_member(CITY_ADMIN, f"authz {name}", phone, role)
            for code in grids or (GRID_A,):
                grid_ops.assign_member(CITY_ADMIN, m.id, code, False)
            self._members[name] = m.id
        return self._members[name]

    @staticmethod
    def feature(code: str) -> dict:
        return next(f for f in build(PLAN)["features"] if f["properties"]["code"] == code)

    # --- dispatch -------------------------------------------------------------------------

    def department(self) -> str:
        dispatch_ops.upsert_department(SYSTEM, DEPARTMENT, "Authz district A", [DISTRICT_A])
        return DEPARTMENT

    def task(self, name: str, grid: str = GRID_A) -> tuple[str, str]:
        """(task id, incident id) of a task of a new incident in `grid`, assigned to a department
        by the demo's rules (category 0101: CG-SANITATION, which serves the city)."""
        if name not in self._tasks:
            incident = str(uuid.uuid4())
            lineage = [grid[:4] + "00", grid[:6], grid[:9], grid[:12], grid]
            dispatch_ops.on_incident_reported({
                "id": str(uuid.uuid4()), "type": "incidents.incident.reported",
                "data": {"incident_id": incident, "category": "0101", "grid_code": grid, "lineage": lineage,
                         "priority": 3}})
            with session_scope() as s:
                row = dispatch_store.task_of_incident(s, incident)
            self._tasks[name] = (str(row.id), incident)
        return self._tasks[name]

    def task_department(self, name: str) -> str:
        task_id, _ = self.task(name)
        return dispatch_ops.get_task(SYSTEM, task_id).department_code

    def rule(self, name: str) -> int:
        if name not in self._rules:
            self.department()
            rule = dispatch_ops.create_rule(SYSTEM, category_prefix="99", grid_code=f"{GRID_A[:9]}{len(self._rules) + 1:03d}",
                                            department_code=DEPARTMENT, priority=len(self._rules) + 1, ack_minutes=30,
                                            resolve_minutes=60, working_time=False)
            self._rules[name] = rule.id
        return self._rules[name]


class MoreWorld(World):
    """Incidents and credit subjects in district A, for the matrix."""

    def __init__(self):
        super().__init__()
        self._incidents: dict[str, str] = {}
        self._subjects: dict[str, str] = {}
        self._records: dict[str, str] = {}

    def incident(self, name: str, department: str | None = DEPARTMENT) -> str:
        """An incident reported in grid A, dispatched to `department` (district A's own)."""
        from datetime import datetime, timezone

        from demo.city import grid_cells
        from services.incidents import domain as incidents_domain
        from services.incidents import operations as incident_ops
        if name not in self._incidents:
            self.department()
            _, w, s, e, n = next(c for c in grid_cells(PLAN) if c[0] == GRID_A)
            r = incident_ops.report(SYSTEM, report_id=str(uuid.uuid4()), category_code="0102", title=f"authz {name}",
                                    description="authz", lon=(w + e) / 2, lat=(s + n) / 2, accuracy_m=5,
                                    occurred_at=datetime.now(timezone.utc))
            if department:
                incident_ops.transition(SYSTEM, r.incident.id, 0,
                                        incidents_domain.Request("dispatch", department_code=department))
            self._incidents[name] = r.incident.id
        return self._incidents[name]

    def subject(self, kind: str) -> str:
        """A person registered in grid A, or an enterprise."""
        import random

        from services.credit import domain as credit_domain
        from services.credit import operations as credit_ops
        if kind not in self._subjects:
            if kind == "person":
                body = f"330102{random.randint(1950, 2000)}0101{random.randint(100, 999)}"
                code = body + credit_domain._ID_CHECK[sum(int(d) * w for d, w in
                                                          zip(body, credit_domain._ID_WEIGHTS)) % 11]
            else:
                body = "91330100" + "".join(random.choice(credit_domain.USCC_CHARS) for _ in range(9))
                code = body + credit_domain.uscc_check_char(body)
            self._subjects[kind] = credit_ops.register(SYSTEM, type_=kind, code=code, name=f"authz {kind}",
                                                       registered_grid=GRID_A).id
        return self._subjects[kind]

    def decision(self) -> str:
        """A record of authority HB-ENV about the enterprise (the sample authorities' directory)."""
        import yaml

        from services.credit import intake
        from services.credit import operations as credit_ops
        if "decision" not in self._records:
            with open(intake.DIRECTORY_FILE, encoding="utf-8") as f:
                intake.load_authorities(SYSTEM, yaml.safe_load(f))
            subject = credit_ops.get_subject(SYSTEM, subject_id=self.subject("enterprise"))
            record, _ = intake.add_external_record(SYSTEM, {
                "authority": "HB-ENV", "decision_number": f"authz-{uuid.uuid4().hex[:8]}", "kind": "penalty",
                "decision_date": "2026-01-05", "subject_code": subject.code, "subject_name": subject.name,
                "legal_basis": "authz", "severity": 3})
            self._records["decision"] = record.id
        return self._records["decision"]

    # --- emergencies, sensors -----------------------------------------------------------------

    def alert(self) -> tuple[str, str, str]:
        """(alert id, its incident id, the officer it was sent to): an alert in grid A."""
        from types import SimpleNamespace

        from services.emergencies import store as emergency_store
        if "alert" not in self._records:
            alert_id, incident_id, officer = uuid.uuid4(), uuid.uuid4(), self.member("alerted")
            lineage = [GRID_A[:4] + "00", GRID_A[:6], GRID_A[:9], GRID_A[:12], GRID_A]
            with session_scope() as s:
                emergency_store.insert_alert(s, alert_id, incident_id, "0106", "authz", lineage, 120.05, 30.05,
                                             "near", None)
                emergency_store.add_recipients(s, alert_id, "near", [SimpleNamespace(member_id=officer, distance_m=10)])
            self._records["alert"] = (str(alert_id), str(incident_id), officer)
        return self._records["alert"]

    def device(self, name: str) -> str:
        """A device in grid A, registered by an operator (its broker user too)."""
        from demo.city import grid_cells
        from services.sensors import operations as sensor_ops
        if name not in self._records:
            _, w, s, e, n = next(c for c in grid_cells(PLAN) if c[0] == GRID_A)
            device_id = f"authz-{name}-{uuid.uuid4().hex[:6]}"
            sensor_ops.register_device(SYSTEM, id_=device_id, kind="smoke", lon=(w + e) / 2, lat=(s + n) / 2,
                                       department_code="fire", alarm_map={"SMOKE": "04"})
            self._records[name] = device_id
        return self._records[name]

    def case(self) -> str:
        """A suspected case of a device in grid A."""
        from datetime import datetime, timedelta, timezone

        from services.sensors import store as sensor_store
        if "case" not in self._records:
            lineage = [GRID_A[:4] + "00", GRID_A[:6], GRID_A[:9], GRID_A[:12], GRID_A]
            with session_scope() as s:
                case_id, _ = sensor_store.add_to_case(s, device_id=self.device("cased"), code="SMOKE", category="04",
                                                      lineage=lineage, at=datetime.now(timezone.utc), message="authz",
                                                      value=None, window=timedelta(minutes=1))
            self._records["case"] = str(case_id)
        return self._records["case"]

    def organisation(self) -> str:
        """An organisation registered for district A's events (its id is its subscriber token's member id)."""
        from services.subscriptions import organisations
        if "organisation" not in self._records:
            organisations.operator_register("authz", "authz-subscriber", "authz", [DISTRICT_A], [])
            self._records["organisation"] = "authz-subscriber"
        return self._records["organisation"]
