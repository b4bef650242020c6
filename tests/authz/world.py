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
