"""Console rules: the work queue's filter and its order, the actions a case offers, names in
two languages, and which live events a member may see. Plain Python, no I/O.

What a case allows comes from the incidents service's own action table, so the console offers
what the services would accept; the services still decide."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo

from services.dispatch.domain import OPEN as OPEN_TASKS
from services.dispatch.domain import QUEUED
from services.incidents.domain import ACTIONS as INCIDENT_ACTIONS
from services.dispatch.procedures import TASK_PROCEDURES
from services.incidents.domain import CHANGES, EXTRA_FIELDS, PROCEDURES, SETS
from services.incidents.domain import ACTIVE_STATUSES, STATUSES
from shared import units
from shared.auth import Principal
from shared.errors import InvalidArgument
from shared.timefmt import parse_iso

MAX_ROWS = 500
DEFAULT_ROWS = 200
_CATEGORY = re.compile(r"[0-9A-Za-z]{2,16}")
_NAME = re.compile(r"^(?P<zh>[^\x00-\x7f][^A-Za-z]*?)\s+(?P<en>[A-Za-z0-9].*)$")


# --- names ------------------------------------------------------------------------------------

def split_name(name: str) -> dict:
    """Catalogue names are written "中文 English"; the page shows the one its language wants."""
    m = _NAME.match(name.strip())
    return {"zh": m["zh"].strip(), "en": m["en"].strip()} if m else {"zh": name, "en": name}


# --- the work queue -------------------------------------------------------------------------

# The filter a member can set, save and share between the list and the map (query parameters).
FILTER_KEYS = ("status", "category", "unit", "overdue", "escalated", "manual", "from", "to")


@dataclass(frozen=True)
class QueueFilter:
    statuses: tuple[str, ...] = tuple(sorted(ACTIVE_STATUSES))  # parked cases are out of the queues
    category: str = ""
    unit: str = ""
    overdue: bool = False
    escalated: bool = False
    manual: bool = False           # the manual queue: no rule routed these
    reported_from: datetime | None = None
    reported_to: datetime | None = None
    bbox: tuple[float, float, float, float] | None = None
    limit: int = DEFAULT_ROWS

    @property
    def needs_tasks_first(self) -> bool:
        """Overdue, escalated and manual are the tasks' facts: list those tasks' incidents."""
        return self.overdue or self.escalated or self.manual


def _flag(value: str | None, name: str) -> bool:
    if value in (None, "", "0", "false"):
        return False
    if value in ("1", "true"):
        return True
    raise InvalidArgument(f"{name} must be true or false")


def parse_filter(params: Mapping[str, str]) -> QueueFilter:
    """The filter from query parameters; InvalidArgument names what is wrong."""
    statuses = tuple(s for s in (params.get("status") or "").split(",") if s) or QueueFilter.statuses
    unknown = sorted(set(statuses) - set(STATUSES))
    if unknown:
        raise InvalidArgument(f"unknown status {', '.join(unknown)}; one of {', '.join(STATUSES)}")
    category = params.get("category") or ""
    if category and not _CATEGORY.fullmatch(category):
        raise InvalidArgument(f"category {category!r} is not a category code")
    unit = params.get("unit") or ""
    if unit:
        units.level_of(unit)
    bbox = None
    if params.get("bbox"):
        try:
            bbox = tuple(float(v) for v in params["bbox"].split(","))
        except ValueError:
            bbox = ()
        if len(bbox) != 4:
            raise InvalidArgument("bbox must be four numbers: west,south,east,north")
    try:
        limit = int(params.get("limit") or DEFAULT_ROWS)
    except ValueError:
        raise InvalidArgument("limit must be a number")
    if not 1 <= limit <= MAX_ROWS:
        raise InvalidArgument(f"limit must be 1..{MAX_ROWS}")
    reported_from, reported_to = parse_iso(params.get("from"), "from"), parse_iso(params.get("to"), "to")
    if reported_from and reported_to and reported_from >= reported_to:
        raise InvalidArgument("from must be before to")
    return QueueFilter(statuses=tuple(sorted(set(statuses))), category=category, unit=unit,
                       overdue=_flag(params.get("overdue"), "overdue"),
                       escalated=_flag(params.get("escalated"), "escalated"),
                       manual=_flag(params.get("manual"), "manual"), reported_from=reported_from,
                       reported_to=reported_to, bbox=bbox, limit=limit)


def check_saved_filter(name: str, doc) -> tuple[str, dict]:
    """A filter to save under a name: the filter's own keys with text values, parseable."""
    name = (name or "").strip()
    if not 1 <= len(name) <= 60:
        raise InvalidArgument("a saved filter needs a name of 1 to 60 characters")
    if not isinstance(doc, dict) or set(doc) - set(FILTER_KEYS):
        raise InvalidArgument(f"a filter holds only {', '.join(FILTER_KEYS)}")
    doc = {k: str(v) for k, v in doc.items() if v not in (None, "")}
    parse_filter(doc)
    return name, doc


def is_overdue(task: dict | None, now: datetime) -> bool:
    due = task and task.get("next_due_at")
    return bool(due) and datetime.fromisoformat(due.replace("Z", "+00:00")) < now


def keep(row: dict, f: QueueFilter, now: datetime) -> bool:
    task = row.get("task")
    if f.overdue and not is_overdue(task, now):
        return False
    if f.escalated and not (task and task["escalation_level"] > 0):
        return False
    if f.manual and not (task and task["status"] == "queued"):
        return False
    return True


def order_queue(rows: Iterable[dict], now: datetime) -> list[dict]:
    """Escalated and overdue cases first (the highest escalation, then the nearest deadline),
    then the rest, newest first: a new report comes in at the top of the rest."""
    def urgent_key(row):
        task = row.get("task") or {}
        return (-task.get("escalation_level", 0), task.get("next_due_at") or "9999")

    rows = list(rows)
    for row in rows:
        task = row.get("task")
        row["overdue"] = is_overdue(task, now)
        row["urgent"] = row["overdue"] or bool(task and task["escalation_level"] > 0)
    urgent = sorted((r for r in rows if r["urgent"]), key=urgent_key)
    rest = sorted((r for r in rows if not r["urgent"]), key=lambda r: r["incident"]["reported_at"] or "", reverse=True)
    return urgent + rest


# --- actions on a case ----------------------------------------------------------------------

@dataclass(frozen=True)
class ConsoleAction:
    via: str                      # the service that performs it: dispatch (on the task) or incidents
    incident_action: str | None   # the incidents lifecycle action it is (its table says when)
    task_statuses: frozenset[str] | None = None  # dispatch acts only on a task in one of these
    task_procedure: str | None = None  # or: deciding the task's waiting request (dispatch's TASK_PROCEDURES)
    approve: bool = False

    @property
    def needs(self) -> tuple[str, ...]:
        """The fields its form must fill, as the incidents action's row requires them:
        department (it sets or changes the department), note, and an extra field that names
        something (duplicate_of, review_at; a flag such as violation_confirmed is optional).
        Deciding a task's request needs its reason."""
        if self.incident_action is None:
            return ("note",)
        rule = INCIDENT_ACTIONS[self.incident_action]
        return (*(("department",) if rule.department in (SETS, CHANGES) else ()), *(("note",) if rule.note else ()),
                *((rule.takes,) if rule.takes and EXTRA_FIELDS[rule.takes] else ()))

    def offered(self, principal: Principal, incident: dict, task: dict | None) -> bool:
        """Whether the services would let this member take it on the case as it is now."""
        if not principal.covers(incident["lineage"]):
            return False
        if self.task_procedure is not None:
            return (task is not None and task.get("pending") == self.task_procedure
                    and principal.role in TASK_PROCEDURES[self.task_procedure].deciders)
        rule = INCIDENT_ACTIONS[self.incident_action]
        if principal.role not in rule.roles or incident["status"] not in rule.sources:
            return False
        if rule.opens and (incident.get("pending") or (rule.opens == "supervise" and incident.get("supervised"))):
            return False
        if rule.decides and incident.get("pending") != rule.decides:
            return False
        return not (self.via == "dispatch" and (task is None or (self.task_statuses and
                                                                  task["status"] not in self.task_statuses)))


# The dispatcher's actions. Routing decisions go to dispatch, which keeps the task's deadlines
# (incidents follows its events); closing and sending back go to incidents (dispatch follows).
ACTIONS: dict[str, ConsoleAction] = {
    "assign": ConsoleAction("dispatch", "dispatch", task_statuses=frozenset({QUEUED})),
    "reroute": ConsoleAction("dispatch", "reroute"),
    "reject": ConsoleAction("dispatch", "reject"),
    # An incident stays open until closed, its task only until resolved.
    "merge": ConsoleAction("dispatch", "merge", task_statuses=OPEN_TASKS),
    "close": ConsoleAction("incidents", "close"),
    "send_back": ConsoleAction("incidents", "reopen"),
    # The side procedures: the case's are incidents' actions, asked for and decided here; the
    # task's (extension, return) are asked for by departments and decided here.
    **{f"{verb}_{p}": ConsoleAction("incidents", f"{verb}_{p}")
       for p in PROCEDURES for verb in ("request", "approve", "refuse")},
    "unpark": ConsoleAction("incidents", "unpark"),
    **{f"{'approve' if yes else 'refuse'}_{p}": ConsoleAction("dispatch", None, task_procedure=p, approve=yes)
       for p in TASK_PROCEDURES for yes in (True, False)},
}


def available_actions(principal: Principal, incident: dict, task: dict | None) -> list[str]:
    """The actions the services would let this member take on the case as it is now."""
    return [name for name, a in ACTIONS.items() if a.offered(principal, incident, task)]


def check_action_form(name: str, form: Mapping) -> None:
    a = ACTIONS.get(name)
    if a is None:
        raise InvalidArgument(f"unknown action {name!r}; one of {', '.join(ACTIONS)}")
    for needed in a.needs:
        if not str(form.get(needed) or "").strip():
            raise InvalidArgument(f"{name} needs {needed}")


# --- live events ------------------------------------------------------------------------------

LIVE_PATTERNS = ("incidents.incident.*", "dispatch.task.*", "grid.member.position_reported", "grid.member.updated")


def live_message(event: dict) -> tuple[list[list[str]], dict] | None:
    """(the lineages the event concerns, what the page is told), or None for events the page
    does not show. A member sees an event when their scope covers one of its lineages."""
    kind, data = event.get("type", ""), event.get("data") or {}
    head = {"type": kind, "event_id": event.get("id"), "time": event.get("time")}
    if kind.startswith("incidents.incident."):
        location = data.get("location") or {}
        return [data.get("lineage") or []], {**head, "kind": "incident", **{
            k: data.get(k) for k in ("incident_id", "status", "previous_status", "category", "priority", "grid_code",
                                     "version", "department_code", "reported_at", "at")},
            "lon": location.get("lon"), "lat": location.get("lat")}
    if kind.startswith("dispatch.task."):
        return [data.get("lineage") or []], {**head, "kind": "task", **{
            k: data.get(k) for k in ("task_id", "incident_id", "status", "department_code", "grid_code",
                                     "escalation_level", "level_name", "unit_code", "at")}}
    if kind == "grid.member.position_reported":
        if not data.get("grid_code"):
            return None  # outside every grid: no scope can claim it
        return [units.lineage(data["grid_code"])], {**head, "kind": "position", **{
            k: data.get(k) for k in ("member_id", "lon", "lat", "grid_code", "reported_at")}}
    if kind == "grid.member.updated" and "on_duty" in (data.get("changed") or []) and data.get("role") == "officer":
        grids = [a["grid_code"] for a in data.get("assignments") or []]
        return [units.lineage(g) for g in grids], {**head, "kind": "duty", **{
            k: data.get(k) for k in ("member_id", "name", "on_duty")}}
    return None


def may_see(principal: Principal, lineages: list[list[str]]) -> bool:
    return any(lineage and principal.covers(lineage) for lineage in lineages)


# --- figures ----------------------------------------------------------------------------------

def week(now: datetime, zone: str, days: int = 7) -> tuple[datetime, datetime]:
    """From the start of the day `days - 1` days ago, in the zone, until now."""
    local = now.astimezone(ZoneInfo(zone))
    start = (local - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, now


def days_of(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Consecutive day-long spans from start (a local midnight) until end."""
    spans, day = [], start
    while day < end:
        after = day + timedelta(days=1)  # aware arithmetic keeps the wall clock: the next midnight
        spans.append((day, min(after, end)))
        day = after
    return spans


def bbox_of(geojson: dict) -> tuple[float, float, float, float] | None:
    """The bounding box of a GeoJSON geometry's coordinates."""
    xs, ys = [], []

    def walk(c):
        if c and isinstance(c[0], (int, float)):
            xs.append(c[0])
            ys.append(c[1])
        else:
            for part in c:
                walk(part)

    walk(geojson.get("coordinates") or [])
    return (min(xs), min(ys), max(xs), max(ys)) if xs else None
