"""What the console shows and does, composed from the services' gRPC APIs with the member's
own token: the work queue (incidents joined with their dispatch tasks), a case with its
history, a unit's officers and cases, the officers on duty, the figures; and the actions."""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime

from services.console import domain
from services.console.attachments import MEDIA_TYPES, sha_of_uri
from services.console.attachments.store import photos_in_note
from services.console.clients import INCIDENTS_PAGE, ServiceError, Services
from services.console.session import Session
from services.incidents.domain import ACTIVE_STATUSES
from shared.timefmt import parse_iso

QUEUE_TASKS = 500           # the most urgent open tasks the queue looks at
DUPLICATES_BOX_DEG = 0.005  # about 500 m: likely duplicates lie within the duplicate radius (50 m)
BUSIEST = 10


async def _optional(call):
    """The call's answer, or None when the service says there is none (or not for you)."""
    try:
        return await call
    except ServiceError as exc:
        if exc.code in ("NOT_FOUND", "PERMISSION_DENIED"):
            return None
        raise


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


# --- who is signed in -------------------------------------------------------------------------

async def me(svc: Services, session: Session) -> dict:
    p = session.principal
    found = await asyncio.gather(*(svc.unit(session.token, code, geometry=True) for code in p.scope))
    scope = [{**unit, "bbox": domain.bbox_of(json.loads(geometry)) if geometry else None} for unit, geometry in found]
    boxes = [u["bbox"] for u in scope if u["bbox"]]
    bbox = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
            max(b[3] for b in boxes)) if boxes else None
    return {"member_id": p.member_id, "role": p.role, "scope": scope, "bbox": bbox, "csrf": session.csrf,
            "expires_at": session.expires_at}


async def reference(svc: Services, session: Session) -> dict:
    categories, departments = await asyncio.gather(svc.categories(session.token), svc.departments(session.token))
    return {"categories": [{**c, "names": domain.split_name(c["name"])} for c in categories],
            "departments": [{**d, "names": domain.split_name(d["name"])} for d in departments if d["active"]]}


# --- the work queue ---------------------------------------------------------------------------

async def queue(svc: Services, session: Session, f: domain.QueueFilter, now: datetime) -> dict:
    """Open cases (or those the filter asks for) with their tasks: escalated and overdue first."""
    token = session.token
    tasks = await svc.queue(token, unit=f.unit, statuses=["queued"] if f.manual else [],
                            escalated_only=f.escalated, limit=QUEUE_TASKS)
    task_of = {t["incident_id"]: t for t in tasks}
    common = dict(unit=f.unit, statuses=list(f.statuses), category=f.category, reported_from=f.reported_from,
                  reported_to=f.reported_to, bbox=f.bbox)
    if f.needs_tasks_first:
        wanted = [t["incident_id"] for t in tasks if domain.keep({"task": t}, f, now)][:f.limit]
        pages = await asyncio.gather(*(svc.incidents_page(token, ids=ids, **common)
                                       for ids in _chunks(wanted, INCIDENTS_PAGE)))
        found, more = [i for page, _ in pages for i in page], False
    else:
        urgent = [t["incident_id"] for t in tasks
                  if t["escalation_level"] > 0 or domain.is_overdue(t, now)][:INCIDENTS_PAGE]
        calls = [_newest(svc, token, f.limit, common)]
        if urgent:
            calls.append(svc.incidents_page(token, ids=urgent, **common))
        answers = await asyncio.gather(*calls)
        found, more = answers[0]
        found = found + (answers[1][0] if urgent else [])
    rows = {i["id"]: {"incident": i, "task": task_of.get(i["id"])} for i in found}
    ordered = domain.order_queue((r for r in rows.values() if domain.keep(r, f, now)), now)
    return {"rows": ordered[:f.limit], "more": more or len(ordered) > f.limit}


async def _newest(svc: Services, token: str, limit: int, common: dict) -> tuple[list[dict], bool]:
    out, page = [], ""
    while len(out) < limit:
        batch, page = await svc.incidents_page(token, page_size=min(INCIDENTS_PAGE, limit - len(out)),
                                               page_token=page, **common)
        out += batch
        if not page:
            break
    return out, bool(page)


# --- one case ---------------------------------------------------------------------------------

async def case(svc: Services, session: Session, incident_id: str, link=None) -> dict:
    """The case as the member may see it; `link(sha256, media_type)` signs a short-lived link to
    each photo in gridbus's store (having read the case is the permission to see its photos)."""
    token = session.token
    (incident, history), task = await asyncio.gather(svc.incident(token, incident_id),
                                                     _optional(svc.task_of(token, incident_id)))
    if link is not None:
        add_links(incident, history, link)
    root = incident["duplicate_of"] or incident["id"]
    lon, lat, d = incident["lon"], incident["lat"], DUPLICATES_BOX_DEG
    nearby, _ = await svc.incidents_page(token, bbox=(lon - d, lat - d, lon + d, lat + d),
                                         category=incident["category_code"])
    duplicates = [i for i in nearby if i["id"] != incident["id"] and (i["id"] == root or i["duplicate_of"] == root)]
    if incident["duplicate_of"] and not any(i["id"] == root for i in duplicates):
        original = await _optional(svc.incident(token, root))
        duplicates = ([original[0]] if original else []) + duplicates
    departments = [d for d in (await svc.departments(token))
                   if d["active"] and not set(d["serves"]).isdisjoint(incident["lineage"])]
    return {"incident": incident, "history": history, "task": task,
            "reporter": await _reporter(svc, token, incident["reporter_id"]),
            "duplicates": duplicates, "departments": [{**d, "names": domain.split_name(d["name"])} for d in departments],
            "actions": domain.available_actions(session.principal, incident, task),
            "needs": {name: list(a.needs) for name, a in domain.ACTIONS.items()}}


def add_links(incident: dict, history: list[dict], link) -> None:
    for a in incident["attachments"]:
        sha = sha_of_uri(a["uri"])
        a["url"] = link(sha, a["media_type"]) if sha and a["media_type"] in MEDIA_TYPES else None
    for h in history:  # on-site photos an officer's verify or reopen named in its note
        h["photos"] = [link(sha, media_type) for sha, media_type in photos_in_note(h["note"])]


async def _reporter(svc: Services, token: str, reporter_id: str) -> dict:
    """The reporting officer as the member's role may see them (grid masks phones)."""
    try:
        uuid.UUID(reporter_id)
    except ValueError:
        return {"id": reporter_id, "visible": False, "kind": "system"}  # e.g. open311:<client>
    member = await _optional(svc.member(token, reporter_id))
    if member is None:
        return {"id": reporter_id, "visible": False, "kind": "member"}
    return {"id": reporter_id, "visible": True, "kind": "member", "name": member["name"], "phone": member["phone"],
            "grid_code": member["grid_code"]}


async def act(svc: Services, session: Session, incident_id: str, name: str, form: dict) -> None:
    """One of the dispatcher's actions, at the versions the member saw."""
    domain.check_action_form(name, form)
    action, token = domain.ACTIONS[name], session.token
    note = str(form.get("note") or "").strip()
    if action.via == "incidents":
        await svc.transition(token, incident_id, action.incident_action, _version(form, "incident_version"),
                             note=note, violation_confirmed=bool(form.get("violation_confirmed")),
                             review_at=parse_iso(str(form.get("review_at") or ""), "review_at"))
        return
    task = await svc.task_of(token, incident_id)  # the incident's own task, whatever the page sent
    version, department = _version(form, "task_version"), str(form.get("department") or "")
    if action.task_procedure:
        await svc.decide_procedure(token, task["id"], action.task_procedure, action.approve, note, version,
                                   _minutes(form.get("granted_minutes")))
    elif name == "assign":
        await svc.assign(token, task["id"], department, version)
    elif name == "reroute":
        await svc.reroute(token, task["id"], department, note, version)
    elif name == "reject":
        await svc.reject(token, task["id"], note, version)
    else:
        await svc.merge(token, task["id"], str(form["duplicate_of"]), version)


def _minutes(value) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise ServiceError("INVALID_ARGUMENT", "granted_minutes must be a whole number of minutes") from None


def _version(form: dict, key: str) -> int:
    try:
        return int(form.get(key))
    except (TypeError, ValueError):
        raise ServiceError("INVALID_ARGUMENT", f"{key} is required: the version you saw") from None


# --- the map ----------------------------------------------------------------------------------

async def officers(svc: Services, session: Session) -> list[dict]:
    """Officers on duty in the member's scope, with their last positions."""
    found = await asyncio.gather(*(svc.officers(session.token, code) for code in session.principal.scope))
    return list({m["id"]: m for group in found for m in group}.values())


async def unit(svc: Services, session: Session, code: str) -> dict:
    """A unit clicked on the map: its code, its officers and its open cases."""
    token = session.token
    (found, _), members, (cases, more) = await asyncio.gather(
        svc.unit(token, code), svc.officers(token, code, on_duty_only=False),
        svc.incidents_page(token, unit=code, statuses=sorted(ACTIVE_STATUSES), page_size=50))
    return {"unit": found, "officers": members, "cases": cases, "more_cases": bool(more)}


# --- figures ----------------------------------------------------------------------------------

async def figures(svc: Services, session: Session, unit_code: str, zone: str, now: datetime) -> dict:
    """The week's figures for a unit in the member's scope: the funnel, states, the busiest grids
    and categories, the daily trend, and dispatch's evaluation per department, district and day."""
    token = session.token
    start, end = domain.week(now, zone)
    span = dict(unit=unit_code, reported_from=start, reported_to=end)
    days = domain.days_of(start, end)
    funnel, states, grids, categories, trend, by_department, by_district, *per_day = await asyncio.gather(
        svc.summarize(token, "stage", **span), svc.summarize(token, "status", **span),
        svc.summarize(token, "grid", limit=BUSIEST, **span), svc.summarize(token, "category", limit=BUSIEST, **span),
        svc.summarize(token, "day", time_zone=zone, **span),
        svc.evaluation(token, start, end, "department", unit_code), svc.evaluation(token, start, end, "district", unit_code),
        *(svc.evaluation(token, a, b, "department", unit_code) for a, b in days))
    names = await asyncio.gather(*(_optional(svc.unit(token, r["key"])) for r in grids["rows"]))
    for row, found in zip(grids["rows"], names):
        row["name"] = found[0]["name"] if found else None
    daily = [{"day": a.date().isoformat(), **next(r for r in rows if r["key"] == "all")}
             for (a, _), rows in zip(days, per_day)]
    return {"from": start.isoformat(), "to": end.isoformat(), "unit": unit_code, "time_zone": zone,
            "funnel": funnel["rows"], "statuses": states["rows"], "total": states["total"],
            "busiest_grids": grids["rows"], "busiest_categories": categories["rows"], "trend": trend["rows"],
            "evaluation": {"department": by_department, "district": by_district, "day": daily}}
